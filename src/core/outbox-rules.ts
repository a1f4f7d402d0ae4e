import type { OutboxItem, OutboxKind } from '../store/outbox.js';

/**
 * Kinds that are told to a person but do not hold a task back. A
 * suspected_injection item does not stop the run: it makes the run's write
 * and irreversible tools wait for approval instead.
 */
const NON_BLOCKING: ReadonlySet<OutboxKind> = new Set(['config_error', 'budget_alert', 'suspected_injection']);

export function blocksTask(item: OutboxItem, taskId: string): boolean {
  return item.status === 'open' && item.task_id === taskId && !NON_BLOCKING.has(item.kind);
}
