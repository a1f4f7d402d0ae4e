/**
 * Checkpoints are coalesced (docs/protocol.md, `checkpoint`): the last one wins. At
 * most one durable write is in flight and one waits behind it; a later
 * checkpoint replaces the waiting one. So an agent that sends checkpoints
 * faster than the disk can fsync them never builds a queue that would hold
 * its result back past max_runtime.
 */
export class CheckpointCoalescer<T> {
  private pending: { value: T } | null = null;
  private inFlight: Promise<void> | null = null;
  private failure: { err: unknown } | null = null;

  constructor(private readonly write: (value: T) => Promise<void>) {}

  /** Takes the checkpoint; it is written when the write before it is done, unless a later one replaces it. */
  submit(value: T): void {
    this.pending = { value };
    if (!this.inFlight && !this.failure) this.inFlight = this.drain();
  }

  /** Resolves once every checkpoint submitted so far is durable (or superseded); rethrows a failed write. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.failure) {
      const { err } = this.failure;
      this.failure = null;
      throw err;
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const { value } = this.pending;
        this.pending = null;
        await this.write(value);
      }
    } catch (err) {
      // Kept for the next flush, which acts on it (a lost lease, a failed disk); later checkpoints are dropped.
      this.failure = { err };
      this.pending = null;
    } finally {
      this.inFlight = null;
    }
  }
}
