import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitInfo, CircuitState } from '../model/circuit-breaker.js';
import type { EndedRun, LiveRun } from '../run/live-runs.js';
import type { JournalSpend } from '../store/journal.js';
import type { HomeCounts } from './home-counts.js';

/**
 * The daemon's Prometheus metrics, in a registry of its own (never the
 * global one, so two daemons in one process, or a test, do not collide).
 * Counters move as things happen; gauges are read from their sources when
 * scraped.
 */

export interface MetricsSources {
  /** The home's per-agent counts, cached by the caller (reading the files is not free). */
  homeCounts(): Promise<HomeCounts>;
  circuits(): CircuitInfo[];
  /** Tool circuits, keyed in CircuitInfo.model by the tool's circuit key. */
  toolCircuits(): CircuitInfo[];
  liveRuns(): LiveRun[];
}

/** The value of agentd_circuit_state: what to alert on is `== 2`. */
export const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/** Seconds: from a fast local model to a slow long completion. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const ZERO: JournalSpend = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly runs: Counter<'agent' | 'status'>;
  private readonly steps: Counter<'agent'>;
  private readonly toolCalls: Counter<'agent'>;
  private readonly tokens: Counter<'agent' | 'type'>;
  private readonly cost: Counter<'agent'>;
  private readonly latency: Histogram<'model' | 'outcome'>;
  /** What the counters already hold of each live run's spend, so a scrape adds only what is new. */
  private readonly counted = new Map<string, JournalSpend>();

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.runs = new Counter({ name: 'agentd_runs_total', help: 'Finished runs by outcome (done, failed, escalated, limit, interrupted, ...).', labelNames: ['agent', 'status'], registers });
    // Spend counters include runs still going: every scrape adds what they spent since the last one.
    this.steps = new Counter({ name: 'agentd_steps_total', help: 'Model calls made by agents (replays not counted).', labelNames: ['agent'], registers, collect: () => this.countLive() });
    this.toolCalls = new Counter({ name: 'agentd_tool_calls_total', help: 'Tool calls made by agents (replays not counted).', labelNames: ['agent'], registers });
    this.tokens = new Counter({ name: 'agentd_tokens_total', help: 'Tokens used, by type (input or output).', labelNames: ['agent', 'type'], registers });
    this.cost = new Counter({ name: 'agentd_cost_usd_total', help: 'Model spend in US dollars, priced from agentd.yaml models.', labelNames: ['agent'], registers });
    this.latency = new Histogram({
      name: 'agentd_model_call_duration_seconds',
      help: 'Wall time of each provider attempt, by model and outcome (ok or the failure category).',
      labelNames: ['model', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const { sources: src } = this;
    const perAgent = (name: string, help: string, pick: (c: HomeCounts['agents'][string]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['agent'],
        registers,
        async collect() {
          const counts = await src.homeCounts();
          this.reset();
          for (const [agent, c] of Object.entries(counts.agents)) this.set({ agent }, pick(c));
        },
      });
    perAgent('agentd_queue_depth', 'Tasks waiting in the agent\'s inbox.', (c) => c.queue);
    perAgent('agentd_outbox_open_items', 'Outbox items waiting for a person.', (c) => c.openItems);
    perAgent('agentd_dead_letters', 'Tasks in state/dead-letter for the agent.', (c) => c.deadLetters);
    perAgent('agentd_spend_today_usd', 'The agent\'s spend on the current UTC day.', (c) => c.spendTodayUsd);
    new Gauge({
      name: 'agentd_circuit_state',
      help: 'Circuit breaker per model: 0 closed, 1 half_open, 2 open.',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const c of src.circuits()) this.set({ model: c.model }, CIRCUIT_STATE_VALUE[c.state]);
      },
    });
    new Gauge({
      name: 'agentd_tool_circuit_state',
      help: 'Circuit breaker per tool (a shared tool by name, an agent\'s own as agent/tool): 0 closed, 1 half_open, 2 open.',
      labelNames: ['tool'],
      registers,
      collect() {
        this.reset();
        for (const c of src.toolCircuits()) this.set({ tool: c.model }, CIRCUIT_STATE_VALUE[c.state]);
      },
    });
    new Gauge({
      name: 'agentd_running_runs',
      help: 'Runs in progress in this daemon.',
      registers,
      collect() {
        this.set(src.liveRuns().length);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'agentd_' });
  }

  /** A provider attempt ended (the gateway's onCall). */
  modelCall(model: string, latencyMs: number, outcome: string): void {
    this.latency.observe({ model, outcome }, latencyMs / 1000);
  }

  /** A run ended (LiveRuns' onEnded): count it, and whatever of its spend was not counted yet. */
  runEnded(ended: EndedRun): void {
    this.runs.inc({ agent: ended.run.agent, status: ended.outcome });
    this.addSpend(ended.run.agent, ended.run.runId, ended.spend);
    this.counted.delete(ended.run.runId);
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private countLive(): void {
    for (const run of this.sources.liveRuns()) this.addSpend(run.agent, run.runId, run.progress().run);
  }

  private addSpend(agent: string, runId: string, total: JournalSpend): void {
    const before = this.counted.get(runId) ?? ZERO;
    const delta = (key: keyof JournalSpend) => Math.max(0, total[key] - before[key]);
    this.steps.inc({ agent }, delta('steps'));
    this.toolCalls.inc({ agent }, delta('toolCalls'));
    this.tokens.inc({ agent, type: 'input' }, delta('inputTokens'));
    this.tokens.inc({ agent, type: 'output' }, delta('outputTokens'));
    this.cost.inc({ agent }, delta('costUsd'));
    this.counted.set(runId, { ...total });
  }
}
