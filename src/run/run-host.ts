import { LeaseLostError } from '../store/lease.js';
import { parseAgentLine, type HandoffMessage, type ModelCallMessage, type ModelRequest, type StopReason, type UsageMessage } from '../protocol/messages.js';
import type { EndpointSession } from '../endpoint/server.js';
import type { ErrorCategory } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import type { AgentProcess } from './agent-process.js';
import { launchAgent } from './agent-launch.js';
import { exitOutcome } from './exit-outcome.js';
import { ReplayCursor } from './replay.js';
import { handleToolCall, type ToolCallHost } from './tool-call.js';
import { callModel, type ModelCallOutcome, type ModelCallRun } from './model-call.js';
import { lostExitOutcome, PlainOutput, writePlainFiles } from './plain-agent.js';
import type { RunCheckpoint, RunHostInput, RunOutcome, RunReport } from './run-types.js';
import { RunTaint } from './taint.js';
import { CheckpointCoalescer } from './checkpoint-coalescer.js';
import type { Timer } from './clock.js';
import { MessageQueue } from './message-queue.js';
import { CallJournal } from './call-journal.js';
import { RunSpend } from './run-spend.js';
import { dispatchMessage, modelReply, NoiseLog, resultOutcome, type DispatchHost } from './message-dispatch.js';
import { DEFAULT_KILL_GRACE_MS, killAfter, stopAfterHandoff } from './agent-stop.js';

/**
 * Hosts one agent process for one run: its lifecycle (start, runtime limit,
 * heartbeat, interrupt, stop, exit) and the wiring of its parts, each in a
 * module of its own (docs/architecture.md, "One run"): the process
 * (agent-launch.ts), the message queue and dispatch (message-queue.ts,
 * message-dispatch.ts), model and tool calls (model-call.ts, tool-call.ts),
 * spend and budget gate (run-spend.ts), the host's journal records
 * (call-journal.ts), the stop sequence (agent-stop.ts) and the outcome of an
 * exit (exit-outcome.ts). Returns what happened as data.
 */

export type { ModelCaller, RunHostInput, RunOutcome, RunReport, ToolCaller } from './run-types.js';

export async function hostRun(input: RunHostInput): Promise<RunReport> {
  return new RunHost(input).run();
}

class RunHost {
  private readonly startedAt: number;
  /** The spend tally and the budget gate. */
  private readonly spend: RunSpend;
  private readonly replay: ReplayCursor;
  /** The journal records the host writes itself. */
  private readonly journal: CallJournal;
  private outcome: RunOutcome | null = null;
  private stopReason: StopReason | null = null;
  private handoff: HandoffMessage | null = null;
  /** The agent's messages, handled one at a time in order. */
  private readonly queue = this.newMessageQueue();
  /** Checkpoints coalesced: the last one wins, one write in flight (docs/protocol.md, `checkpoint`). */
  private readonly checkpoints = new CheckpointCoalescer<RunCheckpoint>((checkpoint) => this.writeCheckpoint(checkpoint));
  private readonly callAbort = new AbortController();
  private process!: AgentProcess;
  private handoffArrived!: () => void;
  private readonly handoffPromise = new Promise<void>((resolve) => (this.handoffArrived = resolve));
  private runtimeTimer: Timer | null = null;
  /** One timer per run, refreshed by every message: fires after heartbeat_timeout of silence. */
  private heartbeatTimer: Timer | null = null;
  /** Untrusted content checked for injected instructions; once flagged, side effects need approval. */
  private readonly taint: RunTaint;
  /** Non-protocol stdout lines, logged up to a cap. */
  private readonly noise: NoiseLog;
  private readonly dispatchHost: DispatchHost;
  private readonly toolHost: ToolCallHost;
  /** The run as a model step sees it. */
  private readonly modelRun: ModelCallRun;
  /** A plain agent's stdout (protocol: none), which is its result. */
  private readonly plainOutput: PlainOutput | null;

  constructor(private readonly input: RunHostInput) {
    this.startedAt = input.clock.now();
    this.spend = new RunSpend(input, this.startedAt);
    this.noise = new NoiseLog(input.log);
    this.replay = new ReplayCursor(input.replay, input.checkpointSeq, input.resumedFromCheckpoint);
    this.journal = new CallJournal(input, this.replay);
    this.plainOutput = input.agent.protocol === 'none' ? new PlainOutput() : null;
    this.modelRun = this.newModelRun();
    this.taint = new RunTaint(input.tainted ?? false, (found) => input.onSuspectedInjection?.(found) ?? Promise.resolve(), input.log);
    this.toolHost = this.toolCallHost();
    this.dispatchHost = this.newDispatchHost();
  }

  async run(): Promise<RunReport> {
    const { input } = this;
    await this.taint.inspect(input.start.task.input, 'task input');
    // The goal and metadata reach the agent (and its model) as much as the input does.
    await this.taint.inspect(input.start.task.goal, 'task goal');
    if (input.start.task.metadata !== undefined) await this.taint.inspect(input.start.task.metadata, 'task metadata');
    const grant = input.endpoint?.open(this.endpointSession());
    const files = this.plainOutput ? await writePlainFiles(input.start.task, input.start.resume, input.start.context, input.agent.confinement.runAs) : null;
    if (files?.problem) input.log.warn({ problem: files.problem }, 'run_as account cannot read the task file; it has the task on stdin');
    await this.start(grant?.env, files?.env);
    const onInterrupt = this.arm();
    const exit = await this.process.exited;
    grant?.close();
    await files?.remove().catch((err: unknown) => input.log.warn({ err }, 'could not remove the plain agent\'s task folder'));
    if (this.plainOutput && !this.outcome && !this.stopReason) {
      if (exit.code === 0) this.onPlainExit(this.plainOutput);
      // No code and no signal: the spawner died while it ran, and nobody can tell how it ended (run/spawner.ts).
      else if (exit.code === null && exit.signal === null) this.outcome = lostExitOutcome(this.plainOutput, input.taskId);
    }
    this.runtimeTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = null; // a reply still in the queue must not re-arm it
    input.interrupt.removeEventListener('abort', onInterrupt);
    this.callAbort.abort();
    // Children the agent left behind die with the run.
    this.process.kill('SIGKILL');
    await this.queue.settled();
    await this.flushCheckpoints();
    await input.records.close();
    return this.report(this.outcome ?? this.outcomeOfExit(exit.code, exit.signal));
  }

  /** The agent's process (a warm one, or spawned now) has its start message, and the run is recorded as its. */
  private async start(runEnv: Record<string, string> | undefined, filesEnv: Record<string, string> | undefined): Promise<void> {
    const { input } = this;
    this.process = launchAgent(input, this.plainOutput, (line) => this.onLine(line), runEnv, filesEnv);
    if (this.plainOutput) this.process.input(JSON.stringify(input.start.task) + '\n');
    else this.process.send({ type: 'start', run_id: input.runId, ...input.start, budget: { remaining: this.spend.remainingNow() } });
    // After the start message: a crash in between hands resolutions over again rather than never.
    try {
      await input.records.started(await this.process.started);
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
      progress: () => ({ run: { ...this.spend.run }, taskSteps: this.spend.task.steps, taskCostUsd: this.spend.task.costUsd, maxSteps: input.limits.steps, maxCostUsd: input.limits.costUsd }),
    });
    const onInterrupt = () => this.onInterrupt();
    if (input.interrupt.aborted) onInterrupt();
    else input.interrupt.addEventListener('abort', onInterrupt, { once: true });
    return onInterrupt;
  }

  /** What happened, as data, with the task's journal totals so finishing need not read the journal. */
  private report(outcome: RunOutcome): RunReport {
    const { input } = this;
    input.live?.end(input.runId, outcome.kind, this.spend.run, outcome.kind === 'failed' ? { category: outcome.category, message: outcome.message } : null);
    return {
      outcome,
      spend: this.spend.run,
      models: [...this.spend.models],
      degraded: this.spend.degraded,
      runtimeMs: input.clock.now() - this.startedAt,
      seq: this.replay.seq,
      modelLatencyMs: this.spend.modelLatencyMs,
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
    const { stopReason, handoff, unavailable } = this;
    return exitOutcome({ code, signal, stopReason, interruptReason: this.input.interrupt.reason, handoff, unavailable, stderrTail: this.process.stderrTail(), startFailure: this.process.startFailure() });
  }

  private onLine(line: string): void {
    const parsed = parseAgentLine(line);
    if (parsed.kind === 'noise') {
      this.noise.note(line);
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
    if (message.type === 'checkpoint') void this.queue.enqueue(false, () => dispatchMessage(this.dispatchHost, message), false);
    else void this.queue.enqueue(call, () => dispatchMessage(this.dispatchHost, message));
  }

  /** The message queue's side of the run (run/message-queue.ts). */
  private newMessageQueue(): MessageQueue {
    return new MessageQueue({
      // Every message may write (journal, checkpoint, result): none is acted on once the lease is lost.
      // What comes after a checkpoint is acted on once that checkpoint is durable (or superseded).
      beforeOrdered: async () => {
        await this.checkpoints.flush();
        await this.input.fence?.();
      },
      failed: (err) => {
        if (err instanceof LeaseLostError) return; // the fence stopped the run (interrupt 'lock_lost'); nothing more is written
        this.input.log.error({ err }, 'handling an agent message failed');
        this.finish({ kind: 'failed', category: 'crash', message: `daemon could not handle a message: ${(err as Error).message}` });
      },
      answered: () => this.heartbeatTimer?.refresh(), // the silence starts when the reply was sent
    });
  }

  /** What the run's endpoint may do for this run (README "Bring your own agent"). */
  private endpointSession(): EndpointSession {
    return {
      agent: this.input.agent,
      chat: (request, model, fallbackModels) => {
        this.heartbeatTimer?.refresh();
        return this.queue.enqueue(true, () => new Promise<ModelCallOutcome>((resolve, reject) => this.modelStep(request, model, fallbackModels, resolve).catch(reject)));
      },
      post: (message) => {
        this.heartbeatTimer?.refresh();
        return this.queue.enqueue(false, () => dispatchMessage(this.dispatchHost, message));
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
    if (this.queue.awaitingDaemon > 0 || this.stopReason || this.outcome || !this.process.alive) return;
    const silenceMs = this.input.agent.heartbeatTimeoutMs;
    this.input.log.warn({ heartbeat_timeout_ms: silenceMs }, 'agent silent past heartbeat_timeout, killing it');
    this.outcome = { kind: 'failed', category: 'timeout', message: `agent sent no protocol message for ${formatDuration(silenceMs)} (heartbeat_timeout)` };
    this.callAbort.abort();
    void this.killAfter(0);
  }

  /** The run's side of message dispatch (run/message-dispatch.ts). */
  private newDispatchHost(): DispatchHost {
    return {
      model: (message) => this.onModel(message),
      tool: (message) => handleToolCall(this.toolHost, message),
      usage: (message) => this.onUsage(message),
      checkpoint: (message) =>
        this.checkpoints.submit({ state: message.state, context: message.context, hasContext: Object.hasOwn(message, 'context'), seq: this.replay.seq, runSpend: { ...this.spend.run } }),
      handoff: (message) => {
        this.handoff = message;
        this.handoffArrived();
      },
      finish: (outcome) => this.finish(outcome),
      result: (output) => this.onResult(output),
      log: this.input.log,
    };
  }

  /** The run's outcome is known: let the process exit on its own, then make sure it does. */
  private finish(outcome: RunOutcome): void {
    if (this.outcome || this.stopReason) return;
    this.outcome = outcome;
    this.process.closeStdin();
    void this.killAfter(this.input.agent.stopGraceMs);
  }

  private killAfter(graceMs: number): Promise<void> {
    return killAfter(this.process, graceMs, this.input.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
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
    void stopAfterHandoff(this.process, this.handoffPromise, () => this.handoff !== null, graceMs, this.input.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
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

  private async onModel(message: ModelCallMessage): Promise<void> {
    const { agent } = this.input;
    await this.modelStep(message.request, agent.model ?? '', agent.fallbackModels, (outcome) => this.process.send(modelReply(message.id, outcome)));
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
      spentNow: () => this.spend.spentNow(),
      countStep: () => this.spend.countStep(),
      charge: (result, latencyMs) => this.spend.charge(result, latencyMs),
    };
  }

  /** Set when the model was unavailable: a failed run is then that, not a crash. */
  private unavailable: { category: ErrorCategory; message: string; model: string | null } | null = null;

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
      replayed: (seq, kind, hash) => this.journal.replayed(seq, kind, hash),
      journalFailed: (seq, kind, name, hash, error) => this.journal.failed(seq, kind, name, hash, error),
      spentNow: () => this.spend.spentNow(),
      countToolCall: () => this.spend.countToolCall(),
      afterSpend: () => this.afterSpend(),
      iso: () => this.journal.iso(),
      signal: this.callAbort.signal,
    };
  }

  private async onUsage(message: UsageMessage): Promise<void> {
    const usage = this.spend.checkedUsage({ input_tokens: message.input_tokens, output_tokens: message.output_tokens, cost_usd: message.cost_usd ?? 0 }, 'usage message');
    await this.journal.usage(usage);
    this.spend.addUsage(usage);
    this.afterSpend();
    const exhausted = this.spend.exhausted();
    if (exhausted) this.beginStop(exhausted);
  }

  /** Reports the spend, and sends the budget warning once a budget is past its warning share. */
  private afterSpend(): void {
    const warning = this.spend.afterSpend();
    if (warning) this.process.send(warning);
  }

  private onResult(output: unknown): void {
    this.finish(resultOutcome(this.input.agent.outputSchema, output));
  }
}
