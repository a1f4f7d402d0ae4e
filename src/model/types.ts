import { AgentdFailure } from '../errors.js';
import type { RetryPolicy } from '../config/types.js';
import type { ModelRequest, ModelResponse } from '../protocol/messages.js';

/** Error categories (README "Models", src/errors.ts) that a model call can end in. */
export type ModelErrorCategory = 'rate_limit' | 'timeout' | 'provider_error' | 'auth' | 'bad_request' | 'budget' | 'cancelled';

/** The one decision about a failed call that retry, fallback and circuit code read. */
export interface FailureClass {
  category: ModelErrorCategory;
  retryable: boolean;
  /** From Retry-After, when the provider sent one. */
  retryAfterMs: number | null;
  /** True for availability failures (the only ones that may fall back). */
  availability: boolean;
}

/** What one provider returned for one call. */
export interface ProviderReply {
  response: ModelResponse;
  usage: { input_tokens: number; output_tokens: number };
  /** The provider's whole completion body, when it sent one: the run's endpoint answers in its shape. */
  raw?: Record<string, unknown>;
}

/** A provider speaks to one backend. `name` is the model name after `provider/`. */
export interface ModelProvider {
  complete(name: string, request: ModelRequest, options: { signal: AbortSignal; timeoutMs: number }): Promise<ProviderReply>;
}

/** What the daemon asks the gateway for one model step of one run. */
export interface GatewayCall {
  agent: string;
  /** `provider/name`. */
  model: string;
  fallbackModels: string[];
  /** No fallback: escalate instead. */
  critical: boolean;
  request: ModelRequest;
  /** Aborted when the run is stopped. */
  signal: AbortSignal;
  /** The agent's retry policy; default: the daemon config's `defaults.retry`. */
  retry?: RetryPolicy;
}

export interface GatewayResult {
  response: ModelResponse;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
  /** The model that answered (may be a fallback). */
  model: string;
  degraded: boolean;
  attempts: number;
  cached: boolean;
  /** The provider's whole completion body (not for cache hits or the mock). */
  raw?: Record<string, unknown>;
}

/** A model call that failed for good. */
export class ModelCallError extends AgentdFailure {
  override readonly name = 'ModelCallError';
  readonly code = 'model_call_failed';
  readonly category: ModelErrorCategory;
  constructor(
    message: string,
    readonly failure: FailureClass,
    readonly model: string,
    readonly status: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, { model, status }, options);
    this.category = failure.category;
  }

  /** The classification knows more than the category: a 5xx is retried, a 4xx of the same category is not. */
  override get retryable(): boolean {
    return this.failure.retryable;
  }
}
