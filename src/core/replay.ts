import type { ToolDefinition } from '../config/types.js';
import type { EffectiveCall } from '../store/journal.js';

/**
 * Where a restarted agent is in its task's journal (README "The guarantee: resume without repeating").
 * Resume is replay: the agent's n-th call is answered from the n-th recorded
 * call while kind and request hash match; at the first difference the rest of
 * the journal is superseded and calls go live. Pure: the run host does the I/O.
 */
export class ReplayCursor {
  /** Calls of the task so far, including those before this run (the journal's seq). */
  seq = 0;
  private replaying: boolean;
  private aligned = false;

  constructor(
    private readonly recorded: EffectiveCall[],
    /** The seq recorded with the agent's last checkpoint. */
    private readonly checkpointSeq: number,
    /** The agent was handed that checkpoint in its start message. */
    private readonly resumedFromCheckpoint: boolean,
  ) {
    this.replaying = recorded.length > 0;
  }

  /** The seq of the call arriving now. */
  next(kind: 'model' | 'tool', hash: string): number {
    this.align(kind, hash);
    return ++this.seq;
  }

  /** Stop answering from the journal: everything from here on is live. */
  goLive(): void {
    this.replaying = false;
  }

  /**
   * `recorded`: answer from the journal. `diverged`: this call is the first that
   * differs, so the rest of the journal is superseded (the caller journals that).
   * `live`: replay was already over.
   */
  match(seq: number, kind: 'model' | 'tool', hash: string): { kind: 'recorded'; call: EffectiveCall } | { kind: 'diverged' } | { kind: 'live' } {
    if (!this.replaying) return { kind: 'live' };
    const call = this.recorded[seq - 1];
    if (call && call.kind === kind && call.request_hash === hash && call.phase === 'completed') return { kind: 'recorded', call };
    this.replaying = false;
    return { kind: 'diverged' };
  }

  /**
   * A side-effecting call the journal saw start but never finish (the daemon
   * died during it) is never run again blindly: an idempotent tool re-runs with
   * the same AGENTD_IDEMPOTENCY_KEY; otherwise a person is asked, and their
   * answer decides. Null when the call is not such a call.
   */
  unfinishedSideEffect(
    seq: number,
    hash: string,
    tool: ToolDefinition | undefined,
    decision: { decision: 'approve' | 'retry' } | undefined,
  ): 'rerun' | 'assume_done' | 'ask' | null {
    if (!this.replaying) return null;
    const call = this.recorded[seq - 1];
    if (!call || call.kind !== 'tool' || call.request_hash !== hash || call.phase !== 'started') return null;
    if (!tool || tool.effect === 'read') return null;
    if (tool.idempotent) return 'rerun';
    if (decision?.decision === 'approve') return 'assume_done';
    if (decision?.decision === 'retry') return 'rerun';
    return 'ask';
  }

  /**
   * Decided at the agent's first call: an agent that starts over makes call 1
   * again; one that resumed from its checkpoint continues after the calls made
   * before that checkpoint.
   */
  private align(kind: 'model' | 'tool', hash: string): void {
    if (this.aligned) return;
    this.aligned = true;
    if (!this.replaying) return;
    const at = (index: number) => {
      const call = this.recorded[index];
      return call !== undefined && call.kind === kind && call.request_hash === hash;
    };
    if (at(0)) return;
    if (this.checkpointSeq > 0 && (at(this.checkpointSeq) || this.resumedFromCheckpoint)) this.seq = this.checkpointSeq;
  }
}
