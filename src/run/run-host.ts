import type { ValidateFunction } from 'ajv';
import { parseAgentLine, type AgentMessage, type HandoffMessage, type ModelCallMessage, type StopReason, type ToolCallMessage, type UsageMessage } from '../protocol/messages.js';
import { ModelCallError, type GatewayResult } from '../model/types.js';
import { closeHeld } from '../store/held-append.js';
import { appendJournal, requestHash, type EffectiveCall, type JournalSpend } from '../store/journal.js';
import { ajv, formatErrors } from '../schema/validate.js';
import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import { idempotencyKey } from '../tools/idempotency.js';
import { formatDuration } from '../config/duration.js';
import { approvalCause, approvalStanding } from '../tools/approval.js';
import { AgentProcess } from './agent-process.js';
import { decideModelCall, decideToolCall, estimatePromptTokens, exhaustedBudget, limitsView, pastWarning, remaining, usedView, type Spent } from './budget.js';
import { ReplayCursor } from './replay.js';
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

  constructor(private readonly input: RunHostInput) {
    this.startedAt = input.clock.now();
    this.spent = { ...input.spentBefore };
    this.replay = new ReplayCursor(input.replay, input.checkpointSeq, input.resumedFromCheckpoint);
    this.taint = new RunTaint(input.tainted ?? false, (found) => input.onSuspectedInjection?.(found) ?? Promise.resolve(), input.log);
  }

  async run(): Promise<RunReport> {
    const { input } = this;
    // Without a command, the built-in model agent runs over the same protocol.
    const command = input.agent.command ?? [process.execPath, BUILTIN_AGENT_SCRIPT];
    await this.taint.inspect(input.start.task.input, 'task input');
    const warm = input.takeWarm?.() ?? null;
    warm?.adopt(input.log, (line: string) => this.onLine(line)); // started ahead, waiting for this start message
    this.process =
      warm ?? new AgentProcess({ command, cwd: input.agent.dir, passEnv: input.agent.env, agentdEnv: input.agentdEnv }, input.log, (line) => this.onLine(line));
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
    await closeHeld(this.input.journalFile);

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
    if (code === 0) return { kind: 'failed', category: 'crash', message: 'agent exited without a result' };
    return { kind: 'failed', category: 'crash', message: `agent exited with ${signal ? `signal ${signal}` : `code ${code}`}` };
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

  private async onTool(message: ToolCallMessage): Promise<void> {
    if (this.stopReason || this.outcome) {
      this.process.send({ type: 'error', id: message.id, code: 'stopping', message: 'the run is stopping' });
      return;
    }
    if (!Object.hasOwn(this.input.agent.tools, message.name)) {
      this.process.send({ type: 'error', id: message.id, code: 'not_allowed', message: `tool ${JSON.stringify(message.name)} is not in this agent's tools` });
      return;
    }
    const hash = requestHash('tool', message.name, message.args);
    const seq = this.replay.next('tool', hash);
    const span = this.input.trace?.tool(seq, message.name, this.input.agent.tools[message.name]?.effect, message.args);
    const unfinished = this.replay.unfinishedSideEffect(seq, hash, this.input.agent.tools[message.name], this.input.sideEffectDecisions.get(seq));
    if (unfinished === 'ask') {
      this.process.send({ type: 'error', id: message.id, code: 'stopping', message: 'a person must say whether this call already happened' });
      const tool = this.input.agent.tools[message.name]!;
      this.finish({ kind: 'unsure_side_effect', seq, tool: message.name, args: message.args, idempotencyKey: idempotencyKey(this.input.agent.name, this.input.taskId, seq, tool.name) });
      return;
    }
    if (unfinished === 'assume_done') {
      const decision = this.input.sideEffectDecisions.get(seq);
      const result = { assumed_done: true, by_person: true, ...(decision?.answer !== undefined ? { answer: decision.answer } : {}) };
      await appendJournal(this.input.journalFile, { v: 1, seq, run_id: this.input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'completed', result, at: this.iso() });
      this.replay.goLive();
      span?.replayed(result);
      this.process.send({ type: 'tool_result', id: message.id, ok: true, result, replayed: true });
      return;
    }
    const recorded = unfinished === 'rerun' ? null : await this.replayed(seq, 'tool', hash);
    if (unfinished === 'rerun') this.replay.goLive(); // the journal ends at this call: everything after it is live
    if (recorded) {
      span?.replayed(recorded.result);
      await this.taint.inspect(recorded.result, `tool result of ${message.name} (call ${seq})`);
      this.process.send({ type: 'tool_result', id: message.id, ok: true, result: recorded.result, replayed: true });
      return;
    }
    const refusal = decideToolCall(this.input.limits, this.spentNow());
    if (refusal) return this.refuse(message.id, refusal);
    const tool = this.input.agent.tools[message.name]!;
    const cause = approvalCause(tool, this.taint.tainted);
    if (cause) {
      // The approval is bound to this exact call: its place in the task and a hash of tool and arguments.
      const standing = approvalStanding(this.input.approvals.get(`${seq}:${hash}`), tool.approvalTtlMs, this.input.clock.now());
      if (standing.kind === 'none' || standing.kind === 'expired') {
        const expired = standing.kind === 'expired' ? standing.record : null;
        if (expired) this.input.log.info({ tool: message.name, seq, approved_at: new Date(expired.at).toISOString() }, 'approval older than approval_ttl; asking again');
        this.input.trace?.approvalWait(seq, message.name, 'pending');
        this.process.send({ type: 'error', id: message.id, code: 'stopping', message: 'this call waits for a person\'s approval' });
        this.finish({ kind: 'approval', seq, tool: message.name, args: message.args, callHash: hash, cause, expired });
        return;
      }
      if (standing.kind === 'denied') {
        span?.failed('denied', 'a person denied this call');
        await this.journalFailed(seq, 'tool', message.name, hash, { code: 'denied', message: 'a person denied this call' });
        this.process.send({ type: 'error', id: message.id, code: 'denied', message: `a person denied this call of ${message.name}: do not retry it, handle the refusal` });
        return;
      }
    }
    const sideEffect = tool.effect !== 'read';
    const auditCall = (phase: string, extra: object = {}) =>
      this.input.audit({ event: 'tool_call', agent: this.input.agent.name, task_id: this.input.taskId, run_id: this.input.runId, details: { tool: message.name, seq, effect: tool.effect, phase, call_hash: hash, ...extra } });
    // The audit line goes first and the journal's record of the outcome right after the call:
    // nothing slower may stand between a side effect and the record that it happened.
    if (sideEffect) await auditCall('started', { args: message.args });
    await appendJournal(this.input.journalFile, { v: 1, seq, run_id: this.input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'started', at: this.iso() });
    this.spent.toolCalls++;
    this.runSpend.toolCalls++;
    const answer = await this.input.tools.call({ agent: this.input.agent, taskId: this.input.taskId, runId: this.input.runId, seq, name: message.name, args: message.args });
    if (!answer.ok) {
      span?.failed(answer.code, answer.message);
      await this.journalFailed(seq, 'tool', message.name, hash, { code: answer.code, message: answer.message });
      if (sideEffect) await auditCall('failed');
      this.process.send({ type: 'error', id: message.id, code: answer.code, message: answer.message });
      return;
    }
    span?.completed(answer.result);
    await appendJournal(this.input.journalFile, { v: 1, seq, run_id: this.input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'completed', result: answer.result, at: this.iso() });
    if (sideEffect) await auditCall('completed');
    await this.taint.inspect(answer.result, `tool result of ${message.name} (call ${seq})`);
    this.process.send({ type: 'tool_result', id: message.id, ok: true, result: answer.result, replayed: false });
    this.afterSpend();
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
    if (this.warned) return;
    const spent = this.spentNow();
    if (!pastWarning(this.input.limits, spent)) return;
    this.warned = true;
    this.process.send({ type: 'budget_warning', used: usedView(spent), limits: limitsView(this.input.limits) });
  }

  private onResult(output: unknown): void {
    const schema = this.input.agent.outputSchema;
    if (schema) {
      const validate = compiledOutputSchema(schema);
      if (!validate(output)) {
        const problems = formatErrors(validate.errors ?? []).join('; ');
        this.finish({ kind: 'failed', category: 'invalid_output', message: `output does not match output_schema: ${problems}` });
        return;
      }
    }
    this.finish({ kind: 'done', output });
  }
}

/** One compiled validator per schema object: ajv refuses to compile a schema with the same $id twice. */
const outputValidators = new WeakMap<object, ValidateFunction>();
function compiledOutputSchema(schema: object): ValidateFunction {
  let validate = outputValidators.get(schema);
  if (!validate) {
    const id = (schema as { $id?: unknown }).$id;
    validate = (typeof id === 'string' && ajv.getSchema(id)) || ajv.compile(schema);
    outputValidators.set(schema, validate);
  }
  return validate;
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
