import type { JournalSpend } from '../store/journal.js';

/**
 * The runs in progress in this process, with live counters, for the status
 * snapshot and /metrics. The run host adds itself when its agent has started
 * and ends itself when the process is gone; nothing here touches a file.
 */

export interface RunProgress {
  /** This run's spend so far (replayed calls cost nothing and count no steps). */
  run: JournalSpend;
  /** The task's steps and cost across all its runs, this one included. */
  taskSteps: number;
  taskCostUsd: number;
  /** The task's limits. */
  maxSteps: number;
  maxCostUsd: number;
}

export interface LiveRun {
  agent: string;
  taskId: string;
  runId: string;
  /** Epoch ms. */
  startedAt: number;
  progress(): RunProgress;
}

/** How a run ended, as /metrics counts it. */
export interface EndedRun {
  run: LiveRun;
  /** The RunOutcome's kind: done, failed, escalated, limit, interrupted, ... */
  outcome: string;
  /** A failed run's category and message. */
  error: { category: string; message: string } | null;
  spend: JournalSpend;
}

export class LiveRuns {
  private readonly runs = new Map<string, LiveRun>();

  /** `onEnded` is called once per run; it must not throw (it is wrapped so a bad listener cannot fail a run). */
  constructor(private readonly onEnded: (ended: EndedRun) => void = () => undefined) {}

  add(run: LiveRun): void {
    this.runs.set(run.runId, run);
  }

  end(runId: string, outcome: string, spend: JournalSpend, error: EndedRun['error'] = null): void {
    const run = this.runs.get(runId);
    if (!run) return;
    this.runs.delete(runId);
    try {
      this.onEnded({ run, outcome, error, spend });
    } catch {
      // metrics are best effort; the run's outcome is already decided
    }
  }

  /** Oldest first. */
  list(): LiveRun[] {
    return [...this.runs.values()].sort((a, b) => a.startedAt - b.startedAt);
  }

  get size(): number {
    return this.runs.size;
  }
}
