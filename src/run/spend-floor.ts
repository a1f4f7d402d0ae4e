import type { Logger } from 'pino';
import type { JournalSpend } from '../store/journal.js';
import type { HomePaths } from '../store/paths.js';
import type { OutboxItem } from '../store/outbox.js';
import { raise } from '../core/effects.js';
import { raiseOutboxItem } from '../store/effects.js';
import { fromStored, reconcileSpend, toStored, type StoredSpend } from '../core/spend.js';

export { addSpend, fromStored, reconcileSpend, toStored, type Reconciled, type StoredSpend } from '../core/spend.js';

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
  const lost = (items: OutboxItem[]) => items.some((i) => i.kind === 'journal_lost' && i.status === 'open' && (i.details as { task_id?: string } | undefined)?.task_id === taskId);
  const item = {
    kind: 'journal_lost' as const,
    agent,
    task_id: null,
    run_id: null,
    created_at: new Date(deps.clock.now()).toISOString(),
    reason: `the journal of task ${taskId} shows less spend than its checkpoint (${short.join(', ')}): records were lost while the daemon was stopped; the checkpoint's spend still counts against the budget, but calls it lost will not be replayed`,
    question: 'Resolve to acknowledge.',
    details: { task_id: taskId, journal: toStored(journal), checkpoint: checkpoint ?? null },
  };
  // A notice, not a decision: no audit line; the warning above is its log line.
  await raiseOutboxItem(deps, raise(item, { level: 'debug', msg: 'journal_lost item opened', fields: { task_id: taskId } }, null), lost);
  return spend;
}
