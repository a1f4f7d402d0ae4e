import { PROPERTIES, type EvalCase } from './cases.js';
import type { Checks, Observed, ObservedStatus } from './checks.js';
import type { JudgeScore } from './judge.js';
import type { RecordedCall } from './recorder.js';

/**
 * Pass rates, the evals.jsonl line and the regression rule: pure functions
 * of the case runs and the last recorded line.
 */

/** How much lower than the last recorded pass rate still counts as the same (noise, not a regression). */
export const REGRESSION_TOLERANCE = 0.01;

export type JudgeResult = JudgeScore | { skipped: string };

export interface RunResult {
  /** 1-based repeat number. */
  run: number;
  status: ObservedStatus;
  /** Every deterministic check passed. */
  passed: boolean;
  checks: Checks;
  judge?: JudgeResult;
  tools_called: string[];
  /** Side-effecting calls a recorder answered instead of running them. */
  recorded: RecordedCall[];
  output?: unknown;
  escalation?: Observed['escalation'];
  error?: Observed['error'];
  /** Runs the task took (retries included). */
  attempts: number;
  duration_ms: number;
  /** The case home, kept with --keep. */
  home?: string;
}

export interface Rate {
  passed: number;
  total: number;
  pass_rate: number;
}

export interface CaseReport extends Rate {
  name: string;
  source: string;
  /** One line per distinct failure: property, reason, and the runs it happened in. */
  failures: { property: string; reason: string; runs: number[] }[];
  judge?: { mean_score: number | null; scores: number[]; errors: string[] } | { skipped: string };
  results: RunResult[];
}

export interface JudgeSummary {
  model: string | null;
  /** Case runs with a rubric that got a score. */
  scored: number;
  errors: number;
  skipped: number;
  mean_score: number | null;
}

export interface EvalsLogLine {
  v: 1;
  at: string;
  agent: string;
  version: string;
  definition_hash: string;
  repeat: number;
  cases: { name: string; passed: number; total: number; pass_rate: number }[];
  pass_rate: number;
  by_property: Record<string, Rate>;
  judge?: JudgeSummary;
}

export interface EvalReport extends Omit<EvalsLogLine, 'cases'> {
  threshold: number;
  live_tools: boolean;
  cases: CaseReport[];
  /** The line before this one in evals.jsonl, when there is one. */
  previous: { at: string; pass_rate: number; same_cases: boolean } | null;
  regression: boolean;
  /** At or above the threshold and no regression: exit 0. */
  ok: boolean;
}

const rate = (passed: number, total: number): Rate => ({ passed, total, pass_rate: total === 0 ? 1 : round(passed / total) });
const round = (x: number) => Math.round(x * 10_000) / 10_000;
const mean = (xs: number[]) => (xs.length === 0 ? null : round(xs.reduce((a, b) => a + b, 0) / xs.length));

export function caseReport(evalCase: EvalCase, results: RunResult[]): CaseReport {
  const failures: CaseReport['failures'] = [];
  for (const r of results) {
    for (const [property, check] of Object.entries(r.checks)) {
      if (check.pass) continue;
      const same = failures.find((f) => f.property === property && f.reason === check.reason);
      if (same) same.runs.push(r.run);
      else failures.push({ property, reason: check.reason ?? 'failed', runs: [r.run] });
    }
  }
  const report: CaseReport = { name: evalCase.name, source: evalCase.source, ...rate(results.filter((r) => r.passed).length, results.length), failures, results };
  if (evalCase.expect.judge !== undefined) {
    const skipped = results.map((r) => r.judge).find((j): j is { skipped: string } => j !== undefined && 'skipped' in j);
    if (skipped) report.judge = skipped;
    else {
      const scores = results.flatMap((r) => (r.judge && 'score' in r.judge ? [r.judge.score] : []));
      const errors = results.flatMap((r) => (r.judge && 'error' in r.judge ? [r.judge.error] : []));
      report.judge = { mean_score: mean(scores), scores, errors };
    }
  }
  return report;
}

export function byProperty(cases: CaseReport[]): Record<string, Rate> {
  const out: Record<string, Rate> = {};
  for (const property of PROPERTIES) {
    const checks = cases.flatMap((c) => c.results.flatMap((r) => (r.checks[property] ? [r.checks[property]] : [])));
    if (checks.length > 0) out[property] = rate(checks.filter((c) => c.pass).length, checks.length);
  }
  return out;
}

export function judgeSummary(cases: CaseReport[], model: string | null): JudgeSummary | undefined {
  const judged = cases.flatMap((c) => c.results.flatMap((r) => (r.judge ? [r.judge] : [])));
  if (judged.length === 0) return undefined;
  const scores = judged.flatMap((j) => ('score' in j ? [j.score] : []));
  return {
    model,
    scored: scores.length,
    errors: judged.filter((j) => 'error' in j).length,
    skipped: judged.filter((j) => 'skipped' in j).length,
    mean_score: mean(scores),
  };
}

/** Lower than the last recorded run on the same case names by more than the tolerance. */
export function isRegression(previous: Pick<EvalsLogLine, 'pass_rate' | 'cases'> | null, current: Pick<EvalsLogLine, 'pass_rate' | 'cases'>): boolean {
  if (!previous || !sameCases(previous, current)) return false;
  // Rates are rounded to 4 places: a drop of exactly the tolerance must not become one by float error.
  return round(previous.pass_rate - current.pass_rate) > REGRESSION_TOLERANCE;
}

export function sameCases(a: Pick<EvalsLogLine, 'cases'>, b: Pick<EvalsLogLine, 'cases'>): boolean {
  const names = (l: Pick<EvalsLogLine, 'cases'>) => [...new Set(l.cases.map((c) => c.name))].sort().join('\n');
  return names(a) === names(b);
}

export interface ReportInput {
  at: Date;
  agent: { name: string; version: string; hash: string };
  repeat: number;
  threshold: number;
  liveTools: boolean;
  judgeModel: string | null;
  cases: { evalCase: EvalCase; results: RunResult[] }[];
  previous: EvalsLogLine | null;
}

export function buildReport(input: ReportInput): EvalReport {
  const cases = input.cases.map((c) => caseReport(c.evalCase, c.results));
  const total = rate(
    cases.reduce((n, c) => n + c.passed, 0),
    cases.reduce((n, c) => n + c.total, 0),
  );
  const judge = judgeSummary(cases, input.judgeModel);
  const line = logLine({ at: input.at.toISOString(), agent: input.agent.name, version: input.agent.version, definition_hash: input.agent.hash, repeat: input.repeat, pass_rate: total.pass_rate, cases, by_property: byProperty(cases), ...(judge ? { judge } : {}) });
  const regression = isRegression(input.previous, line);
  return {
    ...line,
    threshold: input.threshold,
    live_tools: input.liveTools,
    cases,
    previous: input.previous ? { at: input.previous.at, pass_rate: input.previous.pass_rate, same_cases: sameCases(input.previous, line) } : null,
    regression,
    ok: total.pass_rate >= input.threshold && !regression,
  };
}

/** The line appended to state/<agent>/evals.jsonl: the rates, not every run's output. */
export function logLine(report: Omit<EvalsLogLine, 'v' | 'cases'> & { cases: (Rate & { name: string })[] }): EvalsLogLine {
  return {
    v: 1,
    at: report.at,
    agent: report.agent,
    version: report.version,
    definition_hash: report.definition_hash,
    repeat: report.repeat,
    cases: report.cases.map((c) => ({ name: c.name, passed: c.passed, total: c.total, pass_rate: c.pass_rate })),
    pass_rate: report.pass_rate,
    by_property: report.by_property,
    ...(report.judge ? { judge: report.judge } : {}),
  };
}

const percent = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** The report for a terminal. */
export function formatReport(report: EvalReport, table: (columns: string[], rows: (string | number | null)[][]) => string): string {
  const out: string[] = [];
  const runs = report.repeat === 1 ? '1 run each' : `${report.repeat} runs each`;
  out.push(`eval ${report.agent} (version ${report.version}, definition ${report.definition_hash.slice(0, 12)}): ${report.cases.length} case(s), ${runs}, ${report.live_tools ? 'live tools' : 'side-effecting tools recorded'}`);
  out.push('');
  out.push(
    table(
      ['CASE', 'PASSED', 'RATE', 'JUDGE'],
      report.cases.map((c) => [c.name, `${c.passed}/${c.total}`, percent(c.pass_rate), !c.judge ? null : 'skipped' in c.judge ? 'skipped' : c.judge.mean_score === null ? 'error' : c.judge.mean_score.toFixed(2)]),
    ).trimEnd(),
  );
  const failures = report.cases.flatMap((c) => c.failures.map((f) => `  ${c.name}: ${f.property}: ${f.reason}${report.repeat > 1 ? ` (run${f.runs.length > 1 ? 's' : ''} ${f.runs.join(', ')})` : ''}`));
  if (failures.length > 0) out.push('', 'failures:', ...failures);
  out.push('', table(['PROPERTY', 'PASSED', 'RATE'], Object.entries(report.by_property).map(([p, r]) => [p, `${r.passed}/${r.total}`, percent(r.pass_rate)])).trimEnd());
  if (report.judge) {
    const j = report.judge;
    out.push('');
    if (j.model === null) out.push(`judge: skipped for ${j.skipped} run(s) with a rubric (no judge model: pass --judge-model <provider>/<model>)`);
    else {
      out.push(`judge ${j.model}: mean score ${j.mean_score === null ? '-' : j.mean_score.toFixed(2)} over ${j.scored} run(s)${j.errors > 0 ? `, ${j.errors} error(s)` : ''} (not part of the pass rate)`);
      for (const c of report.cases) {
        if (!c.judge || 'skipped' in c.judge) continue;
        for (const r of c.results) if (r.judge && 'score' in r.judge) out.push(`  ${c.name}${report.repeat > 1 ? ` (run ${r.run})` : ''}: ${r.judge.score.toFixed(2)} ${r.judge.reason}`);
        for (const e of c.judge.errors) out.push(`  ${c.name}: ${e}`);
      }
    }
  }
  out.push('');
  const previous = report.previous
    ? report.previous.same_cases
      ? `; previous run ${percent(report.previous.pass_rate)}${report.regression ? ': REGRESSION' : ''}`
      : '; previous run had other cases: no comparison'
    : '';
  out.push(`pass rate ${percent(report.pass_rate)} (threshold ${percent(report.threshold)})${previous}: ${report.ok ? 'ok' : 'FAILED'}`);
  return out.join('\n') + '\n';
}
