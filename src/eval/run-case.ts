import type { Logger } from 'pino';
import { loadAgentDefinition } from '../config/agent-definition.js';
import { loadDaemonConfig } from '../config/daemon-config.js';
import type { AgentDefinition } from '../config/types.js';
import { errorMessage } from '../errors.js';
import { createGateway, createRunnerDeps } from '../run/deps.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { claimAndRun, type ClaimResult } from '../run/runner.js';
import { RunEndpoint } from '../endpoint/server.js';
import { readJsonLines } from '../store/durable.js';
import { writeCurrentTask } from '../store/inbox-writer.js';
import type { CallRecord, JournalRecord } from '../store/journal.js';
import { readOutbox } from '../store/outbox.js';
import type { HomePaths } from '../store/paths.js';
import { readDeadLetter } from '../store/dead-letters.js';
import { readDone } from '../store/done-records.js';
import { ToolRunner } from '../tools/tool-runner.js';
import type { EvalCase } from './cases.js';
import type { Observed } from './checks.js';
import { evalDefinition, RecordingToolCaller, type RecordedCall } from './recorder.js';
import { createCaseHome, type EvalSandbox } from './sandbox.js';

/**
 * One run of one case: a fresh throw-away home, the case's task as its
 * current task, claims until it is done, escalated or dead-lettered (retries
 * included, as `agentd run` does), then what the files say happened.
 */

export interface CaseRunOptions {
  sandbox: EvalSandbox;
  /** The real home: read from, never written. */
  real: HomePaths;
  agent: AgentDefinition;
  evalCase: EvalCase;
  /** Names the case home: `<case index>-<repeat>`. */
  label: string;
  liveTools: boolean;
  log: Logger;
  interrupt: AbortSignal;
}

export interface CaseRun {
  observed: Observed;
  /** Side-effecting calls answered by a recorder instead of running. */
  recorded: RecordedCall[];
  /** Runs the task took (retries). */
  runs: number;
  durationMs: number;
  /** The case home, for --keep. */
  home: string;
}

/** Outbox kinds that are a budget running out rather than the agent (or the run) asking a person. */
const LIMIT_KINDS = new Set(['limit']);

export async function runCase(options: CaseRunOptions): Promise<CaseRun> {
  const started = Date.now();
  const home = await createCaseHome(options.sandbox, options.real, options.agent, options.label);
  const liveTools = new ToolRunner(home.root, options.log.child({ component: 'tools' }));
  const recorder = new RecordingToolCaller(liveTools);
  const task = { ...options.evalCase.task, created_at: options.evalCase.task.created_at ?? new Date().toISOString() };
  let runs = 0;
  let observed: Observed;
  // Agents on an ordinary model SDK, and plain agents, call the model at the run's endpoint.
  const endpoint = new RunEndpoint(options.log.child({ component: 'endpoint' }));
  try {
    await endpoint.listen();
    await writeCurrentTask(home, options.agent.name, task);
    const config = await loadDaemonConfig(home);
    const loaded = await loadAgentDefinition(home, config, options.agent.name);
    if (!loaded) throw new Error(`the case home has no definition for ${options.agent.name}`);
    const definition = evalDefinition(loaded, options.liveTools);
    const clock = skippingClock();
    const deps = {
      ...createRunnerDeps({
        paths: home,
        config,
        log: options.log,
        clock,
        random: Math.random,
        // Model retries wait in real time: a provider's Retry-After is honoured in evals too.
        gateway: createGateway(home, config, systemClock, Math.random, options.log),
        interrupt: options.interrupt,
        endpoint,
      }),
      tools: options.liveTools ? liveTools : recorder,
    };
    runs = await claimUntilSettled(deps, definition, task.id, home, clock, options.interrupt);
    observed = await observe(home, definition, task.id);
    if (options.interrupt.aborted) observed = { ...observed, status: 'error', error: { category: 'cancelled', message: 'the eval was interrupted' } };
  } catch (err) {
    options.log.error({ err }, 'eval case could not be run');
    observed = { status: 'error', error: { category: 'eval', message: errorMessage(err) }, toolsCalled: [] };
  } finally {
    await endpoint.close();
  }
  return { observed, recorded: recorder.calls, runs, durationMs: Date.now() - started, home: home.root };
}

/**
 * Real time, except that the wait before a failed task's next attempt is
 * skipped: the clock is moved past it instead, so retries happen at once and
 * every check of the task's timestamps still sees the time it would be.
 */
interface SkippingClock extends Clock {
  skipTo(ms: number): void;
}

function skippingClock(): SkippingClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    sleep: systemClock.sleep,
    setTimeout: systemClock.setTimeout,
    setInterval: systemClock.setInterval,
    skipTo(ms) {
      offset += Math.max(0, ms - (Date.now() + offset));
    },
  };
}

/** Claims until the task is done, dead-lettered or waits for a person; returns how many runs it took. */
async function claimUntilSettled(
  deps: Parameters<typeof claimAndRun>[0],
  agent: AgentDefinition,
  taskId: string,
  home: HomePaths,
  clock: SkippingClock,
  interrupt: AbortSignal,
): Promise<number> {
  let runs = 0;
  // Bounded by max_attempts: each pass is a run, a retry wait, or the end.
  for (;;) {
    const result: ClaimResult = await claimAndRun(deps, agent, 'cli');
    if (result.kind === 'ran') runs++;
    if (interrupt.aborted) return runs;
    if (result.kind === 'waiting') {
      clock.skipTo(result.untilMs);
      continue;
    }
    const failedWithAttemptsLeft = result.kind === 'ran' && result.outcome.kind === 'failed' && !(await readDeadLetter(home, agent.name, taskId));
    if (!failedWithAttemptsLeft) return runs;
  }
}

/** What the case home's files say: done record, dead letter, or the outbox item the task waits on; the journal's tool calls. */
async function observe(home: HomePaths, agent: AgentDefinition, taskId: string): Promise<Observed> {
  const toolsCalled = await toolCalls(home, agent.name, taskId);
  const done = await readDone(home, agent.name, taskId);
  if (done) return done.status === 'done' ? { status: 'done', output: done.output, toolsCalled } : { status: 'cancelled', toolsCalled };
  const dead = await readDeadLetter(home, agent.name, taskId);
  if (dead) return { status: 'dead_letter', error: dead.error, toolsCalled };
  const item = (await readOutbox(home, agent.name)).items.find((i) => i.task_id === taskId && i.status === 'open');
  if (item) {
    // A call held for approval (--live-tools) was made by the agent: it counts as called.
    const held = item.kind === 'approval' ? (item.details as { tool?: unknown } | undefined)?.tool : undefined;
    return {
      status: LIMIT_KINDS.has(item.kind) ? 'limit' : 'escalated',
      escalation: { kind: item.kind, reason: item.reason, ...(item.question !== undefined ? { question: item.question } : {}), ...(item.blockers ? { blockers: item.blockers } : {}) },
      toolsCalled: typeof held === 'string' ? [...toolsCalled, held] : toolsCalled,
    };
  }
  return { status: 'error', error: { category: 'eval', message: 'the task neither finished nor waits for a person' }, toolsCalled };
}

/** Tool names in the order the task called them, once per call (a replayed or retried call is the same call). */
async function toolCalls(home: HomePaths, agent: string, taskId: string): Promise<string[]> {
  const records = await readJsonLines<JournalRecord>(home.journal(agent, taskId));
  const seen = new Set<string>();
  const names: string[] = [];
  for (const record of records) {
    if (record.kind !== 'tool') continue;
    const call = record as CallRecord;
    const key = `${call.seq}:${call.request_hash}`;
    if (seen.has(key)) continue;
    seen.add(key);
    names.push(call.name);
  }
  return names;
}
