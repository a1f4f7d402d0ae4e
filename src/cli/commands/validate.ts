import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { loadAgentDefinition } from '../../config/agent-definition.js';
import { loadDaemonConfig, resolveDaemonConfig } from '../../config/daemon-config.js';
import { missingProviderKeys } from '../../config/provider-auth.js';
import type { DaemonConfig } from '../../config/types.js';
import { ConfigError, errorMessage } from '../../errors.js';
import { listDir } from '../../store/durable.js';
import { readHomeFile, tooBigProblem } from '../../store/home-file.js';
import { readOutbox } from '../../store/outbox.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { parseTask } from '../../store/tasks.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';
import { notAHome } from '../home-checks.js';

/** One problem: the file (relative to the home) and what is wrong, naming the field. */
interface Problem {
  file: string;
  problem: string;
  /** `auth`: a provider key the agent needs is missing. */
  category?: 'auth';
}

export function registerValidate(program: Command): void {
  withHome(program.command('validate'))
    .description('check agentd.yaml, every agent definition, task file and outbox; exit 1 on any error')
    .option('--json', 'print {ok, agents, tasks, problems} as JSON')
    .action((options: { home?: string; json?: boolean }) => runCommand(() => validate(options)));
}

async function validate(options: { home?: string; json?: boolean }): Promise<number> {
  const paths = homeOf(options);
  const notHome = await notAHome(paths);
  if (notHome) {
    if (options.json) printJson({ ok: false, agents: 0, tasks: 0, problems: [{ file: '.', problem: notHome }] });
    else process.stdout.write(`${notHome}\n`);
    return EXIT.checkFailed;
  }
  const problems: Problem[] = [];
  let config: DaemonConfig;
  try {
    config = await loadDaemonConfig(paths);
  } catch (err) {
    problems.push(...asProblems(err, 'agentd.yaml'));
    config = resolveDaemonConfig(paths, null, {}); // still check the rest, against built-in defaults
  }
  let agents = 0;
  let tasks = 0;
  for (const agent of await agentFolders(paths, problems)) {
    if (await checkDefinition(paths, config, agent, problems)) agents++;
    tasks += await checkTasks(paths, agent, problems, config.maxFileBytes);
  }
  for (const agent of (await listDir(paths.outboxRoot())).filter((n) => isValidName(n) && !isReservedAgentName(n))) {
    await readOutbox(paths, agent).catch((err: unknown) => problems.push(...asProblems(err, `outbox/${agent}/outbox.json`)));
  }

  const ok = problems.length === 0;
  if (options.json) printJson({ ok, agents, tasks, problems });
  else if (ok) process.stdout.write(`ok: ${agents} agent${agents === 1 ? '' : 's'}, ${tasks} task${tasks === 1 ? '' : 's'}\n`);
  else {
    for (const p of problems) process.stdout.write(`${p.file}: ${p.problem}\n`);
    process.stdout.write(`${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
  }
  return ok ? EXIT.ok : EXIT.checkFailed;
}

/** True when the folder holds a definition that loads. */
async function checkDefinition(paths: HomePaths, config: DaemonConfig, agent: string, problems: Problem[]): Promise<boolean> {
  try {
    const definition = await loadAgentDefinition(paths, config, agent);
    if (definition) {
      const missing = missingProviderKeys(config, definition);
      problems.push(...missing.map((problem) => ({ file: definition.file, problem: `config_error: ${problem}`, category: 'auth' as const })));
      return missing.length === 0;
    }
    problems.push({ file: `agents/${agent}`, problem: 'has no agent.yaml, agent.yml or agent.json' });
  } catch (err) {
    problems.push(...asProblems(err, `agents/${agent}`));
  }
  return false;
}

/** current-task.json and inbox/*.json; returns how many are valid tasks. */
async function checkTasks(paths: HomePaths, agent: string, problems: Problem[], maxBytes: number): Promise<number> {
  const inbox = paths.inboxDir(agent);
  const files = [paths.currentTask(agent), ...(await listDir(inbox)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort().map((n) => paths.inboxEntry(agent, n))];
  let valid = 0;
  for (const file of files) {
    const read = await readHomeFile(paths, file, maxBytes);
    if (read.kind === 'missing') continue;
    if (read.kind !== 'ok') {
      problems.push({ file: paths.relative(file), problem: read.kind === 'refused' ? read.problem : tooBigProblem(read.size, maxBytes) });
      continue;
    }
    const parsed = parseTask(read.bytes, () => 'unset', new Date());
    if (parsed.ok) valid++;
    else problems.push(...parsed.problems.map((problem) => ({ file: paths.relative(file), problem })));
  }
  return valid;
}

async function agentFolders(paths: HomePaths, problems: Problem[]): Promise<string[]> {
  const entries = await fs.readdir(paths.agentsDir(), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const names: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    if (isValidName(e.name) && !isReservedAgentName(e.name)) names.push(e.name);
    else problems.push({ file: `agents/${e.name}`, problem: 'is not an allowed agent name (^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$, not reserved)' });
  }
  return names.sort();
}

function asProblems(err: unknown, fallbackFile: string): Problem[] {
  if (err instanceof ConfigError) return err.problems.map((problem) => ({ file: err.file, problem }));
  return [{ file: fallbackFile, problem: errorMessage(err) }];
}
