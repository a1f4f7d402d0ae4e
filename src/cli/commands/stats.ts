import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.js';
import { StatsAccumulator, type GroupStats, type Percentiles, type StatsReport } from '../../observe/stats.js';
import { agentsWithState, scanHistory } from '../../store/history-scan.js';
import { assertName } from '../../store/paths.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, sinceOptionMs, withHome } from '../common.js';

interface StatsOptions {
  home?: string;
  since?: string;
  agent?: string;
  json?: boolean;
}

export function registerStats(program: Command): void {
  withHome(program.command('stats'))
    .description('runs per minute, success, error and escalation rates, p50/p95/p99 run duration and model latency, tokens and cost per run, from history.jsonl')
    .option('--since <duration>', 'only runs started within this long, e.g. 1h (default: the whole history)')
    .option('--agent <agent>', 'only this agent')
    .option('--json', 'print the report as JSON')
    .action((options: StatsOptions) => runCommand(() => showStats(options)));
}

async function showStats(options: StatsOptions): Promise<number> {
  const paths = homeOf(options);
  const nowMs = Date.now();
  const sinceMs = options.since === undefined ? null : nowMs - sinceOptionMs(options.since);
  const agents = options.agent !== undefined ? [assertName(options.agent, 'agent name')] : await agentsWithState(paths);
  const acc = new StatsAccumulator({ sinceMs, nowMs });
  for (const agent of agents) {
    for await (const line of scanHistory(paths.history(agent), { sinceMs })) acc.add(line);
  }
  const report = acc.result();
  if (options.json) printJson(report);
  else process.stdout.write(formatReport(report, options.since));
  return EXIT.ok;
}


const pct = (rate: number) => `${(rate * 100).toFixed(1)}%`;
const ms = (value: number | null) => (value === null ? '-' : formatDuration(value));
const usd = (value: number) => `$${value.toFixed(4)}`;
const trio = (p: Percentiles) => `p50 ${ms(p.p50)}  p95 ${ms(p.p95)}  p99 ${ms(p.p99)}`;

export function formatReport(report: StatsReport, since: string | undefined): string {
  const t = report.total;
  if (t.runs === 0) return `no runs${since ? ` in the last ${since}` : ''}\n`;
  const window = since ? `in the last ${since}` : `over ${formatDuration(report.window_ms)}`;
  const lines = [
    `runs            ${t.runs} ${window} (${t.runs_per_minute.toFixed(2)}/min)`,
    `success         ${pct(t.success_rate)}   errors ${pct(t.error_rate)}   escalations ${pct(t.escalation_rate)}`,
    `run duration    ${trio(t.duration_ms)}`,
    `model latency   ${trio(t.model_latency_ms)}   (${t.model_latency_ms.calls} calls)`,
    `tokens          ${Math.round(t.tokens.per_run)} per run (${t.tokens.input} in, ${t.tokens.output} out)`,
    `cost            ${usd(t.cost_usd.per_run)} per run, ${usd(t.cost_usd.total)} in total`,
  ];
  const categories = Object.entries(t.errors_by_category);
  if (categories.length > 0) lines.push(`errors by kind  ${categories.map(([c, e]) => `${c} ${pct(e.rate)} (${e.runs})`).join(', ')}`);
  const row = (name: string, g: GroupStats) => [
    name,
    g.runs,
    g.runs_per_minute.toFixed(2),
    pct(g.success_rate),
    pct(g.error_rate),
    pct(g.escalation_rate),
    `${ms(g.duration_ms.p50)}/${ms(g.duration_ms.p95)}/${ms(g.duration_ms.p99)}`,
    `${ms(g.model_latency_ms.p50)}/${ms(g.model_latency_ms.p95)}/${ms(g.model_latency_ms.p99)}`,
    Math.round(g.tokens.per_run),
    usd(g.cost_usd.per_run),
    usd(g.cost_usd.total),
  ];
  const rows = Object.entries(report.agents).map(([name, g]) => row(name, g));
  rows.push(row('TOTAL', t));
  const table = formatTable(['AGENT', 'RUNS', 'RUNS/MIN', 'SUCCESS', 'ERRORS', 'ESCALATED', 'DURATION p50/95/99', 'MODEL p50/95/99', 'TOKENS/RUN', 'COST/RUN', 'COST'], rows);
  return `${lines.join('\n')}\n\n${table}`;
}
