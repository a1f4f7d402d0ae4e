/**
 * One message at a time, in order, whether it came on stdout or over the
 * run's endpoint: the journal's seq is the order calls arrived in. A call is
 * answered by the daemon: until the reply is sent, the agent waits and is not
 * silent, so the queue counts the calls awaiting their reply.
 */

export interface MessageQueueHooks {
  /** Before an ordered message is acted on: pending checkpoints durable, the lease fenced. */
  beforeOrdered(): Promise<void>;
  /** Handling a message threw. */
  failed(err: unknown): void;
  /** A call's reply was sent. */
  answered(): void;
}

export class MessageQueue {
  private tail: Promise<void> = Promise.resolve();
  private awaiting = 0;

  constructor(private readonly hooks: MessageQueueHooks) {}

  /** Calls received and not yet answered. */
  get awaitingDaemon(): number {
    return this.awaiting;
  }

  /** `ordered` false: the task runs after the ones before it, without waiting on checkpoints or the fence. */
  enqueue<T>(call: boolean, task: () => Promise<T>, ordered = true): Promise<T> {
    if (call) this.awaiting++;
    const done = this.tail.then(async () => {
      if (!ordered) return task();
      await this.hooks.beforeOrdered();
      return task();
    });
    this.tail = done
      .then(
        () => undefined,
        (err: unknown) => this.hooks.failed(err),
      )
      .finally(() => {
        if (!call) return;
        this.awaiting--;
        this.hooks.answered();
      });
    return done;
  }

  /** Resolves once every message enqueued so far was handled. */
  settled(): Promise<void> {
    return this.tail.catch(() => undefined);
  }
}
