/** When a model's circuit opens and how long it stays open. */
export interface CircuitOptions {
  /** Availability failures within `windowMs` that open the circuit. Default 5. */
  failureThreshold: number;
  /** Sliding window over which failures are counted, ms. Default 60 000. */
  windowMs: number;
  /** How long an open circuit refuses calls before letting one probe through, ms. Default 30 000. */
  cooldownMs: number;
}

export const DEFAULT_CIRCUIT: CircuitOptions = { failureThreshold: 5, windowMs: 60_000, cooldownMs: 30_000 };

export type CircuitState = 'closed' | 'open' | 'half_open';

/** One model's circuit as `agentd status` shows it. */
export interface CircuitInfo {
  model: string;
  state: CircuitState;
  /** Failures counted in the current window (closed), or that opened it (open, half-open). */
  failures: number;
  /** Epoch ms the circuit last opened, or null while it never has since it closed. */
  opened_at: number | null;
}

/** `allowed`: a normal call; `probe`: the one trial call of a half-open circuit; `rejected`: fail fast. */
export type CircuitGate = 'allowed' | 'probe' | 'rejected';

/**
 * The circuit of one model, a pure state machine over an injected clock:
 * closed → open after `failureThreshold` failures in `windowMs`; open →
 * half-open after `cooldownMs`, when exactly one caller gets to probe; the
 * probe's success closes it, its failure re-opens it for another cooldown.
 */
export class CircuitBreaker {
  private state: CircuitState = 'closed';
  /** Epoch ms of recent failures, oldest first. */
  private failures: number[] = [];
  private openedAt: number | null = null;
  private probeInFlight = false;

  constructor(
    readonly model: string,
    private readonly options: CircuitOptions,
    private readonly now: () => number,
  ) {}

  /** Ask before each attempt. A `probe` must be answered with success, failure or release. */
  acquire(): CircuitGate {
    if (this.state === 'closed') return 'allowed';
    if (this.state === 'open') {
      if (this.now() - this.openedAt! < this.options.cooldownMs) return 'rejected';
      this.state = 'half_open';
    }
    // Half-open: one probe at a time; everybody else keeps failing fast until it answers.
    if (this.probeInFlight) return 'rejected';
    this.probeInFlight = true;
    return 'probe';
  }

  /** The provider answered: it is up, whatever it said. */
  recordSuccess(): void {
    this.state = 'closed';
    this.failures = [];
    this.openedAt = null;
    this.probeInFlight = false;
  }

  /** An availability failure (timeout, 5xx, 429, connection, garbled reply). */
  recordFailure(): void {
    const now = this.now();
    this.probeInFlight = false;
    if (this.state === 'half_open') {
      this.failures.push(now);
      this.open(now);
      return;
    }
    if (this.state === 'open') return;
    this.failures = this.failures.filter((at) => now - at < this.options.windowMs);
    this.failures.push(now);
    if (this.failures.length >= this.options.failureThreshold) this.open(now);
  }

  /** The attempt ended without telling us anything (cancelled): let the next caller probe. */
  release(): void {
    this.probeInFlight = false;
  }

  info(): CircuitInfo {
    const now = this.now();
    let state = this.state;
    // Report what the next caller would see, so status does not show "open" after the cooldown passed.
    if (state === 'open' && now - this.openedAt! >= this.options.cooldownMs) state = 'half_open';
    const failures = state === 'closed' ? this.failures.filter((at) => now - at < this.options.windowMs).length : this.failures.length;
    return { model: this.model, state, failures, opened_at: this.openedAt };
  }

  private open(now: number): void {
    this.state = 'open';
    this.openedAt = now;
  }
}

/** Every model's circuit, created on first use and shared by all callers of one gateway. */
export class CircuitRegistry {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly options: CircuitOptions,
    private readonly now: () => number,
  ) {}

  get(model: string): CircuitBreaker {
    let breaker = this.breakers.get(model);
    if (!breaker) {
      breaker = new CircuitBreaker(model, this.options, this.now);
      this.breakers.set(model, breaker);
    }
    return breaker;
  }

  /**
   * Take over `other`'s circuits (a SIGHUP builds a new gateway): an open
   * circuit stays open across a reload. Only when the tuning is the same;
   * new tuning starts every circuit fresh.
   */
  adopt(other: CircuitRegistry): void {
    const same = (Object.keys(this.options) as (keyof CircuitOptions)[]).every((k) => this.options[k] === other.options[k]);
    if (!same) return;
    for (const [model, breaker] of other.breakers) if (!this.breakers.has(model)) this.breakers.set(model, breaker);
  }

  /** Sorted by model, for a stable `agentd status`. */
  list(): CircuitInfo[] {
    return [...this.breakers.values()].map((b) => b.info()).sort((a, b) => a.model.localeCompare(b.model));
  }
}
