import fs from 'node:fs/promises';

/**
 * What /healthz answers. The decision is pure; the daemon gathers the facts
 * and `probeWritable` is the one bit of I/O.
 */

export interface HealthFacts {
  /** The daemon's lifecycle state. */
  state: 'starting' | 'running' | 'stopping' | 'stopped';
  /** `off` when the daemon runs without a watcher (tests, `watch: false`). */
  watcher: 'alive' | 'closed' | 'off';
  /** The scheduler still accepts work. */
  schedulerAccepting: boolean;
  /** Since the daemon's periodic timer last ran, ms; null before its first run. */
  sinceTickMs: number | null;
  /** How often that timer runs, ms. */
  tickIntervalMs: number;
  /** Result of writing and removing a file under state/. */
  writable: { ok: true } | { ok: false; problem: string };
}

export interface HealthVerdict {
  ok: boolean;
  /** Why it is not ok, one line each; empty when ok. */
  reasons: string[];
}

/** Missed ticks before the daemon's timers count as stalled (the event loop blocked or the timer gone). */
const MISSED_TICKS = 3;

export function decideHealth(facts: HealthFacts): HealthVerdict {
  const reasons: string[] = [];
  if (facts.state !== 'running') reasons.push(`daemon is ${facts.state}`);
  if (facts.watcher === 'closed') reasons.push('file watcher is not running: edits to agents/ and outbox/ go unnoticed');
  if (!facts.schedulerAccepting) reasons.push('scheduler is not accepting work');
  if (facts.sinceTickMs !== null && facts.sinceTickMs > MISSED_TICKS * facts.tickIntervalMs) {
    reasons.push(`scheduler loop stalled: the daemon's timer last ran ${Math.round(facts.sinceTickMs / 1000)}s ago`);
  }
  if (!facts.writable.ok) reasons.push(`home not writable: ${facts.writable.problem}`);
  return { ok: reasons.length === 0, reasons };
}

/** Write a small file and remove it: what every run needs the home to allow. */
export async function probeWritable(file: string): Promise<HealthFacts['writable']> {
  try {
    await fs.writeFile(file, `${Date.now()}\n`);
    await fs.unlink(file);
    return { ok: true };
  } catch (err) {
    await fs.unlink(file).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    return { ok: false, problem: `${e.code ?? 'error'} writing ${file}: ${e.message}` };
  }
}
