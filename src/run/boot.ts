import type { DeliveredResolution } from '../protocol/messages.js';
import type { OutboxItem } from '../store/outbox.js';
import { blocksTask } from '../core/outbox-rules.js';
import { fullJitterDelayMs } from '../core/backoff.js';
import { laterDecision, type ApprovalRecord } from '../tools/approval.js';

/**
 * The decisions of the boot sequence (docs/architecture.md "From file to done"), pure: from the
 * task, the outbox items and a clock reading, what may happen next.
 */

export interface OutboxView {
  /** An open item that holds this task back. */
  blocking: OutboxItem | null;
  /** Resolved items not yet handed to the agent. */
  undelivered: OutboxItem[];
  /** A person said cancel and the task has not been cancelled yet. */
  cancel: OutboxItem | null;
  /** A person let the stale task run anyway. */
  staleTaskAccepted: boolean;
  staleContextAccepted: boolean;
  /** Budget extensions a person granted this task. */
  extends: Record<string, number>[];
  /** Answers about side effects of unknown outcome, by journal seq. */
  sideEffectDecisions: Map<number, { decision: 'approve' | 'retry'; answer?: string }>;
  /** Approvals and denials of exact tool calls, keyed `<seq>:<call hash>`; the latest decision for each. */
  approvals: Map<string, ApprovalRecord>;
  /** Content that looked like an injected instruction entered this task (a suspected_injection item exists). */
  suspectedInjection: boolean;
}

export function viewOutbox(items: OutboxItem[], taskId: string): OutboxView {
  const mine = items.filter((i) => i.task_id === taskId);
  const resolved = mine.filter((i) => i.status === 'resolved' && i.resolution);
  // `retry` is not acceptance: it asks for the check (and a context refresh) again.
  const accepted = (kind: string) => resolved.some((i) => i.kind === kind && ['continue', 'approve', 'answer'].includes(i.resolution!.decision));
  const undelivered = resolved.filter((i) => !i.delivered_at);
  return {
    blocking: mine.find((i) => blocksTask(i, taskId)) ?? null,
    undelivered,
    cancel: undelivered.find((i) => i.resolution!.decision === 'cancel') ?? null,
    staleTaskAccepted: accepted('stale_task'),
    staleContextAccepted: accepted('stale_context'),
    extends: resolved.map((i) => i.resolution!.extend).filter((e): e is Record<string, number> => !!e),
    sideEffectDecisions: sideEffectDecisions(resolved),
    approvals: approvals(resolved),
    suspectedInjection: mine.some((i) => i.kind === 'suspected_injection'),
  };
}

function approvals(resolved: OutboxItem[]): OutboxView['approvals'] {
  const out: OutboxView['approvals'] = new Map();
  for (const item of resolved) {
    const details = item.details as { seq?: unknown; call_hash?: unknown } | undefined;
    if (item.kind !== 'approval' || typeof details?.seq !== 'number' || typeof details.call_hash !== 'string') continue;
    const { decision: said, at, by } = item.resolution!;
    const decision = said === 'approve' || said === 'continue' ? 'approve' : said === 'deny' ? 'deny' : null;
    if (!decision) continue;
    // No `at` (a hand edit): the item's creation, which is earlier, so the TTL errs on the side of asking again.
    const record: ApprovalRecord = { decision, at: Date.parse(at ?? item.created_at), by: by ?? null };
    const key = `${details.seq}:${details.call_hash}`;
    out.set(key, laterDecision(out.get(key), record));
  }
  return out;
}

function sideEffectDecisions(resolved: OutboxItem[]): OutboxView['sideEffectDecisions'] {
  const decisions: OutboxView['sideEffectDecisions'] = new Map();
  for (const item of resolved) {
    const seq = (item.details as { seq?: unknown } | undefined)?.seq;
    const { decision, answer } = item.resolution!;
    if (item.kind !== 'unsure_side_effect' || typeof seq !== 'number') continue;
    if (decision === 'approve' || decision === 'continue') decisions.set(seq, { decision: 'approve', ...(answer !== undefined ? { answer } : {}) });
    else if (decision === 'retry') decisions.set(seq, { decision: 'retry' });
  }
  return decisions;
}

export function toDelivered(item: OutboxItem): DeliveredResolution {
  const r = item.resolution!;
  return {
    item_id: item.id,
    kind: item.kind,
    reason: item.reason,
    ...(item.question !== undefined ? { question: item.question } : {}),
    decision: r.decision,
    ...(r.answer !== undefined ? { answer: r.answer } : {}),
    ...(r.extend !== undefined ? { extend: r.extend } : {}),
    ...(r.by !== undefined ? { by: r.by } : {}),
    ...(r.at !== undefined ? { at: r.at } : {}),
  };
}

/** Age in ms of something created at `createdAt`; NaN-safe (an unparseable date is infinitely old). */
export function ageMs(createdAt: string, now: number): number {
  const t = Date.parse(createdAt);
  return Number.isNaN(t) ? Infinity : now - t;
}

export function isStale(createdAt: string, maxAgeMs: number, now: number): boolean {
  return ageMs(createdAt, now) > maxAgeMs;
}

/** Exponential backoff with full jitter between failed runs of a task. */
export function runRetryDelayMs(failedAttempts: number, baseMs: number, maxMs: number, random: () => number): number {
  return fullJitterDelayMs(failedAttempts, baseMs, maxMs, random);
}
