import writeFileAtomic from 'write-file-atomic';
import { readIfExists, stateFileMode } from './durable.js';
import type { HomePaths } from './paths.js';

/**
 * state/daemon.json: what a running daemon knows that no other file says
 * (its runs' live counters, the circuits, its uptime), rewritten every few
 * seconds for `agentd status`. A snapshot, never an input: nothing reads it
 * to decide what to run.
 */

export interface DaemonStatusRun {
  agent: string;
  task_id: string;
  run_id: string;
  started_at: string;
  /** This run's own spend so far. */
  steps: number;
  tool_calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** The task's totals across its runs, and its limits. */
  task_steps: number;
  task_cost_usd: number;
  max_steps: number;
  max_cost_usd: number;
}

export interface DaemonStatusCircuit {
  model: string;
  state: 'closed' | 'open' | 'half_open';
  failures: number;
  opened_at: string | null;
}

/** A tool's circuit: `tool` is the shared tool's name, or `<agent>/<tool>` for an agent's own. */
export interface DaemonStatusToolCircuit {
  tool: string;
  state: 'closed' | 'open' | 'half_open';
  failures: number;
  opened_at: string | null;
}

export interface DaemonLastError {
  at: string;
  category: string;
  message: string;
  task_id: string | null;
  run_id: string | null;
}

export interface DaemonStatusFile {
  v: 1;
  pid: number;
  host: string;
  started_at: string;
  /** When this snapshot was taken. */
  written_at: string;
  uptime_ms: number;
  state: 'starting' | 'running' | 'stopping' | 'stopped';
  /** The /healthz and /metrics address, or null. */
  http: string | null;
  agents: string[];
  runs: DaemonStatusRun[];
  circuits: DaemonStatusCircuit[];
  /** Every tool circuit that has seen a call since the daemon started (absent in files of older daemons). */
  tool_circuits?: DaemonStatusToolCircuit[];
  /** The last failed run (or failed claim) of each agent since the daemon started. */
  last_errors: Record<string, DaemonLastError>;
  /** Per agent and in total, the current UTC day. */
  spend_today_usd: { total: number; agents: Record<string, number> };
  /** Warm agent processes waiting for a task (run/warm-pool.ts), with their memory; absent from older daemons. */
  warm?: { agent: string; pid: number; started_at: string; rss_mb: number | null; spare?: true }[];
}

/**
 * Atomic (temp file, rename) but not fsynced: a snapshot rewritten every few
 * seconds is worth no disk flush, and a crash only leaves an older one.
 */
export async function writeDaemonStatus(paths: HomePaths, status: DaemonStatusFile): Promise<void> {
  await writeFileAtomic(paths.daemonStatus(), JSON.stringify(status, null, 2) + '\n', { fsync: false, mode: stateFileMode() });
}

/** The snapshot, or null when there is none or it is unreadable (it is rewritten within seconds). */
export async function readDaemonStatus(paths: HomePaths): Promise<DaemonStatusFile | null> {
  const bytes = await readIfExists(paths.daemonStatus());
  if (!bytes) return null;
  try {
    const value = JSON.parse(bytes.toString('utf8')) as DaemonStatusFile;
    return value && value.v === 1 && typeof value.pid === 'number' ? value : null;
  } catch {
    return null;
  }
}

/** A snapshot this much younger than now speaks for a live daemon even on another host. */
export const STATUS_FRESH_MS = 10_000;

/**
 * Is the daemon that wrote `status` running? Pure. Not when it said it
 * stopped. On this host its pid decides (a daemon killed a second ago is
 * gone, however fresh its file); a daemon on another host sharing the home
 * is running while its snapshot is fresher than STATUS_FRESH_MS.
 */
export function daemonRunning(status: DaemonStatusFile, facts: { now: number; host: string; pidAlive: (pid: number) => boolean }): boolean {
  if (status.state === 'stopped') return false;
  if (status.host === facts.host) return facts.pidAlive(status.pid);
  return facts.now - Date.parse(status.written_at) < STATUS_FRESH_MS;
}
