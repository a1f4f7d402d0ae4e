import { isReservedAgentName, isValidName, type HomePaths } from '../store/paths.js';
import { readAllOutboxes } from '../store/outbox.js';
import { readDailySpend } from '../store/spend.js';
import { countDeadLetters } from '../store/dead-letters.js';
import { inboxSize } from '../store/inbox-index.js';

/** What the home's files say per agent: the numbers a person on call alerts on. */
export interface AgentCounts {
  /** Task files waiting in the inbox. */
  queue: number;
  openItems: number;
  deadLetters: number;
  spendTodayUsd: number;
}

export interface HomeCounts {
  /** Epoch ms the files were read. */
  at: number;
  agents: Record<string, AgentCounts>;
}

/**
 * Reads the counts lazily and keeps them for `ttlMs`, so a scrape every
 * second, or several scrapers, cost one pass over the files per `ttlMs`.
 * Concurrent callers share the pass in flight.
 */
export class HomeCountsCache {
  private last: HomeCounts | null = null;
  private inFlight: Promise<HomeCounts> | null = null;

  constructor(
    private readonly paths: HomePaths,
    /** The agents the daemon has loaded. */
    private readonly agents: () => string[],
    private readonly now: () => number,
    /** Default 5 s. */
    private readonly ttlMs = 5000,
  ) {}

  /** Counts at most `maxAgeMs` old (default the cache's ttl). */
  async get(maxAgeMs = this.ttlMs): Promise<HomeCounts> {
    if (this.last && this.now() - this.last.at <= maxAgeMs) return this.last;
    this.inFlight ??= this.read().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async read(): Promise<HomeCounts> {
    const at = this.now();
    const day = new Date(at);
    const outboxes = await readAllOutboxes(this.paths);
    const dead = await countDeadLetters(this.paths);
    const agents: Record<string, AgentCounts> = {};
    // An agent that is not loaded (a broken definition) still has its items and dead letters counted.
    const names = new Set([...this.agents(), ...Object.keys(dead), ...outboxes.items.map((i) => i.agent)].filter((a) => isValidName(a) && !isReservedAgentName(a)));
    for (const agent of [...names].sort()) {
      agents[agent] = {
        queue: await inboxSize(this.paths, agent),
        openItems: outboxes.items.filter((i) => i.agent === agent && i.status === 'open').length,
        deadLetters: dead[agent] ?? 0,
        spendTodayUsd: await readDailySpend(this.paths, agent, day),
      };
    }
    this.last = { at, agents };
    return this.last;
  }
}
