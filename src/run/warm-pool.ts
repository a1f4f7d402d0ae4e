import fs from 'node:fs';
import type { Logger } from 'pino';
import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import type { AgentDefinition } from '../config/types.js';
import { AgentProcess } from './agent-process.js';
import { wantsSpare } from './spare-rule.js';

/**
 * Warm agents (README.md, "Warm agents"): for a definition with `warm: N`,
 * N agent processes are started ahead of any task and wait for their `start`
 * message, so a task skips the spawn. A warm process:
 * - is spawned the way a run's process is (agent-process.ts, the same
 *   sandbox), with no task's data: only AGENTD_AGENT and AGENTD_HOME, no task
 *   id, run id, input or run endpoint token; it learns its task from `start`;
 * - counts against no budget and no max_parallel_runs until a run takes it
 *   (a run's runtime starts when the run does);
 * - that exits before its task is replaced (after a back-off when it keeps
 *   dying at once, so a broken command cannot spin);
 * - is replaced after a run takes it, on the next turn of the event loop, so
 *   the spawn is off the task's path;
 * - started under an older definition is killed when the definition changes.
 * A definition with `warm: 0` and `spare` gets one such process, a spare, only
 * while tasks wait in its inbox (run/spare-rule.ts): the daemon calls `review`
 * when an inbox changes and after each claim, and a spare no task waits for is
 * killed.
 */

interface Warm {
  process: AgentProcess;
  hash: string;
  startedAt: number;
  /** Handed to a run, or killed by the pool: its exit is not the pool's business. */
  gone: boolean;
}

interface Pool {
  definition: AgentDefinition;
  warm: Warm[];
  /** Warm processes in a row that died within QUICK_DEATH_MS of their spawn. */
  quickDeaths: number;
  refill: NodeJS.Timeout | null;
}

export interface WarmStatus {
  agent: string;
  pid: number;
  started_at: string;
  /**
   * VmRSS from /proc, MB, rounded up to 0.1; null while it is not known: /proc
   * cannot say, or the process is still being started (no resident page yet).
   */
  rss_mb: number | null;
  /** Started as its agent's spare (`warm: 0`, tasks waiting), not kept by `warm`. */
  spare?: true;
}

/** What the daemon knows of an agent's queue, for its spare (run/spare-rule.ts). */
export interface SpareDemand {
  /** Task files in the agent's inbox. */
  queued(agent: string): number;
  /** A claim of the agent is in progress. */
  running(agent: string): boolean;
  /** Claims that start before the agent's next one (daemon/scheduler.ts claimsAhead). */
  claimsAhead(agent: string): number;
  /** How near a claim must be to get a spare (2 × max_parallel_runs). */
  window(): number;
}

const QUICK_DEATH_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/** Delay before replacing a warm process that died; grows while they keep dying at once. Pure. */
export function replaceDelayMs(quickDeaths: number): number {
  return quickDeaths === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (quickDeaths - 1));
}

export class WarmPool {
  private readonly pools = new Map<string, Pool>();
  private stopped = false;

  constructor(
    private readonly home: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Without it, no spares: only `warm`. */
    private readonly demand?: SpareDemand,
  ) {}

  /** Follow the loaded definitions: start, kill or keep warm processes so each agent has its `warm`. */
  sync(definitions: AgentDefinition[]): void {
    if (this.stopped) return;
    // A plain agent (protocol: none) takes no start message: nothing to keep warm.
    const wanted = new Map(definitions.filter((d) => (d.warm > 0 || (d.spare && this.demand)) && d.protocol !== 'none').map((d) => [d.name, d]));
    for (const [name, pool] of this.pools) {
      if (wanted.has(name)) continue;
      this.drain(pool, 0);
      this.pools.delete(name);
    }
    for (const definition of wanted.values()) {
      let pool = this.pools.get(definition.name);
      if (!pool) {
        pool = { definition, warm: [], quickDeaths: 0, refill: null };
        this.pools.set(definition.name, pool);
      }
      // Started under another definition: its command, env or folder may differ.
      if (pool.definition.hash !== definition.hash) this.drain(pool, 0);
      pool.definition = definition;
      this.drain(pool, this.target(pool));
      this.fill(pool);
    }
  }

  /** A warm process for a run of `definition`, or null (none ready, or started under another definition). */
  take(definition: AgentDefinition): AgentProcess | null {
    const pool = this.pools.get(definition.name);
    if (!pool || pool.definition.hash !== definition.hash) return null;
    const index = pool.warm.findIndex((w) => w.process.alive);
    if (index === -1) {
      this.scheduleFill(pool, 0); // none ready: a spare may be wanted now that this run has begun
      return null;
    }
    const [warm] = pool.warm.splice(index, 1);
    warm!.gone = true;
    this.scheduleFill(pool, 0); // the replacement is spawned after this turn: the task does not wait for it
    return warm!.process;
  }

  /**
   * Something changed for the agent's queue: its inbox, or a claim ended (`ended`; run/spare-rule.ts
   * claimEnd). Start or kill its spare.
   */
  review(agent: string, ended?: 'next' | 'stalled'): void {
    const pool = this.pools.get(agent);
    if (!pool || this.stopped || pool.definition.warm > 0) return;
    const target = ended === 'stalled' ? 0 : this.target(pool, ended === 'next' ? false : undefined);
    if (pool.warm.length > target) {
      const reason = ended === 'stalled' ? 'its claim ended waiting' : 'no task waits, or its turn is not near';
      this.log.debug({ agent, pids: pool.warm.map((w) => w.process.pid), reason }, 'spare agent process stopped');
      this.drain(pool, target);
    } else if (pool.warm.length < target) {
      this.scheduleFill(pool, 0); // spawned after this turn: whoever called does not wait for it
    }
  }

  /** Every warm process waiting, with its memory: for state/daemon.json and `agentd status`. */
  status(): WarmStatus[] {
    const out: WarmStatus[] = [];
    for (const [agent, pool] of this.pools) {
      for (const warm of pool.warm) {
        const pid = warm.process.pid;
        if (pid === null || !warm.process.alive) continue;
        const spare = pool.definition.warm === 0 ? { spare: true as const } : {};
        out.push({ agent, pid, started_at: new Date(warm.startedAt).toISOString(), rss_mb: rssMb(pid), ...spare });
      }
    }
    return out;
  }

  /** Kill every waiting process and start no more. */
  stop(): void {
    this.stopped = true;
    for (const pool of this.pools.values()) this.drain(pool, 0);
    this.pools.clear();
  }

  /** Keep at most `keep` processes of the pool: kill the rest and any pending refill when none are kept. */
  private drain(pool: Pool, keep: number): void {
    if (keep === 0 && pool.refill) {
      clearTimeout(pool.refill);
      pool.refill = null;
    }
    for (const warm of pool.warm.splice(keep)) {
      warm.gone = true;
      warm.process.kill('SIGKILL');
    }
  }

  private scheduleFill(pool: Pool, delayMs: number): void {
    if (pool.refill || this.stopped) return;
    pool.refill = setTimeout(() => {
      pool.refill = null;
      if (this.pools.get(pool.definition.name) === pool) this.fill(pool);
    }, delayMs);
  }

  private fill(pool: Pool): void {
    while (!this.stopped && pool.warm.length < this.target(pool)) this.spawn(pool);
  }

  /** How many processes the pool keeps now: its `warm`, or for `warm: 0`, its spare while tasks wait. */
  private target(pool: Pool, running?: boolean): number {
    const { definition } = pool;
    if (definition.warm > 0 || !this.demand) return definition.warm;
    const facts = {
      allowed: definition.spare,
      queued: this.demand.queued(definition.name),
      running: running ?? this.demand.running(definition.name),
      hasSpare: pool.warm.length > 0,
      claimsAhead: this.demand.claimsAhead(definition.name),
      window: this.demand.window(),
    };
    return wantsSpare(facts) ? 1 : 0;
  }

  private spawn(pool: Pool): void {
    const { definition } = pool;
    const log = this.log.child({ agent: definition.name, warm: true, ...(definition.warm === 0 ? { spare: true } : {}) });
    const process_ = new AgentProcess(
      {
        command: definition.command ?? [process.execPath, BUILTIN_AGENT_SCRIPT],
        cwd: definition.dir,
        passEnv: definition.env,
        // No task's data: the task id, run id and input come with `start`.
        agentdEnv: { AGENTD_AGENT: definition.name, AGENTD_HOME: this.home },
        confinement: definition.confinement, // sandboxed like a run's process
      },
      log,
      (line) => log.info({ line: line.slice(0, 2000) }, 'warm agent printed before its start; ignored'),
    );
    const warm: Warm = { process: process_, hash: definition.hash, startedAt: this.now(), gone: false };
    pool.warm.push(warm);
    void process_.started.then((pid) => log.debug({ pid }, 'warm agent started'));
    void process_.exited.then((exit) => this.onExit(pool, warm, exit, log));
  }

  private onExit(pool: Pool, warm: Warm, exit: { code: number | null; signal: NodeJS.Signals | null }, log: Logger): void {
    if (warm.gone || this.stopped) return;
    const i = pool.warm.indexOf(warm);
    if (i !== -1) pool.warm.splice(i, 1);
    if (this.pools.get(pool.definition.name) !== pool) return;
    pool.quickDeaths = this.now() - warm.startedAt < QUICK_DEATH_MS ? pool.quickDeaths + 1 : 0;
    const delayMs = replaceDelayMs(pool.quickDeaths);
    if (pool.definition.warm === 0) {
      // A spare is no run's: its death fails no task and costs no budget; another is started while tasks wait.
      log.info({ pid: warm.process.pid, code: exit.code, signal: exit.signal, replace_in_ms: delayMs }, 'spare agent process exited before its task');
      this.scheduleFill(pool, delayMs);
      return;
    }
    log.warn({ pid: warm.process.pid, code: exit.code, signal: exit.signal, replace_in_ms: delayMs }, 'warm agent exited before its task; replacing it');
    this.scheduleFill(pool, delayMs);
  }
}

/** The process's resident memory in MB, or null while it is not known (README "Warm agents"). */
function rssMb(pid: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null; // gone since the pool last looked, or no /proc here
  }
  return rssMbOf(text);
}

/**
 * VmRSS of a /proc/<pid>/status text, MB rounded up to 0.1. Null without a
 * VmRSS line (a process exiting) or at 0 kB: one read right after the spawn
 * can meet the new program before it has a resident page, and a rounded 0 MB
 * would read as a measurement. Pure.
 */
export function rssMbOf(statusText: string): number | null {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(statusText);
  const kb = match ? Number(match[1]) : 0;
  return kb > 0 ? Math.ceil((kb * 10) / 1024) / 10 : null; // kb·10/1024 is exact: no 1.0 MB read as 1.1
}
