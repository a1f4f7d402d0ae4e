import type { ModelRequest, ModelResponse, StopReason, Usage } from '../protocol/messages.js';
import { ModelCallError, type GatewayResult } from '../model/types.js';
import type { ErrorCategory } from '../errors.js';
import { requestHash } from '../store/journal.js';
import { decideModelCall, estimatePromptTokens, type Spent } from './budget.js';
import type { ReplayCursor } from './replay.js';
import type { RunHostInput } from './run-types.js';

/**
 * One model step of a run, whoever asked for it: a protocol `model` message or
 * a chat completion at the run's endpoint (README "Bring your own agent").
 * Budget check and clamp, journal fsynced before the answer, replay, the
 * gateway (retries, fallback, circuit, cache), trace span, cost. The answer is
 * data; the caller turns it into a protocol message or an HTTP reply.
 */

/** What the journal keeps of an answered model call, and what a replay serves. */
export interface RecordedModelReply {
  response: ModelResponse;
  /** The model that answered. */
  model: string;
  /** The provider's whole completion body, when it sent one. */
  raw?: Record<string, unknown>;
}

export type ModelCallOutcome =
  | { kind: 'answered'; reply: RecordedModelReply; usage: Usage; replayed: boolean }
  /** A budget is used up: the caller refuses and the run stops. */
  | { kind: 'refused'; reason: StopReason }
  | { kind: 'stopping' }
  /** `availability`: retries exhausted, circuit open, no fallback left. `status`: the provider's HTTP status. */
  | { kind: 'failed'; code: 'provider_error' | 'provider_unavailable'; message: string; status: number | null; category: ErrorCategory };

/** The parts of the run host a model step reads and updates. */
export interface ModelCallRun {
  readonly input: RunHostInput;
  readonly replay: ReplayCursor;
  /** Aborted when the run stops. */
  readonly signal: AbortSignal;
  stopping(): boolean;
  spentNow(): Spent;
  countStep(): void;
  /** Tokens and cost of an answered call, the model that answered, its wall time (null for a cache hit). */
  charge(result: GatewayResult, latencyMs: number | null): void;
}

/** Fields that change how a reply is delivered, not what is asked: a streamed call replays a plain one. */
const DELIVERY_FIELDS = new Set(['model', 'stream', 'stream_options']);

/** The request as hashed for replay: the model is hashed separately, delivery fields not at all. */
export function hashedRequest(request: ModelRequest): Record<string, unknown> {
  // No prototype: a "__proto__" field of the agent's request is a field like any other, as Object.fromEntries made it.
  const hashed: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const field of Object.keys(request)) if (!DELIVERY_FIELDS.has(field)) hashed[field] = (request as Record<string, unknown>)[field];
  return hashed;
}

/**
 * Run one model step for `model` (the agent's, or one its allowlist names).
 * `fallbackModels`: where the gateway may fall back to.
 */
export async function callModel(run: ModelCallRun, request: ModelRequest, model: string, fallbackModels: string[]): Promise<ModelCallOutcome> {
  const { input } = run;
  if (run.stopping()) return { kind: 'stopping' };
  const hash = requestHash('model', model, hashedRequest(request));
  const seq = run.replay.next('model', hash);
  const span = input.trace?.model(seq, model, request);
  const recorded = await replayed(run, seq, hash);
  if (recorded) {
    span?.replayed(recorded.model, recorded.response);
    return { kind: 'answered', reply: recorded, usage: { input_tokens: 0, output_tokens: 0, cost_usd: 0 }, replayed: true };
  }
  if (!model) {
    const message = 'the agent definition names no model';
    span?.failed(new Error(message));
    await journalFailed(run, seq, model, hash, { code: 'provider_error', message });
    return { kind: 'failed', code: 'provider_error', message, status: null, category: 'bad_request' };
  }
  const asked = request.max_completion_tokens ?? request.max_tokens;
  const decision = decideModelCall(input.limits, run.spentNow(), estimatePromptTokens(request), asked, input.priceOf(model));
  if (!decision.ok) return { kind: 'refused', reason: decision.reason };
  const sent = clampOutput(request, decision.maxTokens);

  await input.records.journal({ v: 1, seq, run_id: input.runId, kind: 'model', name: model, request_hash: hash, phase: 'started', at: iso(run) }, false);
  run.countStep();
  span?.sent(sent);
  let result: GatewayResult;
  const calledAt = input.clock.now();
  try {
    result = await input.models.call({
      agent: input.agent.name,
      model,
      fallbackModels,
      critical: input.agent.critical || input.start.task.critical === true,
      request: sent,
      signal: run.signal,
    });
  } catch (err) {
    span?.set(() => ({ 'agentd.circuit_state': input.models.circuitState?.(model) }));
    span?.failed(err);
    return failed(run, seq, model, hash, err);
  }
  const reply: RecordedModelReply = { response: result.response, model: result.model, ...(result.raw ? { raw: result.raw } : {}) };
  const journaled = input.records.journal({
    v: 1,
    seq,
    run_id: input.runId,
    kind: 'model',
    name: model,
    request_hash: hash,
    phase: 'completed',
    result: reply,
    usage: result.usage,
    at: iso(run),
  });
  // The span is built and written once the reply is out (observe/trace.ts), and while the completed
  // record's fdatasync runs when that is on the thread pool (store/sync-choice.ts).
  span?.set(() => ({ 'agentd.circuit_state': input.models.circuitState?.(model) }));
  span?.completed(result);
  await journaled;
  run.charge(result, result.cached ? null : input.clock.now() - calledAt);
  return { kind: 'answered', reply, usage: result.usage, replayed: false };
}

/** The budget's clamp goes into whichever output limit the agent used (max_tokens when it used none). */
function clampOutput(request: ModelRequest, maxTokens: number | undefined): ModelRequest {
  if (maxTokens === undefined) return request;
  if (request.max_completion_tokens !== undefined) return { ...request, max_completion_tokens: maxTokens, ...(request.max_tokens !== undefined ? { max_tokens: maxTokens } : {}) };
  return { ...request, max_tokens: maxTokens };
}

/** Answer from the journal when the n-th call matches what was recorded; otherwise supersede the rest. */
async function replayed(run: ModelCallRun, seq: number, hash: string): Promise<RecordedModelReply | null> {
  const found = run.replay.match(seq, 'model', hash);
  if (found.kind === 'recorded') return found.call.result as RecordedModelReply;
  if (found.kind === 'diverged') {
    await run.input.records.journal({ v: 1, kind: 'supersede', run_id: run.input.runId, from_seq: seq, at: iso(run) });
  }
  return null;
}

async function failed(run: ModelCallRun, seq: number, model: string, hash: string, err: unknown): Promise<ModelCallOutcome> {
  const failure = err instanceof ModelCallError ? err.failure : null;
  const message = err instanceof Error ? err.message : String(err);
  const category = failure?.category ?? 'provider_error';
  await journalFailed(run, seq, model, hash, { code: category, message, category: failure?.category });
  if (run.stopping()) return { kind: 'stopping' };
  const status = err instanceof ModelCallError ? err.status : null;
  return { kind: 'failed', code: failure?.availability ? 'provider_unavailable' : 'provider_error', message, status, category };
}

async function journalFailed(run: ModelCallRun, seq: number, name: string, hash: string, error: { code: string; message: string; category?: string | undefined }): Promise<void> {
  const { input } = run;
  await input.records.journal({
    v: 1,
    seq,
    run_id: input.runId,
    kind: 'model',
    name,
    request_hash: hash,
    phase: 'failed',
    error: { code: error.code, message: error.message, ...(error.category ? { category: error.category } : {}) },
    at: iso(run),
  });
}

function iso(run: ModelCallRun): string {
  return new Date(run.input.clock.now()).toISOString();
}
