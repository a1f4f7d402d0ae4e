import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { loadAgentDefinition } from '../../config/agent-definition.js';
import { loadDaemonConfig, resolveDaemonConfig } from '../../config/daemon-config.js';
import { formatDuration } from '../../config/duration.js';
import type { DaemonConfig } from '../../config/types.js';
import { errorMessage } from '../../errors.js';
import { readCheckpoint, type TaskCheckpoint } from '../../store/checkpoint.js';
import { readIfExists } from '../../store/durable.js';
import { readLastHistoryLine } from '../../store/history.js';
import { blocksTask, readAllOutboxes, type OutboxItem } from '../../store/outbox.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { readDailySpend } from '../../store/spend.js';
import { countDeadLetters, inboxSize, parseTask } from '../../store/tasks.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';
import { newestFirst, truncate } from './outbox.js';

type AgentState = 'config_error' | 'running' | 'waiting_for_person' | 'retry_wait' | 'pending' | 'queued' | 'idle';

interface AgentStatus {
  agent: string;
  status: AgentState;
  /** The definition's problems when status is config_error. */
  config_error: string | null;
  current_task: { id: string | null; created_at: string | null; age_ms: number | null; problem: string | null } | null;
  queue: number;
  attempts: number;
  last_error: { category: string; message: string } | null;
  active_run: { run_id: string; trigger: string; started_at: string } | null;
  next_attempt_at: string | null;
  last_run: { run_id: string; status: string; ended_at: string; error_category: string | null } | null;
  spend_today_usd: number;
  open_items: number;
  dead_letters: number;
}

const CIRCUITS_NOTE = "circuits: shown by the daemon's /metrics (not yet)";

export function registerStatus(program: Command): void {
  withHome(program.command('status'))
    .description('one screen for the person on call: agents, current tasks, queues, open outbox items, dead letters')
    .option('--json', 'print everything as one JSON object')
    .action((options: { home?: string; json?: boolean }) => runCommand(() => status(options)));
}

async function status(options: { home?: string; json?: boolean }): Promise<number> {
  const paths = homeOf(options);
  const now = new Date();
  const problems: string[] = [];
  let config: DaemonConfig;
  let configError: string | null = null;
  try {
    config = await loadDaemonConfig(paths);
  } catch (err) {
    configError = errorMessage(err);
    config = resolveDaemonConfig(paths, null, {}); // show the agents anyway, against built-in defaults
  }
  const outboxes = await readAllOutboxes(paths);
  problems.push(...outboxes.problems);
  const openItems = outboxes.items.filter((i) => i.status === 'open').sort(newestFirst);
  const deadLetters = await countDeadLetters(paths);

  const agents: AgentStatus[] = [];
  for (const agent of await agentFolders(paths, problems)) {
    const row = await agentStatus(paths, config, agent, openItems, now);
    if (row) agents.push({ ...row, dead_letters: deadLetters[agent] ?? 0 });
  }

  if (options.json) {
    printJson({ home: paths.root, at: now.toISOString(), config_error: configError, agents, open_items: openItems, dead_letters: deadLetters, circuits: [], problems });
  } else {
    process.stdout.write(render(paths, configError, agents, openItems, deadLetters, problems));
  }
  return EXIT.ok;
}

/** One agent's row, or null when its folder has no definition (it is not an agent). */
async function agentStatus(paths: HomePaths, config: DaemonConfig, agent: string, openItems: OutboxItem[], now: Date): Promise<Omit<AgentStatus, 'dead_letters'> | null> {
  let configError: string | null = null;
  try {
    if (!(await loadAgentDefinition(paths, config, agent))) return null;
  } catch (err) {
    configError = errorMessage(err);
  }
  const current = await currentTask(paths, agent, now);
  const checkpoint: TaskCheckpoint | null = current?.id ? await readCheckpoint(paths, agent, current.id) : null;
  const last = await readLastHistoryLine(paths, agent);
  const mine = openItems.filter((i) => i.agent === agent);
  const queue = await inboxSize(paths, agent);
  const active = checkpoint?.active_run ?? null;
  const state: AgentState =
    configError ? 'config_error'
    : active ? 'running'
    : current?.id && mine.some((i) => blocksTask(i, current.id!)) ? 'waiting_for_person'
    : current && checkpoint?.next_attempt_at && Date.parse(checkpoint.next_attempt_at) > now.getTime() ? 'retry_wait'
    : current ? 'pending'
    : queue > 0 ? 'queued'
    : 'idle';
  return {
    agent,
    status: state,
    config_error: configError,
    current_task: current,
    queue,
    attempts: checkpoint?.attempts ?? 0,
    last_error: checkpoint?.last_error ?? null,
    active_run: active ? { run_id: active.run_id, trigger: active.trigger, started_at: active.started_at } : null,
    next_attempt_at: checkpoint?.next_attempt_at ?? null,
    last_run: last ? { run_id: last.run_id, status: last.status, ended_at: last.ended_at, error_category: last.error_category } : null,
    spend_today_usd: await readDailySpend(paths, agent, now),
    open_items: mine.length,
  };
}

async function currentTask(paths: HomePaths, agent: string, now: Date): Promise<AgentStatus['current_task']> {
  const file = paths.currentTask(agent);
  const bytes = await readIfExists(file);
  if (bytes === null) return null;
  const mtime = (await fs.stat(file).catch(() => null))?.mtime ?? now;
  const parsed = parseTask(bytes, () => '', mtime);
  if (!parsed.ok) return { id: null, created_at: null, age_ms: null, problem: parsed.problems.join('; ') };
  const { id, created_at } = parsed.task;
  return { id: id || null, created_at, age_ms: Math.max(0, now.getTime() - Date.parse(created_at)), problem: null };
}

/** Folders under agents/ with an allowed name; others are reported. */
async function agentFolders(paths: HomePaths, problems: string[]): Promise<string[]> {
  const entries = await fs.readdir(paths.agentsDir(), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const names: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    if (isValidName(e.name) && !isReservedAgentName(e.name)) names.push(e.name);
    else problems.push(`agents/${e.name}: the folder name is not an allowed agent name; the daemon skips it`);
  }
  return names.sort();
}

function render(paths: HomePaths, configError: string | null, agents: AgentStatus[], openItems: OutboxItem[], deadLetters: Record<string, number>, problems: string[]): string {
  const out: string[] = [`home: ${paths.root}`];
  if (configError) out.push(`agentd.yaml is invalid (agents shown against built-in defaults):\n${configError}`);
  if (agents.length === 0) out.push('no agents (agents/<name>/agent.yaml)');
  else {
    const rows = agents.map((a) => [
      a.agent,
      a.status,
      a.current_task ? (a.current_task.id ?? 'malformed') : null,
      a.current_task?.age_ms != null ? formatDuration(a.current_task.age_ms) : null,
      a.queue,
      a.attempts,
      a.active_run?.run_id,
      a.last_run ? `${a.last_run.status}${a.last_run.error_category ? ` (${a.last_run.error_category})` : ''}` : null,
      `$${a.spend_today_usd.toFixed(4)}`,
      a.open_items,
    ]);
    out.push(formatTable(['AGENT', 'STATUS', 'TASK', 'AGE', 'QUEUE', 'ATTEMPTS', 'RUN', 'LAST RUN', 'SPENT TODAY', 'OPEN ITEMS'], rows).trimEnd());
    for (const a of agents) {
      if (a.config_error) out.push(`${a.agent}: config_error: ${a.config_error}`);
      if (a.current_task?.problem) out.push(`${a.agent}: current-task.json: ${a.current_task.problem}`);
      if (a.last_error) out.push(`${a.agent}: last error (${a.last_error.category}): ${truncate(a.last_error.message, 100)}`);
      if (a.next_attempt_at && a.status === 'retry_wait') out.push(`${a.agent}: next attempt at ${a.next_attempt_at}`);
    }
  }
  out.push('');
  if (openItems.length === 0) out.push('open outbox items: none');
  else {
    out.push(`open outbox items (${openItems.length}):`);
    const rows = openItems.map((i) => [i.id, i.agent, i.kind, i.task_id, truncate(i.reason, 60)]);
    out.push(formatTable(['ID', 'AGENT', 'KIND', 'TASK', 'REASON'], rows).trimEnd());
  }
  const dead = Object.entries(deadLetters);
  out.push(dead.length === 0 ? 'dead letters: none' : `dead letters: ${dead.map(([a, n]) => `${a} ${n}`).join(', ')} (agentd dlq)`);
  out.push(CIRCUITS_NOTE);
  for (const p of problems) out.push(...p.split('\n').map((line) => `problem: ${line}`));
  return out.join('\n') + '\n';
}
