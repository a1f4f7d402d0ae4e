import type { CircuitInfo } from '../model/circuit-breaker.js';
import type { SpanLine } from '../observe/trace.js';
import type { DaemonStatusFile } from '../store/daemon-status.js';
import { readJsonLines } from '../store/durable.js';
import type { HistoryLine } from '../store/history.js';
import { agentsWithState, findTraceFile, scanHistory } from '../store/history-scan.js';
import { blocksTask, readAllOutboxes, type OutboxItem } from '../store/outbox.js';
import { assertName, type HomePaths } from '../store/paths.js';
import { decisionsFor } from '../store/resolution.js';
import { inboxSize } from '../store/inbox-index.js';
import { listDeadLetters } from '../store/dead-letters.js';

/**
 * What the console shows (README "Console"), read from the home's files and
 * the daemon's live view. Read-only: changes go through store/resolution.ts
 * and store/dead-letters.ts. Nothing here carries a key or an environment value.
 */

export interface ConsoleView {
  snapshot(): Promise<DaemonStatusFile>;
  toolCircuits(): CircuitInfo[];
}

export type ConsoleItem = OutboxItem & { decisions: string[] };

/** Open items oldest first (the longest waiting on top), and the last resolved ones newest first. */
export async function outboxView(paths: HomePaths): Promise<{ open: ConsoleItem[]; resolved: OutboxItem[]; problems: string[] }> {
  const { items, problems } = await readAllOutboxes(paths);
  const open = items.filter((i) => i.status === 'open').sort((a, b) => a.created_at.localeCompare(b.created_at));
  const resolved = items
    .filter((i) => i.status === 'resolved')
    .sort((a, b) => (b.resolution?.at ?? b.created_at).localeCompare(a.resolution?.at ?? a.created_at))
    .slice(0, 20);
  return { open: open.map((i) => ({ ...i, decisions: decisionsFor(i.kind) })), resolved, problems };
}

/** Each agent: what it is doing, its queue, open items and spend today; the model and tool circuits. */
export async function agentsView(paths: HomePaths, view: ConsoleView) {
  const snapshot = await view.snapshot();
  const { items } = await readAllOutboxes(paths);
  const agents = [];
  for (const name of [...snapshot.agents].sort()) {
    const run = snapshot.runs.find((r) => r.agent === name) ?? null;
    const mine = items.filter((i) => i.agent === name && i.status === 'open');
    const blocked = mine.some((i) => i.task_id !== null && blocksTask(i, i.task_id));
    agents.push({
      name,
      state: run ? 'running' : blocked ? 'waiting for a person' : 'idle',
      run,
      inbox: await inboxSize(paths, name),
      open_items: mine.length,
      spend_today_usd: snapshot.spend_today_usd.agents[name] ?? 0,
      last_error: snapshot.last_errors[name] ?? null,
    });
  }
  const tools = view.toolCircuits().map((c) => ({ ...c, opened_at: c.opened_at === null ? null : new Date(c.opened_at).toISOString() }));
  return { daemon: { state: snapshot.state, pid: snapshot.pid, started_at: snapshot.started_at, uptime_ms: snapshot.uptime_ms }, agents, circuits: { models: snapshot.circuits, tools } };
}

export interface RunFilter {
  agent: string | null;
  status: string | null;
  /** Case-insensitive part of the task or run id. */
  search: string | null;
  limit: number;
}

/** Finished runs, newest first, filtered. */
export async function runsView(paths: HomePaths, filter: RunFilter): Promise<HistoryLine[]> {
  const agents = filter.agent ? [assertName(filter.agent, 'agent name')] : await agentsWithState(paths);
  const needle = filter.search?.toLowerCase() ?? null;
  const runs: HistoryLine[] = [];
  for (const agent of agents) {
    for await (const line of scanHistory(paths.history(agent), { sinceMs: null })) {
      if (filter.status && line.status !== filter.status) continue;
      if (needle && !line.task_id.toLowerCase().includes(needle) && !line.run_id.toLowerCase().includes(needle)) continue;
      runs.push(line);
    }
  }
  return runs.sort((a, b) => b.started_at.localeCompare(a.started_at)).slice(0, filter.limit);
}

/** A run's spans, or null when it has no trace. */
export async function traceView(paths: HomePaths, runId: string): Promise<SpanLine[] | null> {
  assertName(runId, 'task id');
  const file = await findTraceFile(paths, runId);
  return file ? readJsonLines<SpanLine>(file) : null;
}

/** Cost per agent per UTC day over the last `days` days, from history. Pure over the lines. */
export function spendByDay(lines: Iterable<HistoryLine>, days: number, now: Date): { days: string[]; agents: Record<string, number[]> } {
  const labels: string[] = [];
  for (let i = days - 1; i >= 0; i--) labels.push(new Date(now.getTime() - i * 86_400_000).toISOString().slice(0, 10));
  const agents: Record<string, number[]> = {};
  for (const line of lines) {
    const at = labels.indexOf(line.started_at.slice(0, 10));
    if (at === -1 || !(line.cost_usd > 0)) continue;
    (agents[line.agent] ??= labels.map(() => 0))[at]! += line.cost_usd;
  }
  return { days: labels, agents };
}

export async function spendView(paths: HomePaths, days: number, now: Date) {
  const since = now.getTime() - days * 86_400_000;
  const lines: HistoryLine[] = [];
  for (const agent of await agentsWithState(paths)) {
    for await (const line of scanHistory(paths.history(agent), { sinceMs: since })) lines.push(line);
  }
  return spendByDay(lines, days, now);
}

export async function deadLettersView(paths: HomePaths) {
  return (await listDeadLetters(paths)).map((e) => ({
    agent: e.agent,
    id: e.id,
    goal: e.record?.task?.goal ?? null,
    error: e.record?.error ?? null,
    attempts: e.record?.attempts ?? null,
    at: e.record?.dead_lettered_at ?? null,
  }));
}
