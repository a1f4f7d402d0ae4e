import { parseAgentLine, type AgentMessage, type HandoffMessage, type ModelCallMessage, type StopReason, type ToolCallMessage, type UsageMessage } from '../protocol/messages.js';
import { ModelCallError, type GatewayResult } from '../model/types.js';
import { appendJournal, requestHash, type EffectiveCall, type JournalSpend } from '../store/journal.js';
import { compiledSchema } from '../schema/compiled.js';
import { formatErrors } from '../schema/validate.js';
import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import { formatDuration } from '../config/duration.js';
import { AgentProcess, stderrCause } from './agent-process.js';
import { decideModelCall, estimatePromptTokens, exhaustedBudget, limitsView, pastWarning, remaining, usedView, type Spent } from './budget.js';
import { ReplayCursor } from './replay.js';
import { handleToolCall, type ToolCallHost } from './tool-call.js';
import type { RunHostInput, RunOutcome, RunReport } from './run-types.js';
import { RunTaint } from './taint.js';

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
  private readonly callAbort = new AbortController();
  private process!: AgentProcess;
  private handoffArrived!: () => void;
  private readonly handoffPromise = new Promise<void>((resolve) => (this.handoffArrived = resolve));
  private runtimeTimer: NodeJS.Timeout | null = null;
  /** One timer per run, refreshed by every message: fires after heartbeat_timeout of silence. */
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** Calls received and not yet answered: the agent is waiting on us, not silent. */
  private awaitingDaemon = 0;
  /** Untrusted content checked for injected instructions; once flagged, side effects need approval. */
  private readonly taint: RunTaint;
  /** Non-protocol stdout lines seen; only the first NOISE_LOG_LINES are logged, so a flood cannot flood the log. */
  private noiseLines = 0;
  private readonly toolHost: ToolCallHost;

  constructor(private readonly input: RunHostInput) {
    this.startedAt = input.clock.now();
    this.spent = { ...input.spentBefore };
    this.replay = new ReplayCursor(input.replay, input.checkpointSeq, input.resumedFromCheckpoint);
    this.taint = new RunTaint(input.tainted ?? false, (found) => input.onSuspectedInjection?.(found) ?? Promise.resolve(), input.log);
    this.toolHost = this.toolCallHost();
  }

  async run(): Promise<RunReport> {
    const { input } = this;
    // Without a command, the built-in model agent runs over the same protocol.
    const command = input.agent.command ?? [process.execPath, BUILTIN_AGENT_SCRIPT];
    await this.taint.inspect(input.start.task.input, 'task input');
    this.process = new AgentProcess(
      { command, cwd: input.agent.dir, passEnv: input.agent.env, agentdEnv: input.agentdEnv, confinement: input.agent.confinement },
      input.log,
      (line) => this.onLine(line),
    );
    this.process.send({ type: 'start', run_id: input.runId, ...input.start, budget: { remaining: this.remainingNow() } });
    // After the start message: a crash in between hands resolutions over again rather than never.
    await input.onSpawn(this.process.pid);

    const runtimeLeft = input.limits.runtimeMs - input.spentBefore.runtimeMs;
    this.runtimeTimer = setTimeout(() => this.beginStop('max_runtime'), Math.max(0, runtimeLeft));
    if (input.agent.heartbeatTimeoutMs > 0) this.heartbeatTimer = setTimeout(() => this.onSilence(), input.agent.heartbeatTimeoutMs);
    input.live?.add({
      agent: input.agent.name,
      taskId: input.taskId,
      runId: input.runId,
      startedAt: this.startedAt,
      progress: () => ({
        run: { ...this.runSpend },
        taskSteps: this.spent.steps,
        taskCostUsd: this.spent.costUsd,
        maxSteps: input.limits.steps,
        maxCostUsd: input.limits.costUsd,
      }),
    });
    const onInterrupt = () => this.onInterrupt();
    if (input.interrupt.aborted) onInterrupt();
    else input.interrupt.addEventListener('abort', onInterrupt, { once: true });

    const exit = await this.process.exited;
    clearTimeout(this.runtimeTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null; // a reply still in the queue must not re-arm it
    input.interrupt.removeEventListener('abort', onInterrupt);
    this.callAbort.abort();
    // Children the agent left behind die with the run.
    this.process.kill('SIGKILL');
    await this.queue.catch(() => undefined);

    const outcome = this.outcome ?? this.outcomeOfExit(exit.code, exit.signal);
    input.live?.end(input.runId, outcome.kind, this.runSpend, outcome.kind === 'failed' ? { category: outcome.category, message: outcome.message } : null);
    return {
      outcome,
      spend: this.runSpend,
      models: [...this.models],
      degraded: this.degraded,
      runtimeMs: input.clock.now() - this.startedAt,
      seq: this.replay.seq,
      modelLatencyMs: this.modelLatencyMs,
    };
  }

  private outcomeOfExit(code: number | null, signal: NodeJS.Signals | null): RunOutcome {
    if (this.stopReason === 'shutdown') {
      const reason = this.input.interrupt.reason === 'lock_lost' ? 'lock_lost' : 'shutdown';
      return { kind: 'interrupted', reason, handoff: this.handoff };
    }
    if (this.stopReason) return { kind: 'limit', reason: this.stopReason, handoff: this.handoff };
    // An agent that gave up after the model was unavailable failed for that reason.
    if (this.unavailable) return { kind: 'failed', ...this.unavailable };
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
    // A call is answered by us: until the reply is sent, the agent waits and is not silent.
    const call = parsed.message.type === 'model' || parsed.message.type === 'tool';
    if (call) this.awaitingDaemon++;
    // One message at a time, in order: the journal's seq is the order calls arrived in.
    this.queue = this.queue
      .then(() => this.handle(parsed.message))
      .catch((err: unknown) => {
        this.input.log.error({ err }, 'handling an agent message failed');
        this.finish({ kind: 'failed', category: 'crash', message: `daemon could not handle a message: ${(err as Error).message}` });
      })
      .finally(() => {
        if (!call) return;
        this.awaitingDaemon--;
        this.heartbeatTimer?.refresh(); // the silence starts when the reply was sent
      });
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
      case 'checkpoint': {
        const span = this.input.trace?.checkpoint(this.replay.seq, Object.hasOwn(message, 'context'));
        await this.input.onCheckpoint(message.state, message.context, Object.hasOwn(message, 'context'), this.replay.seq);
        span?.end();
        return;
      }
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
    this.process.send({ type: 'stop', reason, grace_ms: graceMs });
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
      await appendJournal(this.input.journalFile, { v: 1, kind: 'supersede', run_id: this.input.runId, from_seq: seq, at: this.iso() });
    }
    return null;
  }

  private iso(): string {
    return new Date(this.input.clock.now()).toISOString();
  }

  private async onModel(message: ModelCallMessage): Promise<void> {
    const { agent } = this.input;
    if (this.stopReason || this.outcome) {
      this.process.send({ type: 'error', id: message.id, code: 'stopping', message: 'the run is stopping' });
      return;
    }
    const model = agent.model ?? '';
    const hash = requestHash('model', model, message.request);
    const seq = this.replay.next('model', hash);
    const span = this.input.trace?.model(seq, model, message.request);
    const recorded = await this.replayed(seq, 'model', hash);
    if (recorded) {
      const result = recorded.result as { response: GatewayResult['response']; model: string };
      span?.replayed(result.model, result.response);
      this.process.send({
        type: 'model_result',
        id: message.id,
        ok: true,
        response: result.response,
        usage: { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
        model: result.model,
        replayed: true,
      });
      return;
    }
    if (!agent.model) {
      span?.failed(new Error('the agent definition names no model'));
      await this.journalFailed(seq, 'model', model, hash, { code: 'provider_error', message: 'the agent definition names no model' });
      this.process.send({ type: 'error', id: message.id, code: 'provider_error', message: 'the agent definition names no model' });
      return;
    }
    const decision = decideModelCall(
      this.input.limits,
      this.spentNow(),
      estimatePromptTokens(message.request),
      message.request.max_tokens,
      this.input.priceOf(model),
    );
    if (!decision.ok) return this.refuse(message.id, decision.reason);
    const request = { ...message.request, ...(decision.maxTokens !== undefined ? { max_tokens: decision.maxTokens } : {}) };

    await appendJournal(this.input.journalFile, { v: 1, seq, run_id: this.input.runId, kind: 'model', name: model, request_hash: hash, phase: 'started', at: this.iso() }, false);
    this.spent.steps++;
    this.runSpend.steps++;
    span?.sent(request);
    let result: GatewayResult;
    const calledAt = this.input.clock.now();
    try {
      result = await this.input.models.call({
        agent: agent.name,
        model,
        fallbackModels: agent.fallbackModels,
        critical: agent.critical || this.input.start.task.critical === true,
        request,
        signal: this.callAbort.signal,
      });
    } catch (err) {
      span?.set({ 'agentd.circuit_state': this.input.models.circuitState?.(model) });
      span?.failed(err);
      return this.onModelError(message.id, seq, model, hash, err);
    }
    if (!result.cached) this.modelLatencyMs.push(this.input.clock.now() - calledAt);
    span?.set({ 'agentd.circuit_state': this.input.models.circuitState?.(model) });
    span?.completed(result);
    const usage = result.usage;
    await appendJournal(this.input.journalFile, {
      v: 1,
      seq,
      run_id: this.input.runId,
      kind: 'model',
      name: model,
      request_hash: hash,
      phase: 'completed',
      result: { response: result.response, model: result.model },
      usage,
      at: this.iso(),
    });
    this.addUsage(usage);
    this.models.add(result.model);
    if (result.degraded) this.degraded = true;
    this.process.send({ type: 'model_result', id: message.id, ok: true, response: result.response, usage, model: result.model, replayed: false });
    this.afterSpend();
  }

  private async onModelError(id: string, seq: number, model: string, hash: string, err: unknown): Promise<void> {
    const failure = err instanceof ModelCallError ? err.failure : null;
    const text = err instanceof Error ? err.message : String(err);
    await this.journalFailed(seq, 'model', model, hash, { code: failure?.category ?? 'provider_error', message: text, category: failure?.category });
    if (this.stopReason) {
      this.process.send({ type: 'error', id, code: 'stopping', message: 'the run is stopping' });
      return;
    }
    if (failure?.availability) {
      this.process.send({ type: 'error', id, code: 'provider_unavailable', message: text });
      const critical = this.input.agent.critical || this.input.start.task.critical === true;
      if (critical) this.finish({ kind: 'provider_unavailable', model, message: text });
      else this.unavailable = { category: failure.category, message: text };
      return;
    }
    this.process.send({ type: 'error', id, code: 'provider_error', message: text });
  }

  /** Set when the model was unavailable: a failed run is then that, not a crash. */
  private unavailable: { category: string; message: string } | null = null;

  private async journalFailed(seq: number, kind: 'model' | 'tool', name: string, hash: string, error: { code: string; message: string; category?: string }): Promise<void> {
    await appendJournal(this.input.journalFile, { v: 1, seq, run_id: this.input.runId, kind, name, request_hash: hash, phase: 'failed', error, at: this.iso() });
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
    };
  }

  private async onUsage(message: UsageMessage): Promise<void> {
    const usage = { input_tokens: message.input_tokens, output_tokens: message.output_tokens, cost_usd: message.cost_usd ?? 0 };
    await appendJournal(this.input.journalFile, { v: 1, seq: 0, run_id: this.input.runId, kind: 'usage', name: 'agent', request_hash: '', phase: 'completed', usage, at: this.iso() });
    this.addUsage(usage);
    this.afterSpend();
    const exhausted = exhaustedBudget(this.input.limits, this.spentNow());
    if (exhausted) this.beginStop(exhausted);
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
    this.process.send({ type: 'budget_warning', used: usedView(spent), limits: limitsView(this.input.limits) });
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
