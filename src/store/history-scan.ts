import fs from 'node:fs';
import type { HistoryLine } from './history.js';
import { isReservedAgentName, isValidName, type HomePaths } from './paths.js';

/**
 * Reading long histories without holding them: a history file is streamed in
 * large chunks, and a line that started before `since` is dropped before it is
 * parsed. The daemon writes `started_at` as a 24-character ISO 8601 string,
 * which compares as text; a line where it cannot be found that way is parsed
 * and checked like any other.
 */

const STARTED_AT = '"started_at":"';
const ISO_LENGTH = 24; // 2025-01-02T03:04:05.678Z

export interface ScanOptions {
  /** Only runs started at or after this (epoch ms); null: all. */
  sinceMs: number | null;
}

/** Each complete, parseable line of `file`, oldest first; a missing file has none. Unparseable lines are skipped. */
export async function* scanHistory(file: string, options: ScanOptions): AsyncGenerator<HistoryLine> {
  const sinceIso = options.sinceMs !== null ? new Date(options.sinceMs).toISOString() : null;
  const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let pending = '';
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const text = pending + chunk;
      let from = 0;
      let nl: number;
      while ((nl = text.indexOf('\n', from)) !== -1) {
        const line = parseIfInWindow(text.slice(from, nl), sinceIso, options.sinceMs);
        if (line) yield line;
        from = nl + 1;
      }
      pending = text.slice(from);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // A last line without a newline is an append a crash cut short: skipped unless it parses.
  const last = parseIfInWindow(pending, sinceIso, options.sinceMs);
  if (last) yield last;
}

function parseIfInWindow(text: string, sinceIso: string | null, sinceMs: number | null): HistoryLine | null {
  if (text.length < 2) return null;
  if (sinceIso !== null) {
    const at = text.indexOf(STARTED_AT);
    if (at !== -1) {
      const started = text.slice(at + STARTED_AT.length, at + STARTED_AT.length + ISO_LENGTH);
      if (started.length === ISO_LENGTH && started.endsWith('Z') && started < sinceIso) return null;
    }
  }
  let line: HistoryLine;
  try {
    line = JSON.parse(text) as HistoryLine;
  } catch {
    return null;
  }
  if (typeof line !== 'object' || line === null || typeof line.started_at !== 'string') return null;
  if (sinceMs !== null && !(Date.parse(line.started_at) >= sinceMs)) return null;
  return line;
}

/** Agents with a state folder, sorted: history and traces outlive a removed definition. */
export async function agentsWithState(paths: HomePaths): Promise<string[]> {
  const entries = await fs.promises.readdir(paths.stateRoot(), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries.filter((e) => e.isDirectory() && isValidName(e.name) && !isReservedAgentName(e.name)).map((e) => e.name).sort();
}

/** A run's trace file, in whichever agent's state it is, or null. */
export async function findTraceFile(paths: HomePaths, runId: string): Promise<string | null> {
  for (const agent of await agentsWithState(paths)) {
    const file = paths.trace(agent, runId);
    try {
      await fs.promises.access(file);
      return file;
    } catch {
      // not this agent's run
    }
  }
  return null;
}
