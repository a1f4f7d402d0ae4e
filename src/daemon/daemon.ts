import { youngGenerationSmallWhileStarting } from './memory.js';
import type { Logger } from 'pino';
import { loadDaemonConfig } from '../config/daemon-config.js';
import type { DaemonConfig } from '../config/types.js';
import { errorMessage, UsageError } from '../errors.js';
import { checkHttpAddress, type HttpAddress } from '../config/http-address.js';
import { ModelGateway } from '../model/gateway.js';
import { OutageAlerts } from '../run/outage-alert.js';
import type { ModelProvider } from '../model/types.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ensureHomeSdkLink } from '../store/sdk-link.js';
import type { ClaimResult } from '../run/runner.js';
import { createGateway, createRunnerDeps } from '../run/deps.js';
import { HomePaths } from '../store/paths.js';
import { ToolRunner } from '../tools/tool-runner.js';
import { RunEndpoint } from '../endpoint/server.js';
import { applySecuritySettings } from '../security/apply.js';
import { AgentRegistry } from './agent-registry.js';
import { Scheduler } from './scheduler.js';
import { DaemonObservability } from './observability.js';
import { Notifier } from '../notify/notifier.js';
import { Schedules } from './schedules.js';
import { fileScheduleStore, nodeCronTimer } from './schedule-ports.js';
import { watchHome, type HomeEvent, type HomeWatcher } from './watcher.js';
import { InboxIndex, isTaskFileName } from '../store/inbox-index.js';
import { WarmPool } from '../run/warm-pool.js';
import { reviewOnClaimEnd, spareDemand, spareWindow } from './spares.js';
import { exists, listDir } from '../store/durable.js';
import { countParked } from '../store/waiting.js';
import { pausePoint } from '../store/test-pause.js';
import { agentsToLoadAgain, daemonConfigIdentity, definitionsNow, sameFiles, type FileIdentity } from './start-catch-up.js';
import { holdFoldersUnder } from '../store/folder-sync.js';

/**
 * The run's code (runner, run host, finish, boot checks...) loads after
 * 'daemon started', not before (README.md, Benchmark: P4): right after it, in
 * the background, so the first task's pick-up does not pay for the load
 * (P2a's tail), or on the first claim when that comes sooner.
 */
let runner: Promise<typeof import('../run/runner.js')> | null = null;
const loadRunner = () =>
  (runner ??= import('../run/runner.js').catch((err: unknown) => {
    runner = null; // a failed load (EMFILE...) is tried again on the next claim
    throw err;
  }));

export type DaemonState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface DaemonOptions {
  home: string;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  /** Replace providers built from agentd.yaml (tests). */
  providers?: Record<string, ModelProvider>;
  /** Watch the home for edits (default true). */
  watch?: boolean;
  /** How often a slow whole-home sweep catches events a network filesystem never sent (default 60s). */
  sweepIntervalMs?: number;
  /** `host:port` for /healthz and /metrics, over agentd.yaml `http` (`agentd start --http`). */
  http?: string;
  /** Let `http` be a non-loopback address (`--http-allow-remote`). */
  httpAllowRemote?: boolean;
}

/**
 * The supervisor: loads agents, watches their files, and lets the scheduler
 * claim runs. It only wires the stages together; behaviour lives in the
 * modules it calls.
 */
export class Daemon {
  state: DaemonState = 'starting';
  readonly paths: HomePaths;
  readonly startedAt: number;
  private config!: DaemonConfig;
  private registry!: AgentRegistry;
  private scheduler!: Scheduler;
  private schedules!: Schedules;
  private gateway!: ModelGateway;
  /** Models whose half-open probe one of this daemon's claims holds (run/outage.ts). */
  private readonly probes = new Set<string>();
  private tools!: ToolRunner;
  /** The runs' OpenAI-compatible endpoint on 127.0.0.1. */
  private endpoint: RunEndpoint | null = null;
  private watcher: HomeWatcher | null = null;
  /** Set from 'daemon started' until the watcher has started (watchAndCatchUp): /healthz counts it as alive. */
  private watcherStarting = false;
  /** Delivers outbox items to agentd.yaml `notify:` hooks. */
  private notifier: Notifier | null = null;
  /** What the daemon knows of each inbox (store/inbox-index.ts); used while the daemon watches the home. */
  private readonly inboxIndex = new InboxIndex();
  /** Agent processes started ahead for definitions with `warm` (run/warm-pool.ts). */
  private warmPool!: WarmPool;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** One provider_unavailable item per model down past outage_alert (run/outage-alert.ts). */
  private outageAlerts: OutageAlerts | null = null;
  /** state/daemon.json, /healthz, /metrics and the runs' live counters. */
  private readonly observe: DaemonObservability;
  private readonly interrupt = new AbortController();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private stopping: Promise<void> | null = null;
  private markStopped!: () => void;
  /** Resolves once the daemon has stopped. */
  readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  constructor(private readonly options: DaemonOptions) {
    this.paths = new HomePaths(options.home);
    holdFoldersUnder(this.paths.stateRoot()); // only daemons write there (store/folder-sync.ts)
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.log;
    this.startedAt = this.clock.now();
    this.observe = new DaemonObservability(
      this.paths,
      {
        state: () => this.state,
        startedAt: this.startedAt,
        agents: () => this.registry?.names() ?? [],
        circuits: () => this.gateway?.circuits() ?? [],
        toolCircuits: () => this.tools?.circuits.list() ?? [],
        // From 'daemon started' until watchHome (after the first inbox sweep; daemon/start-catch-up.ts) the watcher is starting, not down.
        watcher: () => (this.options.watch === false ? 'off' : this.watcher ? (this.watcher.closed ? 'closed' : 'alive') : this.watcherStarting ? 'alive' : 'closed'),
        schedulerAccepting: () => this.scheduler?.isAccepting ?? false,
        warm: () => this.warmPool?.status() ?? [],
      },
      this.clock,
      this.log,
    );
  }

  /** Load everything and begin claiming. Throws ConfigError when agentd.yaml itself is bad. */
  async start(): Promise<void> {
    const startingDone = youngGenerationSmallWhileStarting();
    const configRead = await daemonConfigIdentity(this.paths); // before the read: a write after it is a difference
    this.config = await loadDaemonConfig(this.paths);
    applySecuritySettings(this.config, this.log, this.paths.root);
    await this.linkSdk();
    const http = this.httpAddress();
    if (http) await this.observe.listen(http);
    this.gateway = this.newGateway(this.config);
    this.endpoint = new RunEndpoint(this.log.child({ component: 'endpoint' }), () => this.clock.now());
    await this.endpoint.listen();
    this.tools = new ToolRunner(this.paths.root, this.log.child({ component: 'tools' }), { now: () => this.clock.now() });
    this.registry = new AgentRegistry(this.paths, this.config, this.log.child({ component: 'registry' }), () => new Date(this.clock.now()), (agent) =>
      this.scheduler.poke(agent),
    );
    const spares = spareDemand(this.options.watch !== false, this.inboxIndex, () => this.scheduler, () => spareWindow(this.config));
    this.warmPool = new WarmPool(this.paths.root, this.log.child({ component: 'warm' }), () => this.clock.now(), spares);
    this.scheduler = new Scheduler(this.config.maxParallelRuns, (agent) => this.claim(agent), this.log, this.clock, this.config.lockStaleMs / 2);
    const schedulesLog = this.log.child({ component: 'schedules' });
    this.schedules = new Schedules({ store: fileScheduleStore(this.paths), timer: nodeCronTimer(schedulesLog), now: () => this.clock.now(), log: schedulesLog, onWritten: (agent) => this.scheduler.poke(agent) });
    if (this.stopping) {
      // A signal arrived during start-up and the stop is done: start nothing more, or the process never exits.
      startingDone();
      return;
    }
    this.state = 'running';
    const loadStartedAt = Date.now(); // wall clock: compared with file times (daemon/start-catch-up.ts)
    // sync: nothing else waits on the event loop yet (store/home-file.ts readHomeFileSync)
    const loaded = await this.registry.loadAll({ remember: this.options.watch !== false, sync: true });
    await this.syncSchedules();
    this.notifier = new Notifier(this.paths, this.config.notify, this.clock, this.log.child({ component: 'notify' }));
    await this.notifier.start();
    this.log.info({ home: this.paths.root, agents: loaded.length, max_parallel_runs: this.config.maxParallelRuns }, 'daemon started');
    setImmediate(() => void loadRunner().catch(() => undefined)); // a failure is met, and logged, by the claim that needs it
    this.watcherStarting = this.options.watch !== false;
    this.observe.start();
    const firstLook = new Map<string, string>();
    await this.pokeAgentsWithWork(firstLook); // tasks already waiting are claimed before the watcher's scan
    this.startWatcher(configRead, loadStartedAt, firstLook, startingDone);
    this.sweepTimer = setInterval(() => {
      this.pokeAgentsWithWork().catch((err: unknown) => this.log.error({ err }, 'sweep failed'));
    }, this.options.sweepIntervalMs ?? this.config.sweepIntervalMs);
    this.sweepTimer.unref();
    this.outageAlerts = new OutageAlerts({
      paths: this.paths,
      log: this.log.child({ component: 'outage' }),
      now: () => this.clock.now(),
      alertMs: () => this.config.outageAlertMs,
      circuits: () => this.gateway.circuits(),
      agents: () => this.registry.names().flatMap((name) => this.registry.get(name) ?? []),
    });
    this.outageAlerts.start();
  }

  /** watchAndCatchUp in the background; start-up is over when it is (daemon/memory.ts). */
  private startWatcher(configRead: FileIdentity[], loadStartedAt: number, firstLook: Map<string, string>, startingDone: () => void): void {
    if (this.options.watch === false) return startingDone();
    void this.watchAndCatchUp(configRead, loadStartedAt, firstLook)
      .catch((err: unknown) => this.log.error({ err }, 'file watcher failed to start'))
      .finally(() => {
        this.watcherStarting = false;
        startingDone();
      });
  }

  /**
   * The watcher starts once 'daemon started' is logged, and its first scan runs
   * while the daemon already claims. Until that scan is done a new file raises
   * no event: once it is, the daemon looks again at agents/, at definitions
   * and agentd.yaml changed since it read them, and at every inbox
   * (daemon/start-catch-up.ts; README.md, The home folder).
   */
  private async watchAndCatchUp(configRead: FileIdentity[], loadStartedAt: number, firstLook: Map<string, string>): Promise<void> {
    await pausePoint('watcher-before-start');
    if (this.state !== 'running') return;
    const watcher = watchHome(this.paths, this.log.child({ component: 'watcher' }), (e) => this.onEvent(e), (e) => {
      if (e.kind === 'added') this.inboxIndex.added(e.agent, e.name);
      else this.inboxIndex.removed(e.agent, e.name);
      this.warmPool.review(e.agent); // its spare follows its inbox (run/spare-rule.ts)
    });
    this.watcher = watcher;
    await watcher.ready();
    if (this.state !== 'running') return;
    let loadedAgain = 0;
    const readAtLoad = this.registry.takeReadAtLoad();
    if (!sameFiles(configRead, await daemonConfigIdentity(this.paths))) {
      await this.reload(); // every definition again, and every inbox
    } else {
      const listed = await this.registry.scanNames();
      const again = agentsToLoadAgain(listed, readAtLoad, await definitionsNow(this.paths, listed), loadStartedAt);
      for (const agent of again) this.inboxIndex.forget(agent);
      const ok = await this.registry.loadEach(again, { live: true }); // changed since the load, as a watcher event tells
      again.forEach((agent, i) => ok[i] && this.scheduler.poke(agent));
      if (again.length > 0) await this.syncSchedules();
      loadedAgain = again.length;
      await this.pokeAgentsWithWork(firstLook);
    }
    this.log.info({ agents: this.registry.size, loaded_again: loadedAgain }, 'file watcher ready');
  }

  /** Node agents of this home import `agentd/sdk` through `<home>/node_modules/agentd` (store/sdk-link.ts). */
  private async linkSdk(): Promise<void> {
    const linked = await ensureHomeSdkLink(this.paths);
    if (linked.kind === 'failed') this.log.warn({ problem: linked.problem, link: this.paths.sdkLink() }, 'could not link the SDK into the home; agents importing agentd/sdk will fail');
  }

  /** Stop claiming, stop every run with reason shutdown, wait, and leave every task resumable. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'starting') {
      await this.observe.stop(); // start() failed: only the http servers may be open
      await this.endpoint?.close();
      this.state = 'stopped';
      this.markStopped();
      return;
    }
    this.state = 'stopping';
    this.log.info({ running: this.scheduler.runningCount }, 'daemon stopping');
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.outageAlerts?.stop();
    this.interrupt.abort('shutdown');
    const steps: [string, () => Promise<void>][] = [
      ['warm agents', async () => this.warmPool.stop()],
      ['schedules', () => this.schedules.stop()],
      ['scheduler', () => this.scheduler.stop()],
      ['watcher', async () => {
        this.registry.close();
        await this.watcher?.close();
      }],
      ['notify', async () => this.notifier?.stop()],
      ['observability', () => this.observe.stop()],
      ['endpoint', async () => this.endpoint?.close()],
    ];
    for (const [name, step] of steps) {
      // Each cleanup runs even if the one before it failed.
      try {
        await step();
      } catch (err) {
        this.log.error({ err, step: name }, 'shutdown step failed');
      }
    }
    this.state = 'stopped';
    this.log.info('daemon stopped');
    this.markStopped();
  }

  /** SIGHUP: re-read agentd.yaml and every definition. A bad agentd.yaml keeps the last good one. */
  async reload(): Promise<void> {
    try {
      this.config = await loadDaemonConfig(this.paths);
      applySecuritySettings(this.config, this.log, this.paths.root);
      const gateway = this.newGateway(this.config);
      gateway.adoptCircuits(this.gateway);
      this.gateway = gateway;
      this.registry.setConfig(this.config);
      this.scheduler.setMaxParallel(this.config.maxParallelRuns);
      await this.notifier?.setHooks(this.config.notify);
    } catch (err) {
      this.log.error({ problem: errorMessage(err) }, 'agentd.yaml rejected; the last good config stays in use');
    }
    await this.registry.loadAll();
    await this.syncSchedules();
    this.log.info({ agents: this.registry.size }, 'definitions reloaded');
    await this.pokeAgentsWithWork();
  }

  /** --http over agentd.yaml `http`; a non-loopback address only when allowed. Throws UsageError (exit 2). */
  private httpAddress(): HttpAddress | null {
    const text = this.options.http ?? this.config.http;
    if (!text) return null;
    const source = this.options.http ? '--http' : `${this.config.file ?? 'agentd.yaml'}: http`;
    const check = checkHttpAddress(text, this.options.httpAllowRemote === true || this.config.httpAllowRemote, source);
    if (!check.ok) throw new UsageError(check.problem);
    return check.address;
  }

  /** Resolves when no claim is in progress (tests, `agentd run`). */
  whenIdle(): Promise<void> {
    return this.scheduler.whenIdle();
  }

  private newGateway(config: DaemonConfig): ModelGateway {
    return createGateway(this.paths, config, this.clock, this.random, this.log, this.options.providers, this.observe.modelCall);
  }

  private async claim(agent: string): Promise<ClaimResult> {
    // The queue moved up: the agents whose turn is now near get their spare (run/spare-rule.ts).
    for (const next of this.scheduler.upNext(spareWindow(this.config))) this.warmPool.review(next);
    const definition = this.registry.get(agent);
    if (!definition) return { kind: 'idle' };
    const deps = createRunnerDeps({
      paths: this.paths,
      config: this.config,
      log: this.log.child({ agent }),
      clock: this.clock,
      random: this.random,
      gateway: this.gateway,
      tools: this.tools,
      interrupt: this.interrupt.signal,
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
    });
    // Before the watcher's first scan is done the index can miss a new file: that delays the task until the
    // look taken once the scan is done (watchAndCatchUp reconciles every inbox); it never promotes the wrong one.
    const inbox = this.options.watch !== false ? this.inboxIndex : undefined;
    const { claimAndRun } = await loadRunner();
    const ran = claimAndRun({ ...deps, currentDefinition: (name) => this.registry.get(name), live: this.observe.live, inbox, probes: this.probes, warm: this.warmPool }, definition);
    return reviewOnClaimEnd(this.warmPool, agent, ran); // the agent's spare follows how the claim ended (daemon/spares.ts)
  }

  private onEvent(event: HomeEvent): void {
    if (this.state !== 'running') return;
    switch (event.kind) {
      case 'daemon_config':
        void this.reload();
        return;
      case 'definition':
      case 'agent_folder':
        this.inboxIndex.forget(event.agent); // the folder itself came or went: list the inbox again
        void this.registry.load(event.agent, { live: true }).then((ok) => {
          if (ok) this.scheduler.poke(event.agent);
          return this.syncSchedules();
        });
        return;
      case 'task':
      case 'outbox':
        if (this.registry.get(event.agent)) this.scheduler.poke(event.agent);
        return;
    }
  }

  /** Cron jobs and warm agents follow the loaded definitions (daemon/schedules.ts, run/warm-pool.ts); never throws. */
  private async syncSchedules(): Promise<void> {
    const definitions = this.registry.names().flatMap((name) => this.registry.get(name) ?? []);
    if (this.state === 'running') this.warmPool.sync(definitions);
    await this.schedules.sync(definitions).catch((err: unknown) => this.log.error({ err }, 'schedules sync failed'));
  }

  /** Queue every agent that has a current task or inbox files; a cheap check, no lock. */
  /**
   * `seen`: what each agent with work looked like, recorded, and an agent that
   * looks the same as recorded is not poked again. The look taken once the
   * watcher is ready (watchAndCatchUp) so pokes only what changed since the
   * first look at start: that one's claims already ran or wait (a second claim
   * of an agent whose retry waits would only log it waiting again).
   */
  private async pokeAgentsWithWork(seen?: Map<string, string>): Promise<void> {
    for (const agent of this.registry.names()) {
      if (this.state !== 'running') return;
      const inbox = (await listDir(this.paths.inboxDir(agent))).filter(isTaskFileName);
      this.inboxIndex.reconcile(agent, inbox); // catches an event the filesystem never sent
      const parked = await countParked(this.paths, agent); // one may have been answered while the daemon was down
      const current = await exists(this.paths.currentTask(agent));
      if (!current && inbox.length === 0 && parked === 0) continue;
      const looks = `${String(current)}:${parked}:${inbox.join('/')}`;
      if (seen?.get(agent) === looks) continue;
      seen?.set(agent, looks);
      this.scheduler.poke(agent);
    }
  }
}
