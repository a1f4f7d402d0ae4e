import { encodeMessage, remainingAfterWarning } from '../protocol/codec.js';
import type {
  AgentMessage,
  BudgetRemaining,
  BudgetWarningMessage,
  DaemonMessage,
  ModelResultMessage,
  StartMessage,
  StopMessage,
  StopReason,
  ToolResultMessage,
} from '../protocol/messages.js';
import { AgentdError, ESCALATED, type AgentContext, type AgentFunction, type AgentTask, type Handoff, type StopHandler } from './api.js';

/**
 * One agent run's side of the protocol (docs/protocol.md), as a state
 * machine over `Phase`: the `start` that calls the agent function, the
 * model and tool calls matched to their replies by id, budget warnings,
 * escalation, and the `stop` that ends in a handoff. It reads lines and
 * writes through `SessionIO`; src/sdk/index.ts wires that to the process.
 */

/** Share of `grace_ms` a stop handler may take before the default handoff is sent instead. */
const HANDLER_GRACE_SHARE = 0.8;

type Phase = 'waiting' | 'running' | 'escalated' | 'stopping' | 'finished';

interface Pending {
  expects: 'model_result' | 'tool_result';
  resolve(reply: ModelResultMessage | ToolResultMessage): void;
  reject(err: AgentdError): void;
}

/** Where the session writes and how it ends; `runAgent` wires these to the real process. */
export interface SessionIO {
  writeLine(line: string): Promise<void>;
  writeError(text: string): Promise<void>;
  exit(code: number): never;
}

export class Session {
  private phase: Phase = 'waiting';
  private nextId = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly abort = new AbortController();
  private stopHandler: StopHandler | null = null;
  private stopReason: StopReason | null = null;
  private lastState: unknown = undefined;
  private remaining: BudgetRemaining | null = null;
  /** Writes are ordered; awaiting the last one before exit means nothing is lost. */
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly io: SessionIO,
    private readonly fn: AgentFunction,
  ) {}

  onLine(line: string): void {
    let message: DaemonMessage;
    try {
      message = JSON.parse(line) as DaemonMessage;
    } catch {
      void this.io.writeError(`agentd sdk: ignored a stdin line that is not JSON\n`);
      return;
    }
    switch (message?.type) {
      case 'start':
        return this.onStart(message);
      case 'model_result':
      case 'tool_result':
        return this.settle(message.id, (p) => {
          if (p.expects === message.type) p.resolve(message);
          else p.reject(new AgentdError('bad_message', `expected ${p.expects}, got ${message.type}`));
        });
      case 'error':
        if (message.id === null) void this.io.writeError(`agentd: ${message.code}: ${message.message}\n`);
        else this.settle(message.id, (p) => p.reject(new AgentdError(message.code, message.message, message.retry_after_ms)));
        return;
      case 'budget_warning':
        return this.onBudgetWarning(message);
      case 'stop':
        void this.onStop(message).catch((err: unknown) => this.fail(err));
        return;
    }
  }

  /** stdin ended: the daemon is gone (or done with us). An orphaned agent must not keep running. */
  onClose(): void {
    this.abort.abort(new AgentdError('stopping', 'the daemon closed the connection'));
    void this.finish(0);
  }

  private onStart(start: StartMessage): void {
    if (this.phase !== 'waiting') {
      void this.io.writeError('agentd sdk: ignored a second start message\n');
      return;
    }
    this.phase = 'running';
    this.remaining = start.budget.remaining;
    const ctx = this.context(start);
    Promise.resolve()
      .then(() => this.fn(ctx))
      .then(
        (output) => this.onReturn(output),
        (err: unknown) => this.onThrow(err),
      )
      .catch((err: unknown) => this.fail(err));
  }

  private async onReturn(output: unknown): Promise<void> {
    // After an escalation the run is over; after a stop the handoff path owns the exit.
    if (this.phase === 'escalated') return this.finish(0);
    if (this.phase !== 'running') return;
    // undefined would drop the field and make an invalid message: a function that returns nothing returns null.
    // finish() waits for this write (and tolerates its failure) before it exits.
    void this.send({ type: 'result', output: output === undefined ? null : output });
    await this.finish(0);
  }

  private async onThrow(err: unknown): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'finished') return;
    // A refused call means a `stop` is on its way: let it send the handoff (the end of stdin still exits).
    if (this.phase === 'running' && err instanceof AgentdError && (err.code === 'budget_exhausted' || err.code === 'stopping')) return;
    await this.io.writeError(`agent failed: ${describe(err)}\n`);
    if (this.currentPhase() === 'stopping') return; // a stop arrived meanwhile: its handoff is worth more than our exit code
    // An escalation already sent stands; the daemon has what it needs.
    await this.finish(this.phase === 'escalated' ? 0 : 1);
  }

  /** Read through a call, because TypeScript's narrowing does not know an await lets a stop change the phase. */
  private currentPhase(): Phase {
    return this.phase;
  }

  /** A bug in the SDK or an unserializable value: say so and exit non-zero rather than hang. */
  private fail(err: unknown): void {
    void this.io.writeError(`agentd sdk: ${describe(err)}\n`).then(() => this.io.exit(1));
  }

  private context(start: StartMessage): AgentContext {
    const session = this;
    return {
      task: start.task as AgentTask,
      context: start.context ?? null,
      resume: {
        checkpoint: start.resume?.checkpoint ?? null,
        handoff: start.resume?.handoff ?? null,
        resolutions: start.resume?.resolutions ?? [],
      },
      runId: start.run_id,
      get budget() {
        return { remaining: { ...session.remaining! } };
      },
      signal: this.abort.signal,
      get stopReason() {
        return session.stopReason;
      },
      model: async (request) => {
        const reply = (await this.request('model_result', (id) => ({ type: 'model', id, request }))) as ModelResultMessage;
        return { content: reply.response.content, tool_calls: reply.response.tool_calls ?? [], usage: reply.usage, model: reply.model, replayed: reply.replayed };
      },
      tool: async <T>(name: string, args: Record<string, unknown>) => {
        const reply = (await this.request('tool_result', (id) => ({ type: 'tool', id, name, args }))) as ToolResultMessage;
        return reply.result as T;
      },
      checkpoint: async (state, context) => {
        if (!this.canWrite()) return;
        this.lastState = state;
        await this.send(context === undefined ? { type: 'checkpoint', state } : { type: 'checkpoint', state, context });
      },
      uncertain: async (escalation) => {
        if (this.phase === 'running') {
          this.phase = 'escalated';
          this.rejectPending('the run escalated to a person');
          await this.send({ type: 'uncertain', ...escalation });
        }
        return ESCALATED;
      },
      usage: (usage) => {
        if (this.canWrite()) void this.send({ type: 'usage', ...usage });
      },
      log: (level, msg) => {
        if (this.canWrite()) void this.send({ type: 'log', level, msg });
      },
      onStop: (handler) => {
        this.stopHandler = handler;
      },
    };
  }

  private canWrite(): boolean {
    return this.phase === 'running' || this.phase === 'stopping';
  }

  private request(expects: Pending['expects'], build: (id: string) => AgentMessage): Promise<ModelResultMessage | ToolResultMessage> {
    if (this.phase !== 'running') return Promise.reject(new AgentdError('stopping', `the run is ${this.phase}: no more calls`));
    const id = `${expects === 'model_result' ? 'm' : 't'}${++this.nextId}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { expects, resolve, reject });
      void this.send(build(id));
    });
  }

  private settle(id: string, act: (pending: Pending) => void): void {
    const pending = this.pending.get(id);
    if (!pending) return; // a reply to a call already rejected by a stop
    this.pending.delete(id);
    act(pending);
  }

  private rejectPending(why: string): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new AgentdError('stopping', why));
    }
  }

  private onBudgetWarning(warning: BudgetWarningMessage): void {
    this.remaining = remainingAfterWarning(warning);
  }

  private async onStop(stop: StopMessage): Promise<void> {
    if (this.phase !== 'running' && this.phase !== 'waiting') return;
    this.phase = 'stopping';
    this.stopReason = stop.reason;
    this.rejectPending(`the run is stopping: ${stop.reason}`);
    this.abort.abort(new AgentdError('stopping', `the run is stopping: ${stop.reason}`));
    const handoff = await this.handoff(stop);
    await this.send({ type: 'handoff', summary: handoff.summary, next_steps: handoff.next_steps, state: handoff.state ?? this.lastState });
    await this.finish(0);
  }

  /** The handler's handoff, or the default when there is none, it throws, or it outlasts the grace. */
  private async handoff(stop: StopMessage): Promise<Handoff> {
    const fallback: Handoff = { summary: `stopped: ${stop.reason}` };
    const handler = this.stopHandler;
    if (!handler) return fallback;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, stop.grace_ms * HANDLER_GRACE_SHARE))));
    try {
      const given = await Promise.race([Promise.resolve().then(() => handler(stop.reason)), late]);
      if (given && typeof given.summary === 'string') return given;
      await this.io.writeError('agentd sdk: the stop handler gave no summary in time, sending the default handoff\n');
    } catch (err) {
      await this.io.writeError(`agentd sdk: the stop handler failed: ${describe(err)}\n`);
    } finally {
      clearTimeout(timer);
    }
    return fallback;
  }

  private send(message: AgentMessage): Promise<void> {
    const line = encodeMessage(message);
    this.lastWrite = this.lastWrite.then(() => this.io.writeLine(line));
    return this.lastWrite;
  }

  private async finish(code: number): Promise<void> {
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    await this.lastWrite.catch(() => undefined);
    this.io.exit(code);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
