import type { HomePaths } from './paths.js';
import { appendJsonLine, readJsonLines } from './durable.js';
import type { RunTrigger } from './checkpoint.js';

export type RunStatus = 'done' | 'failed' | 'escalated' | 'limit' | 'interrupted' | 'cancelled' | 'dead_letter';

/** One line of state/<agent>/history.jsonl per finished run (DESIGN.md section 11). */
export interface HistoryLine {
  v: 1;
  run_id: string;
  task_id: string;
  agent: string;
  trigger: RunTrigger;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  status: RunStatus;
  steps: number;
  tool_calls: number;
  tokens: { input: number; output: number };
  cost_usd: number;
  error_category: string | null;
  error: string | null;
  models: string[];
  agent_version: string;
  definition_hash: string;
  /** The definition changed since the task's previous run. */
  definition_changed: boolean;
  degraded: boolean;
}

export async function appendHistory(paths: HomePaths, line: HistoryLine): Promise<void> {
  await appendJsonLine(paths.history(line.agent), line);
}

export async function readHistory(paths: HomePaths, agent: string): Promise<HistoryLine[]> {
  return readJsonLines<HistoryLine>(paths.history(agent));
}
