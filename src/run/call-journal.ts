import type { EffectiveCall } from '../store/journal.js';
import type { Usage } from '../protocol/messages.js';
import type { ReplayCursor } from './replay.js';
import type { RunHostInput } from './run-types.js';

/**
 * The journal records a run host writes itself (README "The guarantee"): a
 * replay that diverged supersedes the rest, a failed call, a usage report.
 * Model and tool calls write their own in run/model-call.ts and run/tool-call.ts.
 */
export class CallJournal {
  constructor(
    private readonly input: RunHostInput,
    private readonly replay: ReplayCursor,
  ) {}

  iso(): string {
    return new Date(this.input.clock.now()).toISOString();
  }

  /** Answer from the journal when the n-th call matches what was recorded; otherwise supersede the rest. */
  async replayed(seq: number, kind: 'model' | 'tool', hash: string): Promise<EffectiveCall | null> {
    const found = this.replay.match(seq, kind, hash);
    if (found.kind === 'recorded') return found.call;
    if (found.kind === 'diverged') {
      await this.input.records.journal({ v: 1, kind: 'supersede', run_id: this.input.runId, from_seq: seq, at: this.iso() });
    }
    return null;
  }

  async failed(seq: number, kind: 'model' | 'tool', name: string, hash: string, error: { code: string; message: string; category?: string }): Promise<void> {
    await this.input.records.journal({ v: 1, seq, run_id: this.input.runId, kind, name, request_hash: hash, phase: 'failed', error, at: this.iso() });
  }

  /** The agent's own `usage` report (docs/protocol.md), as counted. */
  async usage(usage: Usage): Promise<void> {
    await this.input.records.journal({ v: 1, seq: 0, run_id: this.input.runId, kind: 'usage', name: 'agent', request_hash: '', phase: 'completed', usage, at: this.iso() });
  }
}
