import type { ToolDefinition } from '../config/types.js';

/**
 * When a tool call needs a person's approval and whether the approval it
 * has still counts. Pure: a tool, what the outbox says, and a clock reading.
 */

/** A person's decision about one exact call (`<seq>:<call hash>`), from a resolved outbox item of kind approval. */
export interface ApprovalRecord {
  decision: 'approve' | 'deny';
  /** When it was decided, epoch ms: the resolution's `at`, else the item's creation (an older, so stricter, time). */
  at: number;
  by: string | null;
}

/** Why a call waits for a person: the tool's own policy, or suspected injected content in the run. */
export type ApprovalCause = 'policy' | 'suspected_injection';

/**
 * Null when the call may run without asking. `tainted`: content that looked
 * like an injected instruction entered this task, so anything that changes
 * the world waits for a person, whatever the tool's `approval` says.
 */
export function approvalCause(tool: Pick<ToolDefinition, 'approval' | 'effect'>, tainted: boolean): ApprovalCause | null {
  if (tool.approval === 'always') return 'policy';
  if (tainted && tool.effect !== 'read') return 'suspected_injection';
  return null;
}

export type ApprovalStanding =
  | { kind: 'approved'; record: ApprovalRecord }
  | { kind: 'denied'; record: ApprovalRecord }
  /** Approved longer ago than approval_ttl: it no longer counts, a person is asked again. */
  | { kind: 'expired'; record: ApprovalRecord }
  | { kind: 'none' };

/** What the recorded decision means now. A denial does not expire: refusing is always safe. */
export function approvalStanding(record: ApprovalRecord | undefined, ttlMs: number, now: number): ApprovalStanding {
  if (!record) return { kind: 'none' };
  if (record.decision === 'deny') return { kind: 'denied', record };
  if (!Number.isFinite(record.at) || now - record.at > ttlMs) return { kind: 'expired', record };
  return { kind: 'approved', record };
}

/** Keep the later of two decisions about the same call (a person asked again decides again). */
export function laterDecision(a: ApprovalRecord | undefined, b: ApprovalRecord): ApprovalRecord {
  return !a || b.at >= a.at ? b : a;
}
