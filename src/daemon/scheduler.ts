import type { Logger } from 'pino';
import { timerDelay } from '../config/delay-bounds.js';
import type { Clock, Timer } from '../core/clock.js';
import type { ClaimResult } from '../run/runner.js';
import { claimRetryDelayMs, resourceErrorCode } from '../core/claim-failure.js';
import { noteClaimError } from '../run/claim-errors.js';

/**
 * Which agent runs next. Agents with something to do wait in one FIFO queue;
 * up to `maxParallel` claims run at once; an agent that ran goes to the back,
 * so agents take turns (fair round-robin) and one busy agent cannot starve
 * the rest. No per-agent polling: an agent is queued when a file event, a
 * resolution, its retry time or the lock-retry sweep says so.
 */
export class Scheduler {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  /** Poked while running: look again when the claim ends. */
  private readonly dirty = new Set<string>();
  private readonly retryTimers = new Map<string, Timer>();
  /** Claims in a row that failed, per agent: the backoff of the next look after a full disk. */
  private readonly claimFailures = new Map<string, number>();
  /** Held by another daemon: retried together by one sweep timer. */
  private readonly lockedElsewhere = new Set<string>();
  private sweepTimer: Timer | null = null;
  private accepting = true;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private maxParallel: number,
    private readonly claim: (agent: string) => Promise<ClaimResult>,
    private readonly log: Logger,
    /** Its timers: a claim's retry time and the lock-retry sweep. */
    private readonly clock: Clock,
    /** How often agents locked by another daemon are tried again. */
    private readonly lockRetryMs: number,
  ) {}

  setMaxParallel(n: number): void {
    this.maxParallel = n;
    this.pump();
  }

  /** Something changed for `agent`: make sure it is looked at. */
  poke(agent: string): void {
    if (!this.accepting) return;
    if (this.running.has(agent)) {
      this.dirty.add(agent);
      return;
    }
    if (this.queued.has(agent)) return;
    this.queued.add(agent);
    this.queue.push(agent);
    this.pump();
  }

  isRunning(agent: string): boolean {
    return this.running.has(agent);
  }

  /**
   * Claims that start before the agent's next one: its place in the queue; for an agent running now, the
   * queue's length (it goes to the back when its claim ends); Infinity for one not queued. For its spare
   * process (run/spare-rule.ts).
   */
  claimsAhead(agent: string): number {
    if (this.queued.has(agent)) return this.queue.indexOf(agent);
    return this.running.has(agent) ? this.queue.length : Infinity;
  }

  /** The next `n` agents to be claimed, in order. */
  upNext(n: number): string[] {
    return this.queue.slice(0, n);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** False once stop() was called: nothing new is claimed. */
  get isAccepting(): boolean {
    return this.accepting;
  }

  private pump(): void {
    while (this.accepting && this.running.size < this.maxParallel && this.queue.length > 0) {
      const agent = this.queue.shift()!;
      this.queued.delete(agent);
      this.start(agent);
    }
  }

  private start(agent: string): void {
    this.retryTimers.get(agent)?.cancel();
    this.retryTimers.delete(agent);
    this.lockedElsewhere.delete(agent);
    const done = this.claim(agent)
      .then((result) => {
        this.claimFailures.delete(agent);
        this.after(agent, result);
      })
      .catch((err: unknown) => {
        // A claim must never take the daemon down; the agent is looked at again on its next event,
        // or soon by itself when the home ran out of room (core/claim-failure.ts).
        noteClaimError(agent, err);
        const failures = (this.claimFailures.get(agent) ?? 0) + 1;
        const retryInMs = resourceErrorCode(err) ? claimRetryDelayMs(failures) : null;
        this.log.error({ agent, err, ...(retryInMs !== null ? { retry_in_ms: retryInMs } : {}) }, 'claim failed');
        this.claimFailures.set(agent, failures);
        if (retryInMs !== null && this.accepting) this.retryAt(agent, this.clock.now() + retryInMs);
        // A first failure is looked at again once, at once: the run may have failed on its way out (an
        // escalation meeting a broken outbox.json) and the next claim finds out what waits. The watcher
        // no longer reports the daemon's own moves (store/own-changes.ts), which used to cause this look.
        // A second failure in a row waits for an event, so a claim that always fails never spins.
        else if (failures === 1) this.dirty.add(agent);
      })
      .finally(() => {
        this.running.delete(agent);
        if (this.dirty.delete(agent)) this.poke(agent);
        this.pump();
        if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    this.running.set(agent, done);
  }

  private after(agent: string, result: ClaimResult): void {
    switch (result.kind) {
      case 'ran':
      case 'settled':
        this.dirty.add(agent); // there may be more: the next inbox task, a retry
        return;
      case 'waiting':
        this.retryAt(agent, result.untilMs);
        return;
      case 'locked':
        this.lockedElsewhere.add(agent);
        this.ensureSweep();
        return;
      case 'blocked':
        if (result.parked) this.dirty.add(agent); // the task waits parked: the next one can run now
        return; // a file event or a resolution will poke it
      case 'idle':
        return;
    }
  }

  private retryAt(agent: string, untilMs: number): void {
    this.retryTimers.get(agent)?.cancel();
    // Any wait is safe: the clock arms a long one in bounded steps (core/clock.ts); delayMs is the first step.
    const waitMs = untilMs - this.clock.now();
    this.log.debug({ agent, until: new Date(untilMs).toISOString(), delayMs: timerDelay(waitMs) }, 'claim waits');
    const timer = this.clock.setTimeout(() => {
      this.retryTimers.delete(agent);
      this.poke(agent);
    }, waitMs);
    this.retryTimers.set(agent, timer);
  }

  private ensureSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = this.clock.setInterval(() => {
      for (const agent of [...this.lockedElsewhere]) {
        this.lockedElsewhere.delete(agent);
        this.poke(agent);
      }
      if (this.lockedElsewhere.size === 0 && this.sweepTimer) {
        this.sweepTimer.cancel();
        this.sweepTimer = null;
      }
    }, this.lockRetryMs);
  }

  /** Stop claiming; resolves when every claim in progress has ended. */
  async stop(): Promise<void> {
    this.accepting = false;
    this.queue.length = 0;
    this.queued.clear();
    for (const timer of this.retryTimers.values()) timer.cancel();
    this.retryTimers.clear();
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    await this.whenIdle();
  }

  whenIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
