import { LeaseLostError } from '../store/lease.js';
import { checkUsage, type Usage } from './usage-check.js';
import { parseAgentLine, type AgentMessage, type HandoffMessage, type ModelCallMessage, type ModelRequest, type StopReason, type ToolCallMessage, type UsageMessage } from '../protocol/messages.js';
import type { EndpointSession } from '../endpoint/server.js';
import type { EffectiveCall, JournalSpend } from '../store/journal.js';
import { compiledSchema } from '../schema/compiled.js';
import type { ErrorCategory } from '../errors.js';
import { formatErrors } from '../schema/validate.js';
import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import { formatDuration } from '../config/duration.js';
import { AgentProcess, stderrCause } from './agent-process.js';
import { budgetWarning, exhaustedBudget, pastWarning, remaining, type Spent } from './budget.js';
import { ReplayCursor } from './replay.js';
import { handleToolCall, type ToolCallHost } from './tool-call.js';
import { callModel, type ModelCallOutcome, type ModelCallRun } from './model-call.js';
import { PlainOutput, writePlainFiles } from './plain-agent.js';
import type { RunCheckpoint, RunHostInput, RunOutcome, RunReport } from './run-types.js';
import { RunTaint } from './taint.js';
import { CheckpointCoalescer } from './checkpoint-coalescer.js';
import type { Timer } from './clock.js';

/**
 * Hosts one agent process for one run: speaks the protocol, enforces the
 * budgets, journals every call, and returns what happened as data.
 */

export type { ModelCaller, RunHostInput, RunOutcome, RunReport, ToolCaller } from './run-types.js';

const DEFAULT_KILL_GRACE_MS = 2000;
/** Non-protocol stdout lines of one run that are logged; the rest are counted only. */
const NOISE_LOG_LINES = 100;

export async function hostRun(input: RunHostInput): Promise<RunReport> {
  return new RunHost(input).run();
}

class RunHost {
  private readonly startedAt: number;
  private readonly spent: Spent;
  private readonly runSpend: JournalSpend = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  private readonly models = new Set<string>();
  private readonly modelLatencyMs: number[] = [];
  private degraded = false;
  private readonly replay: ReplayCursor;
  private outcome: RunOutcome | null = null;
  private stopReason: StopReason | null = null;
  private handoff: HandoffMessage | null = null;
  private warned = false;
  private queue: Promise<void> = Promise.resolve();
  /** Checkpoints coalesced: the last one wins, one write in flight (docs/protocol.md, `checkpoint`). */
  private readonly checkpoints = new CheckpointCoalescer<RunCheckpoint>((checkpoint) => this.writeCheckpoint(checkpoint));
  private readonly callAbort = new AbortController();
  private process!: AgentProcess;
  private handoffArrived!: () => void;
  private readonly handoffPromise = new Promise<void>((resolve) => (this.handoffArrived = resolve));
  private runtimeTimer: Timer | null = null;
  /** One timer per run, refreshed by every message: fires after heartbeat_timeout of silence. */
  private heartbeatTimer: Timer | null = null;
  /** Calls received and not yet answered: the agent is waiting on us, not silent. */
  private awaitingDaemon = 0;
  /** Untrusted content checked for injected instructions; once flagged, side effects need approval. */
  private readonly taint: RunTaint;
  /** Non-protocol stdout lines seen; only the first NOISE_LOG_LINES are logged, so a flood cannot flood the log. */
  private noiseLines = 0;
  private readonly toolHost: ToolCallHost;
  /** The run as a model step sees it. */
  private readonly modelRun: ModelCallRun;
  /** A plain agent's stdout (protocol: none), which is its result. */
  private readonly plainOutput: PlainOutput | null;

  constructor(private readonly input: RunHostInput) {
    this.startedAt = input.clock.now();
    this.spent = { ...input.spentBefore };
    this.replay = new ReplayCursor(input.replay, input.checkpointSeq, input.resumedFromCheckpoint);
    this.plainOutput = input.agent.protocol === 'none' ? new PlainOutput() : null;
    this.modelRun = this.newModelRun();
    this.taint = new RunTaint(input.tainted ?? false, (found) => input.onSuspectedInjection?.(found) ?? Promise.resolve(), input.log);
    this.toolHost = this.toolCallHost();
  }

  async run(): Promise<RunReport> {
    const { input } = this;
    await this.taint.inspect(input.start.task.input, 'task input');
    // The goal and metadata reach the agent (and its model) as much as the input does.
    await this.taint.inspect(input.start.task.goal, 'task goal');
    if (input.start.task.metadata !== undefined) await this.taint.inspect(input.start.task.metadata, 'task metadata');
    const grant = input.endpoint?.open(this.endpointSession());
    const files = this.plainOutput ? await writePlainFiles(input.start.task, input.start.resume, input.start.context) : null;
    await this.start(grant?.env, files?.env);
    const onInterrupt = this.arm();
    const exit = await this.process.exited;
    grant?.close();
    await files?.remove().catch((err: unknown) => input.log.warn({ err }, 'could not remove the plain agent\'s task folder'));
    if (this.plainOutput && exit.code === 0 && !this.outcome && !this.stopReason) this.onPlainExit(this.plainOutput);
    this.runtimeTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = null; // a reply still in the queue must not re-arm it
    input.interrupt.removeEventListener('abort', onInterrupt);
    this.callAbort.abort();
    // Children the agent left behind die with the run.
    this.process.kill('SIGKILL');
    await this.queue.catch(() => undefined);
    await this.flushCheckpoints();
    await input.records.close();
    return this.report(this.outcome ?? this.outcomeOfExit(exit.code, exit.signal));
  }

  /** The agent's process (a warm one, or spawned now) has its start message, and the run is recorded as its. */
  private async start(runEnv: Record<string, string> | undefined, filesEnv: Record<string, string> | undefined): Promise<void> {
    const { input } = this;
    // Without a command, the built-in model agent runs over the same protocol.
    const command = input.agent.command ?? [process.execPath, BUILTIN_AGENT_SCRIPT];
    // A warm process (run/warm-pool.ts) is already started and waits for this start message. Not for
    // plain agents (their task comes as files and stdin); it has no run's endpoint variables (README "Warm agents").
    const warm = this.plainOutput ? null : (input.takeWarm?.() ?? null);
    warm?.adopt(input.log, (line: string) => this.onLine(line));
    this.process =
      warm ??
      new AgentProcess(
        { command, cwd: input.agent.dir, passEnv: input.agent.env, agentdEnv: { ...input.agentdEnv, ...filesEnv }, runEnv, confinement: input.agent.confinement },
        input.log,
        (line) => (this.plainOutput ? this.plainOutput.add(line) : this.onLine(line)),
      );
    if (this.plainOutput) this.process.input(JSON.stringify(input.start.task) + '\n');
    else this.process.send({ type: 'start', run_id: input.runId, ...input.start, budget: { remaining: this.remainingNow() } });
    // After the start message: a crash in between hands resolutions over again rather than never.
    try {
      await input.records.started(this.process.pid);
    } catch (err) {
      // The claim could not record this run: its process must not go on unrecorded (README.md, "The guarantee").
      this.process.kill('SIGKILL');
      await this.process.exited;
      throw err;
    }
  }

  /** The runtime limit, the heartbeat, the live counters and the interrupt; returns the interrupt's listener. */
  private arm(): () => void {
    const { input } = this;
    const runtimeLeft = input.limits.runtimeMs - input.spentBefore.runtimeMs;
    this.runtimeTimer = input.clock.setTimeout(() => this.beginStop('max_runtime'), Math.max(0, runtimeLeft));
    // A plain agent sends no messages between its calls: silence says nothing about it.
    if (input.agent.heartbeatTimeoutMs > 0 && !this.plainOutput) this.heartbeatTimer = input.clock.setTimeout(() => this.onSilence(), input.agent.heartbeatTimeoutMs);
    input.live?.add({
      agent: input.agent.name,
      taskId: input.taskId,
      runId: input.runId,
      startedAt: this.startedAt,
      progress: () => ({ run: { ...this.runSpend }, taskSteps: this.spent.steps, taskCostUsd: this.spent.costUsd, maxSteps: input.limits.steps, maxCostUsd: input.limits.costUsd }),
    });
    const onInterrupt = () => this.onInterrupt();
    if (input.interrupt.aborted) onInterrupt();
    else input.interrupt.addEventListener('abort', onInterrupt, { once: true });
    return onInterrupt;
  }

  /** What happened, as data, with the task's journal totals so finishing need not read the journal. */
  private report(outcome: RunOutcome): RunReport {
    const { input } = this;
    input.live?.end(input.runId, outcome.kind, this.runSpend, outcome.kind === 'failed' ? { category: outcome.category, message: outcome.message } : null);
    return {
      outcome,
      spend: this.runSpend,
      models: [...this.models],
      degraded: this.degraded,
      runtimeMs: input.clock.now() - this.startedAt,
      seq: this.replay.seq,
      modelLatencyMs: this.modelLatencyMs,
      outageModel: outcome.kind === 'failed' && this.unavailable && !this.outcome ? this.unavailable.model : null,
      journal: input.records.totals(),
    };
  }

  /** One coalesced checkpoint made durable; the runner fences it with the lease. */
  private async writeCheckpoint(checkpoint: RunCheckpoint): Promise<void> {
    const span = this.input.trace?.checkpoint(checkpoint.seq, checkpoint.hasContext);
    await this.input.records.checkpoint(checkpoint);
    span?.end();
  }

  /** The run ended: the last checkpoint is written before its outcome is settled. */
  private async flushCheckpoints(): Promise<void> {
    try {
      await this.checkpoints.flush();
    } catch (err) {
      if (err instanceof LeaseLostError) return; // the fence stopped the run; nothing more is written
      this.input.log.error({ err }, 'writing a checkpoint failed');
      if (!this.outcome && !this.stopReason) this.outcome = { kind: 'failed', category: 'crash', message: `daemon could not write a checkpoint: ${(err as Error).message}` };
    }
  }

  private outcomeOfExit(code: number | null, signal: NodeJS.Signals | null): RunOutcome {
    if (this.stopReason === 'shutdown') {
      const reason = this.input.interrupt.reason === 'lock_lost' ? 'lock_lost' : 'shutdown';
      return { kind: 'interrupted', reason, handoff: this.handoff };
    }
    if (this.stopReason) return { kind: 'limit', reason: this.stopReason, handoff: this.handoff };
    // An agent that gave up after the model was unavailable failed for that reason.
    if (this.unavailable) return { kind: 'failed', category: this.unavailable.category, message: this.unavailable.message };
    const stderrTail = this.process.stderrTail();
    const tail = stderrTail.length > 0 ? { stderrTail } : {};
    if (code === 0) return { kind: 'failed', category: 'crash', message: 'agent exited without a result', ...tail };
    const cause = stderrCause(stderrTail);
    return { kind: 'failed', category: 'crash', message: `agent exited with ${signal ? `signal ${signal}` : `code ${code}`}${cause ? `; stderr: ${cause.trim()}` : ''}`, ...tail };
  }

  private remainingNow() {
    return remaining(this.input.limits, this.spentNow());
  }

  private spentNow(): Spent {
    return { ...this.spent, runtimeMs: this.input.spentBefore.runtimeMs + (this.input.clock.now() - this.startedAt) };
  }

  private onLine(line: string): void {
    const parsed = parseAgentLine(line);
    if (parsed.kind === 'noise') {
      this.noiseLines++;
      if (this.noiseLines <= NOISE_LOG_LINES) this.input.log.info({ stream: 'stdout', line: line.slice(0, 2000) }, 'agent printed a non-protocol line');
      else if (this.noiseLines === NOISE_LOG_LINES + 1) this.input.log.warn({ logged: NOISE_LOG_LINES }, 'agent prints many non-protocol lines; further ones are dropped without logging');
      return;
    }
    this.heartbeatTimer?.refresh(); // any protocol message, even a malformed one, shows the agent is alive
    if (parsed.kind === 'invalid') {
      this.input.log.warn({ problem: parsed.reason }, 'agent sent an invalid message');
      if (parsed.id) this.process.send({ type: 'error', id: parsed.id, code: 'bad_message', message: parsed.reason });
      return;
    }
    const call = parsed.message.type === 'model' || parsed.message.type === 'tool';
    const message = parsed.message;
    // A checkpoint only replaces the pending one; it neither fences nor waits (its write does both).
    if (message.type === 'checkpoint') void this.enqueue(false, () => this.handle(message), false);
    else void this.enqueue(call, () => this.handle(message));
  }

  /**
   * One message at a time, in order, whether it came on stdout or over the
   * run's endpoint: the journal's seq is the order calls arrived in. A call is
   * answered by us: until the reply is sent, the agent waits and is not silent.
   */
  private enqueue<T>(call: boolean, task: () => Promise<T>, ordered = true): Promise<T> {
    if (call) this.awaitingDaemon++;
    // Every message may write (journal, checkpoint, result): none is acted on once the lease is lost.
    // What comes after a checkpoint is acted on once that checkpoint is durable (or superseded).
    const done = this.queue.then(async () => {
      if (!ordered) return task();
      await this.checkpoints.flush();
      await this.input.fence?.();
      return task();
    });
    this.queue = done
      .then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof LeaseLostError) return; // the fence stopped the run (interrupt 'lock_lost'); nothing more is written
          this.input.log.error({ err }, 'handling an agent message failed');
          this.finish({ kind: 'failed', category: 'crash', message: `daemon could not handle a message: ${(err as Error).message}` });
        },
      )
      .finally(() => {
        if (!call) return;
        this.awaitingDaemon--;
        this.heartbeatTimer?.refresh(); // the silence starts when the reply was sent
      });
    return done;
  }

  /** What the run's endpoint may do for this run (README "Bring your own agent"). */
  private endpointSession(): EndpointSession {
    return {
      agent: this.input.agent,
      chat: (request, model, fallbackModels) => {
        this.heartbeatTimer?.refresh();
        return this.enqueue(true, () => new Promise<ModelCallOutcome>((resolve, reject) => this.modelStep(request, model, fallbackModels, resolve).catch(reject)));
      },
      post: (message) => {
        this.heartbeatTimer?.refresh();
        return this.enqueue(false, () => this.handle(message));
      },
    };
  }

  /** A plain agent exited 0: its stdout is the result. */
  private onPlainExit(output: PlainOutput): void {
    if (output.overflowed) {
      this.outcome = { kind: 'failed', category: 'invalid_output', message: 'the agent printed more than 16 MiB on stdout' };
      return;
    }
    this.onResult(output.result());
  }

  /**
   * heartbeat_timeout passed since the agent's last message while no call of
   * its was waiting on us: it is hung. Fail the run as a timeout and kill its
   * process group. (A refresh after the timer fired re-arms the same timer.)
   */
  private onSilence(): void {
    if (this.awaitingDaemon > 0 || this.stopReason || this.outcome || !this.process.alive) return;
    const silenceMs = this.input.agent.heartbeatTimeoutMs;
    this.input.log.warn({ heartbeat_timeout_ms: silenceMs }, 'agent silent past heartbeat_timeout, killing it');
    this.outcome = { kind: 'failed', category: 'timeout', message: `agent sent no protocol message for ${formatDuration(silenceMs)} (heartbeat_timeout)` };
    this.callAbort.abort();
    void this.killAfter(0);
  }

  private async handle(message: AgentMessage): Promise<void> {
    switch (message.type) {
      case 'model':
        return this.onModel(message);
      case 'tool':
        return this.onTool(message);
      case 'checkpoint':
        this.checkpoints.submit({ state: message.state, context: message.context, hasContext: Object.hasOwn(message, 'context'), seq: this.replay.seq, runSpend: { ...this.runSpend } });
        return;
      case 'uncertain':
        this.finish({ kind: 'escalated', message });
        return;
      case 'handoff':
        this.handoff = message;
        this.handoffArrived();
        return;
      case 'usage':
        return this.onUsage(message);
      case 'log':
        this.input.log[message.level ?? 'info']({ agent_msg: message.msg }, 'agent log');
        return;
      case 'result':
        return this.onResult(message.output);
    }
  }

  /** The run's outcome is known: let the process exit on its own, then make sure it does. */
  private finish(outcome: RunOutcome): void {
    if (this.outcome || this.stopReason) return;
    this.outcome = outcome;
    this.process.closeStdin();
    void this.killAfter(this.input.agent.stopGraceMs);
  }

  private async killAfter(graceMs: number): Promise<void> {
    const exited = await raceTimeout(this.process.exited, graceMs);
    if (exited) return;
    this.process.kill('SIGTERM');
    if (await raceTimeout(this.process.exited, this.input.killGraceMs ?? DEFAULT_KILL_GRACE_MS)) return;
    this.process.kill('SIGKILL');
  }

  /** Refuse further calls, send stop, wait the grace for a handoff, then SIGTERM, then SIGKILL. */
  private beginStop(reason: StopReason): void {
    if (this.stopReason || this.outcome) return;
    this.stopReason = reason;
    this.input.log.info({ reason }, 'stopping agent');
    this.callAbort.abort();
    const graceMs = this.input.agent.stopGraceMs;
    // A plain agent learns of the stop from its refused model call (budget_exhausted).
    if (!this.plainOutput) this.process.send({ type: 'stop', reason, grace_ms: graceMs });
    void (async () => {
      const gotHandoff = await raceTimeout(Promise.race([this.handoffPromise, this.process.exited]), graceMs);
      if (gotHandoff && this.handoff) await raceTimeout(this.process.exited, Math.min(graceMs, 1000));
      if (!this.process.alive) return;
      this.process.kill('SIGTERM');
      if (await raceTimeout(this.process.exited, this.input.killGraceMs ?? DEFAULT_KILL_GRACE_MS)) return;
      this.process.kill('SIGKILL');
    })();
  }

  private onInterrupt(): void {
    if (this.input.interrupt.reason === 'lock_lost') {
      // Another daemon may already own this agent: stop at once, write nothing more.
      this.stopReason = 'shutdown';
      this.process.kill('SIGKILL');
      return;
    }
    if (this.outcome) return; // already finishing on its own
    this.beginStop('shutdown');
  }

  private refuse(id: string, reason: StopReason): void {
    this.process.send({ type: 'error', id, code: 'budget_exhausted', message: `budget exhausted: ${reason}` });
    this.beginStop(reason);
  }

  /** Answer from the journal when the n-th call matches what was recorded; otherwise supersede the rest. */
  private async replayed(seq: number, kind: 'model' | 'tool', hash: string): Promise<EffectiveCall | null> {
    const found = this.replay.match(seq, kind, hash);
    if (found.kind === 'recorded') return found.call;
    if (found.kind === 'diverged') {
      await this.input.records.journal({ v: 1, kind: 'supersede', run_id: this.input.runId, from_seq: seq, at: this.iso() });
    }
    return null;
  }

  private iso(): string {
    return new Date(this.input.clock.now()).toISOString();
  }

  private async onModel(message: ModelCallMessage): Promise<void> {
    const { agent } = this.input;
    await this.modelStep(message.request, agent.model ?? '', agent.fallbackModels, (outcome) => {
      const id = message.id;
      switch (outcome.kind) {
        case 'answered':
          return this.process.send({ type: 'model_result', id, ok: true, response: outcome.reply.response, usage: outcome.usage, model: outcome.reply.model, replayed: outcome.replayed });
        case 'refused':
          return this.process.send({ type: 'error', id, code: 'budget_exhausted', message: `budget exhausted: ${outcome.reason}` });
        case 'stopping':
          return this.process.send({ type: 'error', id, code: 'stopping', message: 'the run is stopping' });
        case 'failed':
          return this.process.send({ type: 'error', id, code: outcome.code, message: outcome.message });
      }
    });
  }

  /** One model step (run/model-call.ts): `deliver` answers the agent, then the run reacts to the outcome. */
  private async modelStep(request: ModelRequest, model: string, fallbackModels: string[], deliver: (outcome: ModelCallOutcome) => void): Promise<void> {
    const outcome = await callModel(this.modelRun, request, model, fallbackModels);
    deliver(outcome);
    if (outcome.kind === 'refused') this.beginStop(outcome.reason);
    else if (outcome.kind === 'answered' && !outcome.replayed) this.afterSpend();
    else if (outcome.kind === 'failed' && outcome.code === 'provider_unavailable') {
      const critical = this.input.agent.critical || this.input.start.task.critical === true;
      if (critical) this.finish({ kind: 'provider_unavailable', model, message: outcome.message });
      else this.unavailable = { category: outcome.category, message: outcome.message, model };
    }
    // Refused for good (auth, bad request): an agent that then gives up failed for that reason, not a crash.
    else if (outcome.kind === 'failed') this.unavailable = { category: outcome.category, message: outcome.message, model: null };
  }

  private newModelRun(): ModelCallRun {
    return {
      input: this.input,
      replay: this.replay,
      signal: this.callAbort.signal,
      stopping: () => this.stopReason !== null || this.outcome !== null,
      spentNow: () => this.spentNow(),
      countStep: () => {
        this.spent.steps++;
        this.runSpend.steps++;
      },
      charge: (result, latencyMs) => {
        if (latencyMs !== null) this.modelLatencyMs.push(latencyMs);
        this.addUsage(this.checkedUsage(result.usage, `model reply of ${result.model}`));
        this.models.add(result.model);
        if (result.degraded) this.degraded = true;
      },
    };
  }

  /** Set when the model was unavailable: a failed run is then that, not a crash. */
  private unavailable: { category: ErrorCategory; message: string; model: string | null } | null = null;

  private async journalFailed(seq: number, kind: 'model' | 'tool', name: string, hash: string, error: { code: string; message: string; category?: string }): Promise<void> {
    await this.input.records.journal({ v: 1, seq, run_id: this.input.runId, kind, name, request_hash: hash, phase: 'failed', error, at: this.iso() });
  }

  private onTool(message: ToolCallMessage): Promise<void> {
    return handleToolCall(this.toolHost, message);
  }

  /** The run as a tool call sees it (run/tool-call.ts). */
  private toolCallHost(): ToolCallHost {
    return {
      input: this.input,
      replay: this.replay,
      taint: this.taint,
      ending: () => Boolean(this.stopReason || this.outcome),
      send: (message) => this.process.send(message),
      finish: (outcome) => this.finish(outcome),
      refuse: (id, reason) => this.refuse(id, reason),
      replayed: (seq, kind, hash) => this.replayed(seq, kind, hash),
      journalFailed: (seq, kind, name, hash, error) => this.journalFailed(seq, kind, name, hash, error),
      spentNow: () => this.spentNow(),
      countToolCall: () => {
        this.spent.toolCalls++;
        this.runSpend.toolCalls++;
      },
      afterSpend: () => this.afterSpend(),
      iso: () => this.iso(),
      signal: this.callAbort.signal,
    };
  }

  private async onUsage(message: UsageMessage): Promise<void> {
    const usage = this.checkedUsage({ input_tokens: message.input_tokens, output_tokens: message.output_tokens, cost_usd: message.cost_usd ?? 0 }, 'usage message');
    await this.input.records.journal({ v: 1, seq: 0, run_id: this.input.runId, kind: 'usage', name: 'agent', request_hash: '', phase: 'completed', usage, at: this.iso() });
    this.addUsage(usage);
    this.afterSpend();
    const exhausted = exhaustedBudget(this.input.limits, this.spentNow());
    if (exhausted) this.beginStop(exhausted);
  }

  /** Non-finite or absurd figures count as the budget's maximum (run/usage-check.ts), logged and traced. */
  private checkedUsage<U extends Usage>(usage: U, source: string): U {
    const check = checkUsage(usage, this.input.limits);
    if (check.ok) return usage;
    this.input.log.warn({ source, problems: check.problems, reported: usage, counted: check.usage }, 'absurd usage counted as the budget maximum');
    this.input.trace?.emit('usage', 'usage refused', { 'agentd.usage.source': source, 'agentd.usage.problems': check.problems }, { status: 'error' });
    return { ...usage, ...check.usage };
  }

  private addUsage(usage: { input_tokens: number; output_tokens: number; cost_usd: number }): void {
    const tokens = usage.input_tokens + usage.output_tokens;
    this.spent.tokens += tokens;
    this.spent.costUsd += usage.cost_usd;
    this.spent.dailyCostUsd += usage.cost_usd;
    this.runSpend.inputTokens += usage.input_tokens;
    this.runSpend.outputTokens += usage.output_tokens;
    this.runSpend.costUsd += usage.cost_usd;
  }

  private afterSpend(): void {
    this.input.onSpend?.(this.spentNow());
    if (this.warned) return;
    const spent = this.spentNow();
    if (!pastWarning(this.input.limits, spent)) return;
    this.warned = true;
    this.process.send(budgetWarning(this.input.limits, spent));
  }

  private onResult(output: unknown): void {
    const schema = this.input.agent.outputSchema;
    if (schema) {
      const validate = compiledSchema(schema);
      if (!validate(output)) {
        const problems = formatErrors(validate.errors ?? []).join('; ');
        this.finish({ kind: 'failed', category: 'invalid_output', message: `output does not match output_schema: ${problems}` });
        return;
      }
    }
    this.finish({ kind: 'done', output });
  }
}

/** True when `promise` settled within `ms`. */
async function raceTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
