import type { AuditEntry } from '../observe/audit.js';
import type { TaskCheckpoint } from '../store/checkpoint.js';
import type { OutboxItem } from '../store/outbox.js';
import type { DeadLetterRecord } from '../store/dead-letters.js';
import type { DoneRecord } from '../store/done-records.js';

/**
 * What a claim decides to write, as plain data (docs/architecture.md, "From
 * file to done"): the planners in src/core return these, and one interpreter
 * (store/effects.ts) applies them in order. Nothing here touches a file.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A log line: a constant message, the variables in fields. */
export interface LogLine {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/** An outbox item before the store gives it its id. */
export type ItemDraft = Omit<OutboxItem, 'id' | 'status' | 'resolution' | 'delivered_at'>;

/** An outbox item with the audit line and the log line that go with it; both get the item's id when it is written. */
export interface RaiseItem {
  type: 'raise';
  item: ItemDraft;
  /** The audit line's event and details; null for a notice that records no decision. */
  audit: { event: AuditEntry['event']; details: Record<string, unknown> } | null;
  log: LogLine;
}

export type Effect =
  | { type: 'checkpoint'; checkpoint: TaskCheckpoint }
  | RaiseItem
  | { type: 'complete'; record: DoneRecord }
  | { type: 'dead_letter'; record: DeadLetterRecord }
  | { type: 'handoff'; handoff: Record<string, unknown> }
  /** Resolutions handed to the agent (outbox items' delivered_at). */
  | { type: 'deliver'; itemIds: string[]; at: string }
  | { type: 'audit'; entry: AuditEntry }
  | { type: 'log'; line: LogLine };

/**
 * The one way an outbox item is made: the item, its audit line (an
 * `escalation` unless told otherwise, naming kind and reason) and its log line.
 * `audit: null` for a notice that is not a decision (an alert, a lost journal).
 */
export function raise(item: ItemDraft, log: { level?: LogLevel; msg: string; fields?: Record<string, unknown> }, audit: RaiseItem['audit'] | undefined = escalation(item)): RaiseItem {
  return { type: 'raise', item, audit, log: { level: log.level ?? 'warn', msg: log.msg, fields: log.fields ?? {} } };
}

function escalation(item: ItemDraft): RaiseItem['audit'] {
  return { event: 'escalation', details: { kind: item.kind, reason: item.reason } };
}

/** The audit entry of a raised item, once it has its id. */
export function auditOfRaised(effect: RaiseItem, itemId: string): AuditEntry | null {
  if (!effect.audit) return null;
  const { item } = effect;
  return {
    event: effect.audit.event,
    agent: item.agent,
    task_id: item.task_id,
    ...(item.run_id !== null ? { run_id: item.run_id } : {}),
    details: { item_id: itemId, ...effect.audit.details },
  };
}
