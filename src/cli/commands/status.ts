import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { loadAgentDefinition } from '../../config/agent-definition.js';
import { loadDaemonConfig, resolveDaemonConfig } from '../../config/daemon-config.js';
import { formatDuration } from '../../config/duration.js';
import type { DaemonConfig } from '../../config/types.js';
import { errorMessage } from '../../errors.js';
import { readCheckpoint, type TaskCheckpoint } from '../../store/checkpoint.js';
import { readIfExists } from '../../store/durable.js';
import { daemonRunning, readDaemonStatus, type DaemonLastError, type DaemonStatusCircuit, type DaemonStatusToolCircuit, type DaemonStatusFile, type DaemonStatusRun } from '../../store/daemon-status.js';
import { readLastHistoryLine } from '../../store/history.js';
import { blocksTask, readAllOutboxes, type OutboxItem } from '../../store/outbox.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { readDailySpend } from '../../store/spend.js';
import { countDeadLetters } from '../../store/dead-letters.js';
import { inboxSize } from '../../store/inbox-index.js';
import { parseTask } from '../../store/tasks.js';
import { countParked } from '../../store/waiting.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';
import { newestFirst, truncate } from './outbox.js';
import { hostId, pidAlive } from '../../store/host.js';

type AgentState = 'config_error' | 'running' | 'waiting_for_person' | 'retry_wait' | 'pending' | 'queued' | 'idle';

interface AgentStatus {
  agent: string;
  status: AgentState;
  /** The definition's problems when status is config_error. */
  config_error: string | null;
  current_task: { id: string | null; created_at: string | null; age_ms: number | null; problem: string | null } | null;
  queue: number;
  /** Tasks parked while they wait on a person (README "Tasks", `while_waiting`). */
  parked: number;
  attempts: number;
  /** The current task's last error, else the daemon's last failed run of this agent. */
  last_error: ({ category: string; message: string } & Partial<DaemonLastError>) | null;
  active_run: { run_id: string; trigger: string; started_at: string } | null;
  /** The run in progress with its live counters, from the running daemon's snapshot. */
  run: DaemonStatusRun | null;
  next_attempt_at: string | null;
  last_run: { run_id: string; status: string; ended_at: string; error_category: string | null } | null;
  spend_today_usd: number;
  open_items: number;
  dead_letters: number;
}

/** What the daemon's snapshot (state/daemon.json) says, when the daemon that wrote it is running. */
type DaemonView =
  | { running: true; pid: number; host: string; state: string; started_at: string; uptime_ms: number; http: string | null; snapshot_at: string; snapshot_age_ms: number }
  | { running: false; last_seen: { pid: number; host: string; state: string; at: string } | null };

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
  const snapshot = await readDaemonStatus(paths);
  const live = snapshot && daemonRunning(snapshot, { now: now.getTime(), host: hostId(), pidAlive }) ? snapshot : null;
  const daemon = daemonView(snapshot, live, now);
  const outboxes = await readAllOutboxes(paths);
  problems.push(...outboxes.problems);
  const openItems = outboxes.items.filter((i) => i.status === 'open').sort(newestFirst);
  const deadLetters = await countDeadLetters(paths);

  const agents: AgentStatus[] = [];
  for (const agent of await agentFolders(paths, problems)) {
    const row = await agentStatus(paths, config, agent, openItems, now);
    if (row) agents.push({ ...withDaemon(row, live), dead_letters: deadLetters[agent] ?? 0 });
  }
  const circuits = live?.circuits ?? [];
  const toolCircuits = live?.tool_circuits ?? [];
  const spendToday = agents.reduce((sum, a) => sum + a.spend_today_usd, 0);

  if (options.json) {
    printJson({ home: paths.root, at: now.toISOString(), daemon, config_error: configError, agents, runs: live?.runs ?? [], warm: live?.warm ?? [], open_items: openItems, dead_letters: deadLetters, circuits, tool_circuits: toolCircuits, spend_today_usd: spendToday, problems });
  } else {
    process.stdout.write(render(paths, daemon, configError, agents, openItems, deadLetters, { models: circuits, tools: toolCircuits }, spendToday, problems) + renderWarm(live));
  }
  return EXIT.ok;
}

/** One agent's row, or null when its folder has no definition (it is not an agent). */
async function agentStatus(paths: HomePaths, config: DaemonConfig, agent: string, openItems: OutboxItem[], now: Date): Promise<Omit<AgentStatus, 'dead_letters' | 'run'> | null> {
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
  const parked = await countParked(paths, agent);
  const active = checkpoint?.active_run ?? null;
  const state: AgentState =
    configError ? 'config_error'
    : active ? 'running'
    : current?.id && mine.some((i) => blocksTask(i, current.id!)) ? 'waiting_for_person'
    : current && checkpoint?.next_attempt_at && Date.parse(checkpoint.next_attempt_at) > now.getTime() ? 'retry_wait'
    : current ? 'pending'
    : queue > 0 ? 'queued'
    : parked > 0 ? 'waiting_for_person' // only parked tasks are left, each waiting on a person
    : 'idle';
  return {
    agent,
    status: state,
    config_error: configError,
    current_task: current,
    queue,
    parked,
    attempts: checkpoint?.attempts ?? 0,
    last_error: checkpoint?.last_error ?? null,
    active_run: active ? { run_id: active.run_id, trigger: active.trigger, started_at: active.started_at } : null,
    next_attempt_at: checkpoint?.next_attempt_at ?? null,
    last_run: last ? { run_id: last.run_id, status: last.status, ended_at: last.ended_at, error_category: last.error_category } : null,
    spend_today_usd: await readDailySpend(paths, agent, now),
    open_items: mine.length,
  };
}

/** Adds what only the running daemon knows: the live run and the last error of a task that has left. */
function withDaemon(row: Omit<AgentStatus, 'dead_letters' | 'run'>, live: DaemonStatusFile | null): Omit<AgentStatus, 'dead_letters'> {
  const run = live?.runs.find((r) => r.agent === row.agent) ?? null;
  return { ...row, run, last_error: row.last_error ?? live?.last_errors[row.agent] ?? null };
}

function daemonView(snapshot: DaemonStatusFile | null, live: DaemonStatusFile | null, now: Date): DaemonView {
  if (!live) return { running: false, last_seen: snapshot ? { pid: snapshot.pid, host: snapshot.host, state: snapshot.state, at: snapshot.written_at } : null };
  return {
    running: true,
    pid: live.pid,
    host: live.host,
    state: live.state,
    started_at: live.started_at,
    uptime_ms: Math.max(0, now.getTime() - Date.parse(live.started_at)),
    http: live.http,
    snapshot_at: live.written_at,
    snapshot_age_ms: Math.max(0, now.getTime() - Date.parse(live.written_at)),
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

function render(
  paths: HomePaths,
  daemon: DaemonView,
  configError: string | null,
  agents: AgentStatus[],
  openItems: OutboxItem[],
  deadLetters: Record<string, number>,
  circuits: { models: DaemonStatusCircuit[]; tools: DaemonStatusToolCircuit[] },
  spendToday: number,
  problems: string[],
): string {
  const out: string[] = [`home: ${paths.root}`, renderDaemon(daemon)];
  if (configError) out.push(`agentd.yaml is invalid (agents shown against built-in defaults):\n${configError}`);
  if (agents.length === 0) out.push('no agents (agents/<name>/agent.yaml)');
  else {
    const rows = agents.map((a) => [
      a.agent,
      a.status,
      a.current_task ? (a.current_task.id ?? 'malformed') : null,
      a.current_task?.age_ms != null ? formatDuration(a.current_task.age_ms) : null,
      a.queue,
      a.parked,
      a.attempts,
      a.active_run?.run_id,
      a.run ? `${a.run.task_steps}/${a.run.max_steps}` : null,
      a.run ? `$${a.run.task_cost_usd.toFixed(4)}` : null,
      a.last_run ? `${a.last_run.status}${a.last_run.error_category ? ` (${a.last_run.error_category})` : ''}` : null,
      `$${a.spend_today_usd.toFixed(4)}`,
      a.open_items,
    ]);
    out.push(formatTable(['AGENT', 'STATUS', 'TASK', 'AGE', 'QUEUE', 'PARKED', 'ATTEMPTS', 'RUN', 'STEPS', 'COST', 'LAST RUN', 'SPENT TODAY', 'OPEN ITEMS'], rows).trimEnd());
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
  out.push(renderCircuits(daemon, circuits.models));
  out.push(renderToolCircuits(daemon, circuits.tools));
  out.push(`spent today (UTC, all agents): $${spendToday.toFixed(4)}`);
  for (const p of problems) out.push(...p.split('\n').map((line) => `problem: ${line}`));
  return out.join('\n') + '\n';
}

/** Warm agents (README.md, "Warm agents"): one line, after the rest, only while a daemon keeps some. */
function renderWarm(live: DaemonStatusFile | null): string {
  const warm = live?.warm ?? [];
  if (warm.length === 0) return '';
  const total = warm.reduce((sum, w) => sum + (w.rss_mb ?? 0), 0);
  // rss_mb is null while a process's memory is not known yet (run/warm-pool.ts rssMbOf): said so, not shown as 0.
  const each = warm.map((w) => `${w.agent} pid ${w.pid}${w.spare ? ' (spare)' : ''} ${w.rss_mb === null ? 'memory not known yet' : `${w.rss_mb.toFixed(1)} MB`}`);
  const unknown = warm.filter((w) => w.rss_mb === null).length;
  return `warm agents (${warm.length}, ${total.toFixed(1)} MB${unknown > 0 ? `, ${unknown} not known yet` : ''}): ${each.join(', ')}\n`;
}

function renderDaemon(daemon: DaemonView): string {
  if (daemon.running) {
    return `daemon: ${daemon.state}, pid ${daemon.pid} on ${daemon.host}, up ${formatDuration(daemon.uptime_ms)}${daemon.http ? `, http ${daemon.http}` : ''}`;
  }
  const seen = daemon.last_seen ? ` (last seen ${daemon.last_seen.at}: pid ${daemon.last_seen.pid} on ${daemon.last_seen.host}, ${daemon.last_seen.state})` : '';
  return `daemon: not running${seen}; what the files say:`;
}

function renderToolCircuits(daemon: DaemonView, circuits: DaemonStatusToolCircuit[]): string {
  if (!daemon.running) return 'tool circuits: unknown (kept by the running daemon)';
  if (circuits.length === 0) return 'tool circuits: none yet (no tool called since the daemon started)';
  const shown = circuits.map((c) => (c.state === 'closed' ? `${c.tool} closed` : `${c.tool} ${c.state.toUpperCase()} (${c.failures} failures${c.opened_at ? `, opened ${c.opened_at}` : ''})`));
  return `tool circuits: ${shown.join(', ')}`;
}

function renderCircuits(daemon: DaemonView, circuits: DaemonStatusCircuit[]): string {
  if (!daemon.running) return 'circuits: unknown (kept by the running daemon)';
  if (circuits.length === 0) return 'circuits: none yet (no model called since the daemon started)';
  const shown = circuits.map((c) => (c.state === 'closed' ? `${c.model} closed` : `${c.model} ${c.state.toUpperCase()} (${c.failures} failures${c.opened_at ? `, opened ${c.opened_at}` : ''})`));
  return `circuits: ${shown.join(', ')}`;
}
