import type { JournalSpend } from '../store/journal.js';

/**
 * A task's spend lives in its journal and, as a floor, in its checkpoint
 * (README.md, "The guarantee"): a journal emptied or garbled while the daemon
 * was stopped must not hand the task a fresh budget. Pure.
 */
export interface Reconciled {
  spend: JournalSpend;
  /** The fields where the journal shows less than the checkpoint: the journal lost records. */
  short: (keyof JournalSpend)[];
}

const FIELDS: (keyof JournalSpend)[] = ['steps', 'toolCalls', 'inputTokens', 'outputTokens', 'costUsd'];

export function reconcileSpend(journal: JournalSpend, checkpoint: JournalSpend | null | undefined): Reconciled {
  if (!checkpoint) return { spend: { ...journal }, short: [] };
  const spend = { ...journal };
  const short: (keyof JournalSpend)[] = [];
  for (const field of FIELDS) {
    // A float sum read back in another order may differ in its last bits: not a loss.
    if (checkpoint[field] > journal[field] + 1e-9) {
      spend[field] = checkpoint[field];
      short.push(field);
    }
  }
  return { spend, short };
}

/** Two spends added, field by field. */
export function addSpend(a: JournalSpend, b: JournalSpend): JournalSpend {
  return {
    steps: a.steps + b.steps,
    toolCalls: a.toolCalls + b.toolCalls,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    costUsd: a.costUsd + b.costUsd,
  };
}

/** The floor as checkpoint.json stores it. */
export interface StoredSpend {
  steps: number;
  tool_calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export function toStored(s: JournalSpend): StoredSpend {
  return { steps: s.steps, tool_calls: s.toolCalls, input_tokens: s.inputTokens, output_tokens: s.outputTokens, cost_usd: s.costUsd };
}

export function fromStored(s: StoredSpend | null | undefined): JournalSpend | null {
  if (!s || typeof s !== 'object') return null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return { steps: n(s.steps), toolCalls: n(s.tool_calls), inputTokens: n(s.input_tokens), outputTokens: n(s.output_tokens), costUsd: n(s.cost_usd) };
}
