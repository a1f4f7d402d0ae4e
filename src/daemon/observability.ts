import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { HttpAddress } from '../config/http-address.js';
import type { CircuitInfo } from '../model/circuit-breaker.js';
import { decideHealth, probeWritable, type HealthFacts } from '../observe/health.js';
import { HomeCountsCache } from '../observe/home-counts.js';
import { startObserveServer, type ObserveServer } from '../observe/http-server.js';
import type { DaemonMetrics } from '../observe/metrics.js';
import type { Clock } from '../core/clock.js';
import { LiveRuns, type EndedRun } from '../run/live-runs.js';
import { writeDaemonStatus, type DaemonLastError, type DaemonStatusFile } from '../store/daemon-status.js';
import type { HomePaths } from '../store/paths.js';
import { hostId } from '../store/host.js';
import { announceConsole, startConsole } from './console-wiring.js';

/**
 * What the person on call sees of a running daemon: state/daemon.json every
 * STATUS_INTERVAL_MS (one timer), and /healthz and /metrics when `http` is
 * set. The daemon hands it a read-only view of itself; nothing here decides
 * what runs.
 */

export interface ObservedDaemon {
  state(): DaemonStatusFile['state'];
  readonly startedAt: number;
  agents(): string[];
  circuits(): CircuitInfo[];
  /** Tool circuits; CircuitInfo.model holds the circuit's key (tools/tool-circuits.ts). */
  toolCircuits(): CircuitInfo[];
  watcher(): HealthFacts['watcher'];
  schedulerAccepting(): boolean;
  /** Warm agent processes waiting for a task (run/warm-pool.ts). */
  warm?(): NonNullable<DaemonStatusFile['warm']>;
}

/** How often state/daemon.json is rewritten, ms. */
export const STATUS_INTERVAL_MS = 2000;

export class DaemonObservability {
  readonly live: LiveRuns;
  /** Only with `http`: prom-client costs ~13 MB of memory that a daemon without /metrics never needs. */
  private metrics: DaemonMetrics | null = null;
  private readonly counts: HomeCountsCache;
  private readonly lastErrors = new Map<string, DaemonLastError>();
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() of the timer's last run: a stalled loop shows in /healthz. */
  private lastTickAt: number | null = null;
  private ticking = false;
  private server: ObserveServer | null = null;
  private console: { close(): void } | null = null;
  private httpAddress: string | null = null;

  constructor(
    private readonly paths: HomePaths,
    private readonly daemon: ObservedDaemon,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs = STATUS_INTERVAL_MS,
  ) {
    this.live = new LiveRuns((ended) => this.runEnded(ended));
    this.counts = new HomeCountsCache(paths, () => daemon.agents(), () => clock.now());
  }

  /** The gateway's onCall: every provider attempt's latency. */
  readonly modelCall = (model: string, latencyMs: number, outcome: string): void => this.metrics?.modelCall(model, latencyMs, outcome);

  /** Serve /healthz, /metrics and the console. Throws when the address cannot be bound. */
  async listen(address: HttpAddress): Promise<HttpAddress> {
    const { DaemonMetrics } = await import('../observe/metrics.js');
    const metrics = new DaemonMetrics({ homeCounts: () => this.counts.get(), circuits: () => this.daemon.circuits(), toolCircuits: () => this.daemon.toolCircuits(), liveRuns: () => this.live.list() });
    this.metrics = metrics;
    const console = await startConsole(this.paths, { snapshot: () => this.snapshot(), toolCircuits: () => this.daemon.toolCircuits() }, this.clock, this.log.child({ component: 'console' }));
    this.console = console;
    this.server = await startObserveServer(
      address,
      {
        health: () => this.health(),
        metrics: async () => ({ contentType: metrics.contentType, body: await metrics.render() }),
        console: (req, res) => console.handle(req, res),
      },
      this.log.child({ component: 'http' }),
    );
    const bound = this.server.address;
    this.httpAddress = bound.host.includes(':') ? `[${bound.host}]:${bound.port}` : `${bound.host}:${bound.port}`;
    this.log.info({ address: this.httpAddress, host: bound.host, port: bound.port }, 'http listening');
    announceConsole(`http://${this.httpAddress}/`, console.token, this.log);
    return bound;
  }

  /** Write the first snapshot now and one every interval from then on. */
  start(): void {
    this.lastTickAt = performance.now();
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * Close the server and, if the daemon got as far as writing snapshots, write
   * the last one (state stopped). Each step runs even if the other failed.
   */
  async stop(): Promise<void> {
    const started = this.lastTickAt !== null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.console?.close();
    try {
      await this.server?.close();
    } catch (err) {
      this.log.error({ err }, 'closing the http server failed');
    }
    if (!started) return; // a daemon that never started must not overwrite a running one's snapshot
    try {
      await writeDaemonStatus(this.paths, await this.snapshot('stopped'));
    } catch (err) {
      this.log.warn({ err }, 'could not write state/daemon.json');
    }
  }

  async snapshot(state = this.daemon.state()): Promise<DaemonStatusFile> {
    const now = this.clock.now();
    const counts = await this.counts.get();
    const spend = Object.fromEntries(Object.entries(counts.agents).map(([agent, c]) => [agent, c.spendTodayUsd]));
    return {
      v: 1,
      pid: process.pid,
      host: hostId(),
      started_at: new Date(this.daemon.startedAt).toISOString(),
      written_at: new Date(now).toISOString(),
      uptime_ms: now - this.daemon.startedAt,
      state,
      http: this.httpAddress,
      agents: this.daemon.agents(),
      runs: this.live.list().map((run) => {
        const p = run.progress();
        return {
          agent: run.agent,
          task_id: run.taskId,
          run_id: run.runId,
          started_at: new Date(run.startedAt).toISOString(),
          steps: p.run.steps,
          tool_calls: p.run.toolCalls,
          input_tokens: p.run.inputTokens,
          output_tokens: p.run.outputTokens,
          cost_usd: p.run.costUsd,
          task_steps: p.taskSteps,
          task_cost_usd: p.taskCostUsd,
          max_steps: p.maxSteps,
          max_cost_usd: p.maxCostUsd,
        };
      }),
      circuits: this.daemon.circuits().map((c) => ({ ...c, opened_at: c.opened_at === null ? null : new Date(c.opened_at).toISOString() })),
      tool_circuits: this.daemon.toolCircuits().map((c) => ({ tool: c.model, state: c.state, failures: c.failures, opened_at: c.opened_at === null ? null : new Date(c.opened_at).toISOString() })),
      last_errors: Object.fromEntries(this.lastErrors),
      spend_today_usd: { total: Object.values(spend).reduce((a, b) => a + b, 0), agents: spend },
      warm: this.daemon.warm?.() ?? [],
    };
  }

  private tick(): void {
    this.lastTickAt = performance.now();
    if (this.ticking) return; // a slow disk: skip a beat rather than pile writes up
    this.ticking = true;
    this.snapshot()
      .then((status) => writeDaemonStatus(this.paths, status))
      .catch((err: unknown) => this.log.warn({ err }, 'could not write state/daemon.json'))
      .finally(() => (this.ticking = false));
  }

  private runEnded(ended: EndedRun): void {
    this.metrics?.runEnded(ended);
    if (ended.error) {
      this.lastErrors.set(ended.run.agent, {
        at: new Date(this.clock.now()).toISOString(),
        ...ended.error,
        task_id: ended.run.taskId,
        run_id: ended.run.runId,
      });
    }
  }

  private async health() {
    const facts: HealthFacts = {
      state: this.daemon.state(),
      watcher: this.daemon.watcher(),
      schedulerAccepting: this.daemon.schedulerAccepting(),
      sinceTickMs: this.lastTickAt === null ? null : performance.now() - this.lastTickAt,
      tickIntervalMs: this.intervalMs,
      writable: await probeWritable(this.paths.healthProbe(process.pid)),
    };
    const verdict = decideHealth(facts);
    const details = {
      state: facts.state,
      pid: process.pid,
      uptime_s: Math.round((this.clock.now() - this.daemon.startedAt) / 1000),
      running_runs: this.live.size,
    };
    return { ...verdict, details };
  }
}
