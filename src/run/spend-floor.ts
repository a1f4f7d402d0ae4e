import type { Logger } from 'pino';
import type { JournalSpend } from '../store/journal.js';
import type { HomePaths } from '../store/paths.js';
import { newItemId, updateOutbox } from '../store/outbox.js';

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

/** Pure: two spends added, field by field. */
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

/**
 * The task's spend before this run: the larger of journal and checkpoint. A
 * journal that lost records gets a warning and, once per task, a
 * `journal_lost` outbox item (not tied to the task, so it does not hold it back).
 */
export async function spendSoFar(
  deps: { paths: HomePaths; log: Logger; clock: { now(): number } },
  agent: string,
  taskId: string,
  journal: JournalSpend,
  checkpoint: StoredSpend | null | undefined,
): Promise<JournalSpend> {
  const stored = fromStored(checkpoint);
  const { spend, short } = reconcileSpend(journal, stored);
  if (short.length === 0) return spend;
  deps.log.warn({ task_id: taskId, fields: short, journal, checkpoint: stored }, 'journal is shorter than the checkpoint says; the checkpoint counts');
  await updateOutbox(deps.paths, agent, (outbox) => {
    if (outbox.items.some((i) => i.kind === 'journal_lost' && i.status === 'open' && (i.details as { task_id?: string } | undefined)?.task_id === taskId)) return;
    outbox.items.push({
      id: newItemId(agent),
      kind: 'journal_lost',
      agent,
      task_id: null,
      run_id: null,
      created_at: new Date(deps.clock.now()).toISOString(),
      reason: `the journal of task ${taskId} shows less spend than its checkpoint (${short.join(', ')}): records were lost while the daemon was stopped; the checkpoint's spend still counts against the budget, but calls it lost will not be replayed`,
      question: 'Resolve to acknowledge.',
      details: { task_id: taskId, journal: toStored(journal), checkpoint: checkpoint ?? null },
      status: 'open',
    });
  });
  return spend;
}
