import type { Logger } from 'pino';
import { loadAgentDefinition } from '../config/agent-definition.js';
import { loadDaemonConfig } from '../config/daemon-config.js';
import type { AgentDefinition, DaemonConfig } from '../config/types.js';
import { NotFoundError, UsageError } from '../errors.js';
import { systemClock } from '../core/clock.js';
import { createGateway } from '../run/deps.js';
import type { ModelCaller } from '../run/run-host.js';
import { appendJsonLine, readJsonLines } from '../store/durable.js';
import type { HomePaths } from '../store/paths.js';
import { EvalSetError, loadEvalCases, type EvalCase } from './cases.js';
import { allPassed, checkCase } from './checks.js';
import { judgeCase, judgeModelProblem } from './judge.js';
import { runPool } from './pool.js';
import type { Progress } from './progress.js';
import { buildReport, logLine, type EvalReport, type EvalsLogLine, type JudgeResult, type RunResult } from './report.js';
import { runCase } from './run-case.js';
import { createSandbox, removeSandbox } from './sandbox.js';

/**
 * `agentd eval <agent>`: every case of the agent's golden sets, `repeat`
 * times each, in throw-away homes, checked, judged, summed up, and appended
 * to state/<agent>/evals.jsonl, the one file of the real home it writes.
 */

export interface EvalOptions {
  /** The real home. */
  paths: HomePaths;
  agent: string;
  /** Pass rate (0..1) below which the eval fails. */
  threshold: number;
  /** Runs of each case, >= 1. */
  repeat: number;
  /** Case runs at a time, >= 1. */
  concurrency: number;
  /** Run write/irreversible tools for real instead of recording them. */
  liveTools: boolean;
  /** `provider/name` of the judge; a case's `judge_model` applies when absent. */
  judgeModel: string | null;
  /** Leave the throw-away homes in place (their path is in the report). */
  keep: boolean;
  log: Logger;
  interrupt: AbortSignal;
  progress?: (total: number) => Progress;
}

export type EvalOutcome = { kind: 'report'; report: EvalReport; kept: string | null } | { kind: 'interrupted' };

export async function evaluate(options: EvalOptions): Promise<EvalOutcome> {
  const { paths } = options;
  const config = await loadDaemonConfig(paths);
  const agent = await loadAgentDefinition(paths, config, options.agent);
  if (!agent) throw new NotFoundError(`agents/${options.agent} has no agent.yaml or agent.json`);
  const cases = await loadEvalCases(paths, agent);
  const judgeOf = judgeModels(cases, options.judgeModel, agent, config);
  const judgeGateway = [...judgeOf.values()].some((m) => m !== null) ? judgeGatewayFor(paths, config, options.log) : null;
  const previous = await lastLogLine(paths, agent.name);

  const jobs = cases.flatMap((evalCase, index) => Array.from({ length: options.repeat }, (_, r) => ({ evalCase, index, run: r + 1 })));
  const progress = options.progress?.(jobs.length);
  const sandbox = await createSandbox(paths, config, agent);
  let results: (RunResult | null)[];
  try {
    results = await runPool(jobs, options.concurrency, async (job) => {
      if (options.interrupt.aborted) return null;
      const log = options.log.child({ eval_case: job.evalCase.name, eval_run: job.run });
      const judgeModel = judgeOf.get(job.evalCase) ?? null;
      const result = await runOne(options, agent, sandbox, job, log, judgeModel, judgeGateway);
      progress?.tick(job.evalCase.name, result.passed);
      return result;
    });
  } finally {
    progress?.end();
    if (!options.keep) await removeSandbox(sandbox);
  }
  if (options.interrupt.aborted) return { kind: 'interrupted' };

  const models = [...new Set([...judgeOf.values()].filter((m): m is string => m !== null))];
  const report = buildReport({
    at: new Date(),
    agent: { name: agent.name, version: agent.version, hash: agent.hash },
    repeat: options.repeat,
    threshold: options.threshold,
    liveTools: options.liveTools,
    judgeModel: models.length > 0 ? models.join(', ') : null,
    cases: cases.map((evalCase, i) => ({ evalCase, results: results.flatMap((r, j) => (r && jobs[j]!.index === i ? [r] : [])) })),
    previous,
  });
  await appendJsonLine(paths.evalsLog(agent.name), logLine(report));
  return { kind: 'report', report, kept: options.keep ? sandbox.root : null };
}

async function runOne(
  options: EvalOptions,
  agent: AgentDefinition,
  sandbox: Awaited<ReturnType<typeof createSandbox>>,
  job: { evalCase: EvalCase; index: number; run: number },
  log: Logger,
  judgeModel: string | null,
  judgeGateway: ModelCaller | null,
): Promise<RunResult> {
  const ran = await runCase({ sandbox, real: options.paths, agent, evalCase: job.evalCase, label: `case-${job.index + 1}-run-${job.run}`, liveTools: options.liveTools, log, interrupt: options.interrupt });
  const { observed } = ran;
  const checks = checkCase(job.evalCase.expect, observed);
  let judge: JudgeResult | undefined;
  const rubric = job.evalCase.expect.judge;
  if (rubric !== undefined) {
    judge =
      judgeModel && judgeGateway
        ? await judgeCase(judgeGateway, judgeModel, agent.name, job.evalCase, rubric, observed, options.interrupt)
        : { skipped: 'no judge model (--judge-model or judge_model)' };
  }
  return {
    run: job.run,
    status: observed.status,
    passed: allPassed(checks),
    checks,
    ...(judge ? { judge } : {}),
    tools_called: observed.toolsCalled,
    recorded: ran.recorded,
    ...(observed.output !== undefined ? { output: observed.output } : {}),
    ...(observed.escalation ? { escalation: observed.escalation } : {}),
    ...(observed.error ? { error: observed.error } : {}),
    attempts: ran.runs,
    duration_ms: ran.durationMs,
    ...(options.keep ? { home: ran.home } : {}),
  };
}

/**
 * The judge model of each case: --judge-model, else the case's judge_model.
 * Every model named is checked first, so a wrong one costs no case run.
 */
function judgeModels(cases: EvalCase[], cli: string | null, agent: AgentDefinition, config: DaemonConfig): Map<EvalCase, string | null> {
  if (cli !== null) {
    const problem = judgeModelProblem(cli, agent, config);
    if (problem) throw new UsageError(`--judge-model: ${problem}`);
  }
  const problems: string[] = [];
  const models = new Map<EvalCase, string | null>();
  for (const c of cases) {
    if (c.judgeModel !== undefined) {
      const problem = judgeModelProblem(c.judgeModel, agent, config);
      if (problem) problems.push(`${c.source}: judge_model: ${problem}`);
    }
    models.set(c, c.expect.judge === undefined ? null : (cli ?? c.judgeModel ?? null));
  }
  if (problems.length > 0) throw new EvalSetError(problems);
  return models;
}

/** The judge goes through the real home's gateway, without its cache (which would write to state/). */
function judgeGatewayFor(paths: HomePaths, config: DaemonConfig, log: Logger): ModelCaller {
  return createGateway(paths, { ...config, cache: { ...config.cache, enabled: false } }, systemClock, Math.random, log);
}

/** The last line of state/<agent>/evals.jsonl, or null before the first eval. */
async function lastLogLine(paths: HomePaths, agent: string): Promise<EvalsLogLine | null> {
  const lines = await readJsonLines<EvalsLogLine>(paths.evalsLog(agent));
  return lines.filter((l) => l?.v === 1 && typeof l.pass_rate === 'number' && Array.isArray(l.cases)).at(-1) ?? null;
}
