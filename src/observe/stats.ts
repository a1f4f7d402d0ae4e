import type { HistoryLine, RunStatus } from '../store/history.js';

/**
 * `agentd stats`, pure: rates, percentiles, tokens and cost over history
 * lines (README "Traces and stats"), per agent and in total. Lines are added one
 * at a time so a caller can stream a long history without holding it.
 *
 * Definitions (also in the README):
 * - success rate: runs that ended `done`, over all runs;
 * - error rate: runs with an `error_category`, over all runs, also per category;
 * - escalation rate: runs that asked a person (`escalated`, and `limit`, which
 *   puts a limit item in the outbox), over all runs;
 * - percentiles are nearest-rank: the smallest value with at least p% of the
 *   values at or below it;
 * - runs per minute: runs over the window (`--since`, else first start to last end, at least a minute).
 */

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface GroupStats {
  runs: number;
  runs_per_minute: number;
  success_rate: number;
  error_rate: number;
  escalation_rate: number;
  /** Runs by how they ended. */
  statuses: Partial<Record<RunStatus, number>>;
  errors_by_category: Record<string, { runs: number; rate: number }>;
  duration_ms: Percentiles;
  /** Over every model call of the runs (lines written before this field existed add none). */
  model_latency_ms: Percentiles & { calls: number };
  tokens: { input: number; output: number; per_run: number };
  cost_usd: { total: number; per_run: number };
}

export interface StatsReport {
  v: 1;
  /** ISO 8601; null when every run counts. */
  since: string | null;
  /** The window runs per minute is computed over. */
  window_ms: number;
  total: GroupStats;
  agents: Record<string, GroupStats>;
}

export interface StatsWindow {
  /** Only runs started at or after this (epoch ms); null: all. */
  sinceMs: number | null;
  nowMs: number;
}

const MINUTE_MS = 60_000;

/** Nearest-rank percentile of ascending `sorted`; null when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

/** The running sums of one group (an agent, or everything). */
class Group {
  runs = 0;
  done = 0;
  errored = 0;
  escalated = 0;
  inputTokens = 0;
  outputTokens = 0;
  costUsd = 0;
  readonly statuses: Partial<Record<RunStatus, number>> = {};
  readonly categories = new Map<string, number>();
  readonly durations: number[] = [];
  readonly latencies: number[] = [];

  add(line: HistoryLine): void {
    this.runs++;
    if (line.status === 'done') this.done++;
    if (line.status === 'escalated' || line.status === 'limit') this.escalated++;
    this.statuses[line.status] = (this.statuses[line.status] ?? 0) + 1;
    if (line.error_category) {
      this.errored++;
      this.categories.set(line.error_category, (this.categories.get(line.error_category) ?? 0) + 1);
    }
    this.durations.push(line.duration_ms ?? 0);
    if (Array.isArray(line.model_latency_ms)) for (const ms of line.model_latency_ms) this.latencies.push(ms);
    this.inputTokens += line.tokens?.input ?? 0;
    this.outputTokens += line.tokens?.output ?? 0;
    this.costUsd += line.cost_usd ?? 0;
  }

  result(windowMs: number): GroupStats {
    const rate = (n: number) => (this.runs === 0 ? 0 : n / this.runs);
    const errors: GroupStats['errors_by_category'] = {};
    for (const [category, runs] of [...this.categories].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) errors[category] = { runs, rate: rate(runs) };
    return {
      runs: this.runs,
      runs_per_minute: this.runs / (Math.max(windowMs, MINUTE_MS) / MINUTE_MS),
      success_rate: rate(this.done),
      error_rate: rate(this.errored),
      escalation_rate: rate(this.escalated),
      statuses: { ...this.statuses },
      errors_by_category: errors,
      duration_ms: percentiles(this.durations),
      model_latency_ms: { ...percentiles(this.latencies), calls: this.latencies.length },
      tokens: { input: this.inputTokens, output: this.outputTokens, per_run: rate(this.inputTokens + this.outputTokens) },
      cost_usd: { total: this.costUsd, per_run: rate(this.costUsd) },
    };
  }
}

export class StatsAccumulator {
  private readonly total = new Group();
  private readonly agents = new Map<string, Group>();
  private firstStartMs = Infinity;
  private lastEndMs = -Infinity;

  constructor(private readonly window: StatsWindow) {}

  /** Adds one run; a run started before the window is ignored. */
  add(line: HistoryLine): void {
    const startMs = Date.parse(line.started_at);
    if (this.window.sinceMs !== null && !(startMs >= this.window.sinceMs)) return;
    this.total.add(line);
    let group = this.agents.get(line.agent);
    if (!group) this.agents.set(line.agent, (group = new Group()));
    group.add(line);
    if (startMs < this.firstStartMs) this.firstStartMs = startMs;
    const endMs = Date.parse(line.ended_at);
    if (endMs > this.lastEndMs) this.lastEndMs = endMs;
  }

  result(): StatsReport {
    const windowMs = this.window.sinceMs !== null ? this.window.nowMs - this.window.sinceMs : Number.isFinite(this.firstStartMs) && Number.isFinite(this.lastEndMs) ? Math.max(0, this.lastEndMs - this.firstStartMs) : 0;
    const agents: Record<string, GroupStats> = {};
    for (const name of [...this.agents.keys()].sort()) agents[name] = this.agents.get(name)!.result(windowMs);
    return {
      v: 1,
      since: this.window.sinceMs !== null ? new Date(this.window.sinceMs).toISOString() : null,
      window_ms: windowMs,
      total: this.total.result(windowMs),
      agents,
    };
  }
}

export function computeStats(lines: Iterable<HistoryLine>, window: StatsWindow): StatsReport {
  const acc = new StatsAccumulator(window);
  for (const line of lines) acc.add(line);
  return acc.result();
}
