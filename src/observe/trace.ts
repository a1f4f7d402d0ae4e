import { randomBytes } from 'node:crypto';
import type { DaemonConfig, ToolEffect } from '../config/types.js';
import { ModelCallError, type GatewayResult } from '../model/types.js';
import type { ModelRequest, ModelResponse } from '../protocol/messages.js';
import { appendHeld, closeHeld } from '../store/held-append.js';
import { redactValue } from './redact.js';

/**
 * The spans of one run, one JSON line each in
 * state/<agent>/traces/<run-id>.jsonl (README "Traces and stats"). A span's line
 * is appended when the span ends; the run span is written last, when the run
 * is over. Attribute names follow the OpenTelemetry GenAI conventions
 * (`gen_ai.*`), and `agentd.*` for what they do not cover.
 *
 * Writing a trace never slows or fails a run: a span that ends is built and
 * appended after the event loop's current turn (so when the journal's
 * fdatasync ran inline, a model call's reply is out before its span is
 * redacted and written), in order, on a queue of its
 * own (the file held open for the run; the last line, the run span, is
 * fdatasynced with everything before it), and a failed append is reported
 * through `onError` and otherwise ignored.
 */

export type SpanKind = 'run' | 'model' | 'tool' | 'checkpoint' | 'escalation' | 'approval_wait' | 'usage';
export type SpanStatus = 'ok' | 'error';
export type TraceCapture = DaemonConfig['traceCapture'];
export type Attributes = Record<string, unknown>;
/** Attributes, or how to make them once the span is written: redacting a payload waits until then. */
export type LazyAttributes = Attributes | (() => Attributes);

/** One line of a trace file (format version 1). */
export interface SpanLine {
  v: 1;
  /** 32 hex digits, one per run. */
  trace_id: string;
  /** 16 hex digits. */
  span_id: string;
  /** The run span's id for every other span; null for the run span. */
  parent_span_id: string | null;
  name: string;
  kind: SpanKind;
  /** ISO 8601. */
  start: string;
  end: string;
  duration_ms: number;
  status: SpanStatus;
  attributes: Attributes;
}

export interface RunTraceOptions {
  /** The trace file, from HomePaths.trace(agent, runId). */
  file: string;
  /** What happens to prompts, responses and tool arguments: kept, redacted, or left out. */
  capture: TraceCapture;
  clock: { now(): number };
  /** Attributes of the run span (agent, task, run, definition): known when the run starts. */
  attributes: Attributes;
  /** Called with an append that failed; the trace then misses that span. */
  onError?(err: unknown): void;
  /** Random hex of `bytes` bytes, for ids; default crypto.randomBytes. */
  randomHex?(bytes: number): string;
}

/** Random bytes drawn 4 KB at a time: one draw per span cost a call into OpenSSL (and its fork check, a getpid) per model call. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

function defaultHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes));
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes; // each byte is used once
  return hex;
}

export class RunTrace {
  readonly traceId: string;
  readonly runSpanId: string;
  readonly file: string;
  private readonly startMs: number;
  private readonly runAttributes: Attributes;
  private queue: Promise<void> = Promise.resolve();
  private finished = false;
  /** Spans ended in this turn of the event loop, written by the next flush. */
  private pending: (() => void)[] = [];

  constructor(private readonly options: RunTraceOptions) {
    this.file = options.file;
    this.traceId = this.hex(16);
    this.runSpanId = this.hex(8);
    this.startMs = options.clock.now();
    this.runAttributes = { ...options.attributes };
  }

  get capture(): TraceCapture {
    return this.options.capture;
  }

  now(): number {
    return this.options.clock.now();
  }

  /** A child span of the run, started now; nothing is written unless it is ended. */
  span(kind: Exclude<SpanKind, 'run'>, name: string, attributes: Attributes = {}): Span {
    return new Span(this, this.hex(8), kind, name, this.now(), attributes);
  }

  /** A child span that is already over (a person's wait, an escalation): written at once. */
  emit(kind: Exclude<SpanKind, 'run'>, name: string, attributes: Attributes, at: { startMs?: number; endMs?: number; status?: SpanStatus } = {}): void {
    const endMs = at.endMs ?? this.now();
    this.write(this.hex(8), this.runSpanId, kind, name, at.startMs ?? endMs, endMs, at.status ?? 'ok', attributes);
  }

  /** `value` as `trace.capture` allows: as is (`full`), masked (`redacted`), or undefined (`none`). */
  payload(value: unknown): unknown {
    if (this.options.capture === 'none' || value === undefined) return undefined;
    return this.options.capture === 'full' ? value : redactValue(value);
  }

  /** A model call of the task's `seq`-th call; `model` is `provider/name`. */
  model(seq: number, model: string, request: ModelRequest): ModelSpan {
    return new ModelSpan(this, this.hex(8), model, this.now(), seq, request);
  }

  /** A tool call of the task's `seq`-th call. */
  tool(seq: number, name: string, effect: ToolEffect | undefined, args: Record<string, unknown>): ToolSpan {
    return new ToolSpan(this, this.hex(8), name, this.now(), seq, effect, args);
  }

  checkpoint(seq: number, hasContext: boolean): Span {
    return this.span('checkpoint', 'checkpoint', { 'agentd.seq': seq, 'agentd.checkpoint.context': hasContext });
  }

  /** A tool call held for a person's approval (`pending`), or the decision a later run found. */
  approvalWait(seq: number, tool: string, decision: string, at: { startMs?: number; endMs?: number } = {}, extra: Attributes = {}): void {
    this.emit('approval_wait', `approval ${tool}`, { 'agentd.seq': seq, 'agentd.tool.name': tool, 'agentd.approval.decision': decision, ...extra }, at);
  }

  /**
   * Ends the trace: writes the run span (last), then waits until every line
   * is appended. Later calls do nothing.
   */
  async finish(status: SpanStatus, attributes: Attributes): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      this.write(this.runSpanId, null, 'run', `run ${String(this.runAttributes['agentd.agent'] ?? '')}`.trim(), this.startMs, this.now(), status, { ...this.runAttributes, ...attributes });
      this.flush();
    }
    await this.queue;
    await closeHeld(this.file);
  }

  /** @internal Spans call this when they end. */
  write(spanId: string, parent: string | null, kind: SpanKind, name: string, startMs: number, endMs: number, status: SpanStatus, attributes: LazyAttributes): void {
    // Only the run span (written last, by finish) is fdatasynced, and that flushes the lines before it.
    const sync = this.finished;
    if (this.pending.length === 0) setImmediate(() => this.flush());
    this.pending.push(() => this.append(spanId, parent, kind, name, startMs, endMs, status, resolved(attributes), sync));
  }

  /** Build and append, in order, the spans ended since the last flush. */
  private flush(): void {
    const spans = this.pending;
    this.pending = [];
    for (const build of spans) {
      try {
        build();
      } catch (err) {
        this.options.onError?.(err);
      }
    }
  }

  private append(spanId: string, parent: string | null, kind: SpanKind, name: string, startMs: number, endMs: number, status: SpanStatus, attributes: Attributes, sync: boolean): void {
    const line: SpanLine = {
      v: 1,
      trace_id: this.traceId,
      span_id: spanId,
      parent_span_id: parent,
      name,
      kind,
      start: new Date(startMs).toISOString(),
      end: new Date(endMs).toISOString(),
      duration_ms: Math.max(0, endMs - startMs),
      status,
      attributes: dropUndefined(attributes),
    };
    const text = JSON.stringify(line);
    this.queue = this.queue.then(() => appendHeld(this.file, text, sync)).catch((err: unknown) => this.options.onError?.(err));
  }

  private hex(bytes: number): string {
    return (this.options.randomHex ?? defaultHex)(bytes);
  }
}

/** A span in progress: ended once, written when it ends. */
export class Span {
  private ended = false;
  /** What set() added, in order: a later part's value wins. */
  private readonly parts: LazyAttributes[];

  constructor(
    protected readonly trace: RunTrace,
    readonly id: string,
    readonly kind: Exclude<SpanKind, 'run'>,
    readonly name: string,
    readonly startMs: number,
    attributes: LazyAttributes,
  ) {
    this.parts = [attributes];
  }

  set(attributes: LazyAttributes): this {
    this.parts.push(attributes);
    return this;
  }

  end(status: SpanStatus = 'ok', attributes: LazyAttributes = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.parts.push(attributes);
    const parts = this.parts;
    this.trace.write(this.id, this.trace.runSpanId, this.kind, this.name, this.startMs, this.trace.now(), status, () => Object.assign({}, ...parts.map(resolved)));
  }
}

function resolved(attributes: LazyAttributes): Attributes {
  return typeof attributes === 'function' ? attributes() : attributes;
}

/** `provider/name` → the provider, OpenTelemetry's gen_ai.system. */
function systemOf(model: string): string {
  const slash = model.indexOf('/');
  return slash > 0 ? model.slice(0, slash) : model;
}

/** A model call (OpenTelemetry GenAI: operation `chat`). */
export class ModelSpan extends Span {
  constructor(trace: RunTrace, id: string, model: string, startMs: number, seq: number, request: ModelRequest) {
    super(trace, id, 'model', `chat ${model}`, startMs, () => ({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': systemOf(model),
      'gen_ai.request.model': model,
      'gen_ai.request.max_tokens': request.max_tokens,
      'gen_ai.request.temperature': request.temperature,
      'agentd.seq': seq,
      'gen_ai.input.messages': trace.payload(request.messages),
    }));
  }

  /** The budget lowered max_tokens: the span records what was sent. */
  sent(request: ModelRequest): void {
    this.set({ 'gen_ai.request.max_tokens': request.max_tokens });
  }

  completed(result: GatewayResult): void {
    this.end('ok', () => ({
      'gen_ai.response.model': result.model,
      'gen_ai.usage.input_tokens': result.usage.input_tokens,
      'gen_ai.usage.output_tokens': result.usage.output_tokens,
      'agentd.cost_usd': result.usage.cost_usd,
      'agentd.attempts': result.attempts,
      'agentd.fallback': result.degraded,
      'agentd.degraded': result.degraded,
      'agentd.cache_hit': result.cached,
      'agentd.replayed': false,
      'gen_ai.output.messages': this.output(result.response),
    }));
  }

  /** Answered from the journal: no provider call, no cost. */
  replayed(model: string, response: ModelResponse): void {
    this.end('ok', () => ({
      'gen_ai.response.model': model,
      'gen_ai.usage.input_tokens': 0,
      'gen_ai.usage.output_tokens': 0,
      'agentd.cost_usd': 0,
      'agentd.attempts': 0,
      'agentd.cache_hit': false,
      'agentd.replayed': true,
      'gen_ai.output.messages': this.output(response),
    }));
  }

  failed(err: unknown): void {
    const failure = err instanceof ModelCallError ? err.failure : null;
    this.end('error', {
      'error.type': failure?.category ?? 'provider_error',
      'agentd.error': err instanceof Error ? err.message : String(err),
      'agentd.replayed': false,
    });
  }

  private output(response: ModelResponse): unknown {
    return this.trace.payload([{ role: 'assistant', content: response.content, ...(response.tool_calls.length > 0 ? { tool_calls: response.tool_calls } : {}) }]);
  }
}

/**
 * A tool call (OpenTelemetry GenAI: operation `execute_tool`). Its args and
 * result are redacted when the span is written, after the call: nothing may
 * change them in between (tools run out of process, so nothing does).
 */
export class ToolSpan extends Span {
  constructor(trace: RunTrace, id: string, name: string, startMs: number, seq: number, effect: ToolEffect | undefined, args: Record<string, unknown>) {
    super(trace, id, 'tool', `execute_tool ${name}`, startMs, () => ({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': name,
      'agentd.tool.name': name,
      'agentd.tool.effect': effect,
      'agentd.seq': seq,
      'agentd.tool.args': trace.payload(args),
    }));
  }

  completed(result: unknown): void {
    this.end('ok', () => ({ 'agentd.replayed': false, 'agentd.tool.result': this.trace.payload(result) }));
  }

  /** Answered from the journal (or taken as done by a person): the tool did not run. */
  replayed(result: unknown): void {
    this.end('ok', () => ({ 'agentd.replayed': true, 'agentd.tool.result': this.trace.payload(result) }));
  }

  /** `code`: not_allowed, invalid_args, tool_failed, denied. */
  failed(code: string, message: string): void {
    this.end('error', { 'error.type': code, 'agentd.error': message, 'agentd.replayed': false });
  }
}

function dropUndefined(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}
