import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { loadAgentDefinition } from '../../config/agent-definition.js';
import { loadDaemonConfig } from '../../config/daemon-config.js';
import { ConfigError, NotFoundError, UsageError } from '../../errors.js';
import { missingProviderKeys } from '../../config/provider-auth.js';
import { createLogger } from '../../observe/logger.js';
import { applySecuritySettings } from '../../security/apply.js';
import { systemClock } from '../../core/clock.js';
import { claimAndRun, type ClaimResult, type RunnerDeps } from '../../run/runner.js';
import type { AgentDefinition } from '../../config/types.js';
import { RunEndpoint } from '../../endpoint/server.js';
import { createGateway, createRunnerDeps } from '../../run/deps.js';
import { exists, writeFileDurable } from '../../store/durable.js';
import { assertName } from '../../store/paths.js';
import { ensureHomeSdkLink } from '../../store/sdk-link.js';
import { generateTaskId, parseTask } from '../../store/tasks.js';
import { readDeadLetter } from '../../store/dead-letters.js';
import { readDone } from '../../store/done-records.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';

interface RunOptions {
  home?: string;
  task?: string;
  json?: boolean;
  pretty?: boolean;
  logLevel: string;
}

export function registerRun(program: Command): void {
  withHome(program.command('run <agent>'))
    .description('run one task of an agent in the foreground, no daemon needed (its current task, the --task file, or the next inbox task)')
    .option('--task <file>', 'a task file to run (becomes current-task.json)')
    .option('--json', 'print the result as JSON')
    .option('--pretty', 'human-readable logs on stderr')
    .option('--log-level <level>', 'log level for stderr', 'warn')
    .action((agentName: string, options: RunOptions) => runCommand(() => runForeground(agentName, options)));
}

async function runForeground(agentName: string, options: RunOptions): Promise<number> {
  const paths = homeOf(options);
  const agent = assertName(agentName, 'agent name');
  const log = createLogger({ pretty: options.pretty ?? false, level: options.logLevel, destination: process.stderr }).child({ agent });
  const config = await loadDaemonConfig(paths);
  applySecuritySettings(config, log, paths.root);
  const definition = await loadAgentDefinition(paths, config, agent);
  if (!definition) throw new NotFoundError(`agents/${agent} has no agent.yaml or agent.json`);
  const missingKeys = missingProviderKeys(config, definition);
  if (missingKeys.length > 0) throw new ConfigError(definition.file, missingKeys, { category: 'auth' });
  const linked = await ensureHomeSdkLink(paths);
  if (linked.kind === 'failed') log.warn({ problem: linked.problem }, 'could not link the SDK into the home; agents importing agentd/sdk will fail');
  if (options.task) await placeTask(paths.currentTask(agent), options.task);

  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort('shutdown');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const endpoint = new RunEndpoint(log.child({ component: 'endpoint' }));
  await endpoint.listen();
  try {
    return await runClaims(paths, agent, definition, options, interrupt, createRunnerDeps({
      paths,
      config,
      log,
      clock: systemClock,
      random: Math.random,
      gateway: createGateway(paths, config, systemClock, Math.random, log),
      interrupt: interrupt.signal,
      endpoint,
    }));
  } finally {
    await endpoint.close();
  }
}

/** Claim until the task is done, dead-lettered or waits for a person; retries happen here, in the foreground. */
async function runClaims(paths: ReturnType<typeof homeOf>, agent: string, definition: AgentDefinition, options: RunOptions, interrupt: AbortController, deps: RunnerDeps): Promise<number> {
  let result: ClaimResult;
  let taskId: string | null = null;
  for (;;) {
    result = await claimAndRun(deps, definition, 'cli');
    if (result.kind === 'ran') taskId = result.taskId;
    if (interrupt.signal.aborted) break;
    if (result.kind === 'settled' && !taskId) continue; // a malformed task was dead-lettered; take the next
    if (result.kind === 'waiting') {
      await systemClock.sleep(Math.max(0, result.untilMs - Date.now()), interrupt.signal).catch(() => undefined);
      continue;
    }
    const failedWithAttemptsLeft = result.kind === 'ran' && result.outcome.kind === 'failed' && taskId && !(await readDeadLetter(paths, agent, taskId));
    if (failedWithAttemptsLeft) continue;
    break;
  }
  return report(paths, agent, taskId, result, options.json ?? false);
}

async function placeTask(currentTask: string, file: string): Promise<void> {
  if (await exists(currentTask)) throw new UsageError(`${currentTask} exists: let it finish (or move it away) before running another with --task`);
  const bytes = await fs.readFile(file).catch(() => {
    throw new UsageError(`cannot read task file ${file}`);
  });
  const parsed = parseTask(bytes, () => generateTaskId(new Date()), new Date());
  if (!parsed.ok) throw new UsageError(`${file}: ${parsed.problems.join('; ')}`);
  await writeFileDurable(currentTask, JSON.stringify(parsed.task, null, 2) + '\n');
}

async function report(paths: ReturnType<typeof homeOf>, agent: string, taskId: string | null, result: ClaimResult, json: boolean): Promise<number> {
  const done = taskId ? await readDone(paths, agent, taskId) : null;
  const dead = taskId ? await readDeadLetter(paths, agent, taskId) : null;
  const summary =
    done ? { status: done.status, task_id: taskId, output: done.output }
    : dead ? { status: 'dead_letter', task_id: taskId, error: dead.error }
    : result.kind === 'blocked' ? { status: 'waiting_for_person', task_id: taskId, item_id: result.itemId, reason: result.reason }
    : result.kind === 'ran' ? { status: result.outcome.kind, task_id: taskId }
    : { status: result.kind, task_id: taskId };
  if (json) printJson(summary);
  else process.stdout.write(humanSummary(summary) + '\n');
  return done?.status === 'done' ? EXIT.ok : EXIT.checkFailed;
}

function humanSummary(s: Record<string, unknown>): string {
  switch (s.status) {
    case 'done':
      return `done ${String(s.task_id)}\n${JSON.stringify(s.output, null, 2)}`;
    case 'cancelled':
      return `cancelled ${String(s.task_id)}`;
    case 'dead_letter': {
      const error = s.error as { category?: string; message?: string; stderr_tail?: string[] } | undefined;
      const tail = error?.stderr_tail?.length ? `\nthe agent's last stderr lines:\n${error.stderr_tail.map((l) => `  ${l}`).join('\n')}` : '';
      return `dead-lettered ${String(s.task_id)}: ${error?.category ?? '?'}: ${error?.message ?? ''}${tail}\nsee: agentd dlq show ${String(s.task_id)}`;
    }
    case 'waiting_for_person':
      return `waiting for a person: outbox item ${String(s.item_id)}: ${String(s.reason)}\nresolve with: agentd resolve ${String(s.item_id)} --continue`;
    case 'idle':
      return 'nothing to run: no current task and an empty inbox';
    case 'locked':
      return 'the agent is running elsewhere (its lock is held)';
    default:
      return `${String(s.status)} ${String(s.task_id ?? '')}`;
  }
}
