import fs from 'node:fs/promises';
import type { HomePaths } from './paths.js';
import { appendJsonLine, readJsonLines } from './durable.js';
import type { RunTrigger } from './checkpoint.js';

export type RunStatus = 'done' | 'failed' | 'escalated' | 'limit' | 'interrupted' | 'cancelled' | 'dead_letter';

/** One line of state/<agent>/history.jsonl per finished run (README "Traces and stats"). */
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
  /** Wall time of each model call the gateway answered in the run (not replays or cache hits), ms. Absent in older lines. */
  model_latency_ms?: number[];
}

export async function appendHistory(paths: HomePaths, line: HistoryLine): Promise<void> {
  await appendJsonLine(paths.history(line.agent), line);
}

export async function readHistory(paths: HomePaths, agent: string): Promise<HistoryLine[]> {
  return readJsonLines<HistoryLine>(paths.history(agent));
}

/**
 * The last complete line of an agent's history, reading only the file's tail
 * (history grows without bound). A torn last line (a crash mid-append) is
 * skipped. Null when there is no history.
 */
export async function readLastHistoryLine(paths: HomePaths, agent: string): Promise<HistoryLine | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(paths.history(agent), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    for (let window = 16_384; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      const lines = buf.toString('utf8').split('\n');
      // The first piece may be the middle of a line (unless we read from 0); the last is '' or a torn tail.
      const complete = lines.slice(start === 0 ? 0 : 1, -1);
      for (let i = complete.length - 1; i >= 0; i--) {
        const line = complete[i]!;
        if (line.trim() === '') continue;
        try {
          return JSON.parse(line) as HistoryLine;
        } catch {
          // a line a crash left unparseable: the one before it is the last good one
        }
      }
      if (start === 0) return null;
    }
  } finally {
    await handle.close();
  }
}
