import type { Logger } from 'pino';
import type { DaemonConfig, ProviderConfig } from '../config/types.js';
import { ModelCache } from './cache.js';
import { DEFAULT_CIRCUIT, CircuitRegistry, type CircuitInfo, type CircuitOptions } from './circuit-breaker.js';
import { costUsd, isPriced } from './pricing.js';
import { MockProvider } from './provider-mock.js';
import { OpenAIProvider } from './provider-openai.js';
import { decideRetry, normalisePolicy, totalAttemptCap } from './retry.js';
import { ModelCallError, type FailureClass, type GatewayCall, type GatewayResult, type ModelProvider, type ProviderReply } from './types.js';

/** Time, injected. Structurally the daemon's `Clock` (src/run/clock.ts). */
export interface GatewayClock {
  now(): number;
  /** Resolves after `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface GatewayOptions {
  config: DaemonConfig;
  /** Providers by name, replacing those built from `config.providers` (tests). */
  providers?: Record<string, ModelProvider>;
  clock: GatewayClock;
  /** Uniform in [0, 1), for backoff jitter. */
  random: () => number;
  logger?: Logger;
  /** Circuit breaker tuning; defaults in DEFAULT_CIRCUIT (5 failures in 60s, 30s cooldown). */
  circuit?: Partial<CircuitOptions>;
  /** Exact-match cache of temperature-0 calls; none by default. */
  cache?: ModelCache;
  /**
   * Told of every provider attempt (not cache hits or circuit rejections):
   * the model, its wall time in ms, and `ok` or the failure's category. For /metrics.
   */
  onCall?: (model: string, latencyMs: number, outcome: string) => void;
}

/** How trying one model of the chain ended. */
type ModelOutcome =
  | { kind: 'ok'; reply: ProviderReply }
  /** Retries exhausted, circuit open or the attempt cap reached on an availability failure: the next model may try. */
  | { kind: 'unavailable'; error: ModelCallError }
  /** Anything a fallback must not paper over: 4xx, auth, cancelled. */
  | { kind: 'failed'; error: ModelCallError };

const UNAVAILABLE: FailureClass = { category: 'provider_error', retryable: false, retryAfterMs: null, availability: true };
const CANCELLED: FailureClass = { category: 'cancelled', retryable: false, retryAfterMs: null, availability: false };

/**
 * Every model call of every run goes through here (README "Models"): provider by
 * `provider/` prefix, per-call timeout, retry with backoff, a circuit per model
 * shared by all agents, fallback on availability failures, pricing.
 */
export class ModelGateway {
  private readonly config: DaemonConfig;
  private readonly clock: GatewayClock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly providers = new Map<string, ModelProvider>();
  private readonly circuitRegistry: CircuitRegistry;
  private readonly cooldownMs: number;
  private readonly cache: ModelCache | null;
  /** Models we already warned have no price, so the warning is once per model, not per call. */
  private readonly unpricedWarned = new Set<string>();
  private readonly onCall: GatewayOptions['onCall'];

  constructor(options: GatewayOptions) {
    this.config = options.config;
    this.clock = options.clock;
    this.random = options.random;
    this.log = options.logger?.child({ component: 'model-gateway' });
    for (const [name, provider] of Object.entries(options.providers ?? {})) this.providers.set(name, provider);
    const circuit = { ...DEFAULT_CIRCUIT, ...options.circuit };
    circuit.failureThreshold = Math.max(1, circuit.failureThreshold);
    this.circuitRegistry = new CircuitRegistry(circuit, () => this.clock.now());
    this.cooldownMs = circuit.cooldownMs;
    this.cache = options.cache ?? null;
    this.onCall = options.onCall;
  }

  /** One model step. Throws ModelCallError; availability exhaustion is category provider_error with `availability: true`. */
  async call(call: GatewayCall): Promise<GatewayResult> {
    const cached = await this.fromCache(call);
    if (cached) return cached;
    const policy = normalisePolicy(call.retry ?? this.config.defaults.retry);
    // A critical agent must not silently get a different model's judgement: it escalates instead.
    const chain = [call.model, ...(call.critical ? [] : call.fallbackModels.filter((m) => m !== call.model))];
    const cap = totalAttemptCap(policy, chain.length - 1);
    let attempts = 0;
    const failures: ModelCallError[] = [];
    for (const [index, model] of chain.entries()) {
      if (attempts >= cap) break;
      const outcome = await this.tryModel(model, call, cap - attempts, (n) => (attempts += n));
      if (outcome.kind === 'ok') {
        // Only the model asked is cached: a fallback's answer must not stand in for it once it is back.
        if (index === 0) await this.toCache(call, outcome.reply);
        return this.result(model, outcome.reply, index > 0, attempts);
      }
      if (outcome.kind === 'failed') throw outcome.error;
      failures.push(outcome.error);
      if (index < chain.length - 1) this.log?.warn({ agent: call.agent, model, next: chain[index + 1], category: outcome.error.failure.category }, 'model unavailable, falling back');
    }
    const tried = failures.map((e) => e.message).join('; ');
    const why = call.critical ? ' (critical: no fallback)' : attempts >= cap && failures.length < chain.length ? ` (attempt cap ${cap} reached)` : '';
    const last = failures.at(-1);
    throw new ModelCallError(`model unavailable after ${attempts} attempt(s)${why}: ${tried}`, UNAVAILABLE, call.model, last?.status ?? null, { cause: last });
  }

  /** A cache hit costs nothing and counts no tokens: no provider was asked. */
  private async fromCache(call: GatewayCall): Promise<GatewayResult | null> {
    if (!this.cache || !ModelCache.accepts(call.request)) return null;
    try {
      const response = await this.cache.get(call.model, call.request);
      if (!response) return null;
      this.log?.debug({ agent: call.agent, model: call.model }, 'model cache hit');
      return { response, usage: { input_tokens: 0, output_tokens: 0, cost_usd: 0 }, model: call.model, degraded: false, attempts: 0, cached: true };
    } catch (err) {
      // A cache that cannot be read is a miss; the call itself must not fail for it.
      this.log?.warn({ err, model: call.model }, 'model cache read failed, calling the model');
      return null;
    }
  }

  private async toCache(call: GatewayCall, reply: ProviderReply): Promise<void> {
    if (!this.cache || !ModelCache.accepts(call.request)) return;
    try {
      await this.cache.set(call.model, call.request, reply.response);
    } catch (err) {
      this.log?.warn({ err, model: call.model }, 'model cache write failed');
    }
  }

  private reportCall(model: string, startedAt: number, outcome: string): void {
    try {
      this.onCall?.(model, this.clock.now() - startedAt, outcome);
    } catch (err) {
      this.log?.warn({ err, model }, 'onCall listener failed');
    }
  }

  /** Keep `previous`'s circuits (a reload): an outage does not end because a config file was saved. */
  adoptCircuits(previous: ModelGateway): void {
    this.circuitRegistry.adopt(previous.circuitRegistry);
  }

  /** Every model's circuit, for `agentd status`. */
  circuits(): CircuitInfo[] {
    return this.circuitRegistry.list();
  }

  /** One model's circuit state; a model never called has a closed circuit. */
  circuitState(model: string): string {
    return this.circuits().find((c) => c.model === model)?.state ?? 'closed';
  }

  /** When an open circuit lets its half-open probe through (epoch ms); null while calls go through (closed, half-open). */
  circuitReadyAt(model: string): number | null {
    const info = this.circuits().find((c) => c.model === model);
    return info?.state === 'open' && info.opened_at !== null ? info.opened_at + this.cooldownMs : null;
  }

  /** Retry one model until it answers, fails for good, or may be replaced by a fallback. */
  private async tryModel(model: string, call: GatewayCall, allowed: number, spend: (n: number) => void): Promise<ModelOutcome> {
    const { provider, name, config } = this.resolve(model);
    const policy = normalisePolicy(call.retry ?? this.config.defaults.retry);
    const breaker = this.circuitRegistry.get(model);
    for (let attempt = 1; ; attempt++) {
      if (call.signal.aborted) return { kind: 'failed', error: cancelled(model, call.signal.reason) };
      if (breaker.acquire() === 'rejected') {
        const info = breaker.info();
        const error = new ModelCallError(`${model}: circuit open after ${info.failures} failure(s), not calling`, UNAVAILABLE, model, null);
        return { kind: 'unavailable', error };
      }
      spend(1);
      let error: ModelCallError;
      const startedAt = this.clock.now();
      try {
        const reply = await provider.complete(name, call.request, { signal: call.signal, timeoutMs: config?.timeoutMs ?? this.config.modelTimeoutMs });
        breaker.recordSuccess();
        this.reportCall(model, startedAt, 'ok');
        return { kind: 'ok', reply };
      } catch (err) {
        error = asModelCallError(err, model);
      }
      this.reportCall(model, startedAt, error.failure.category);
      // Only availability failures say the model is down; a 400 proves it is up.
      if (error.failure.category === 'cancelled') breaker.release();
      else if (error.failure.availability) breaker.recordFailure();
      else breaker.recordSuccess();

      const decision = decideRetry(policy, error.failure, attempt, allowed - attempt, this.random);
      if (decision.kind === 'give_up') return error.failure.availability ? { kind: 'unavailable', error } : { kind: 'failed', error };
      this.log?.warn(
        { agent: call.agent, model, attempt, delayMs: decision.delayMs, category: error.failure.category, status: error.status },
        'model call failed, retrying',
      );
      try {
        await this.clock.sleep(decision.delayMs, call.signal);
      } catch (err) {
        return { kind: 'failed', error: cancelled(model, err) };
      }
    }
  }

  private resolve(model: string): { provider: ModelProvider; name: string; config: ProviderConfig | undefined } {
    const slash = model.indexOf('/');
    const providerName = slash > 0 ? model.slice(0, slash) : '';
    const name = model.slice(slash + 1);
    const config = Object.hasOwn(this.config.providers, providerName) ? this.config.providers[providerName] : undefined;
    let provider = this.providers.get(providerName);
    if (!provider && config) {
      provider = config.kind === 'mock' ? new MockProvider(config, { now: () => this.clock.now() }) : new OpenAIProvider(config, { now: () => this.clock.now() });
      this.providers.set(providerName, provider);
    }
    if (!provider || name === '') {
      const known = [...new Set([...Object.keys(this.config.providers), ...this.providers.keys()])].sort().join(', ');
      throw new ModelCallError(
        `model ${JSON.stringify(model)} names no configured provider (known: ${known}); models are <provider>/<name>`,
        { category: 'bad_request', retryable: false, retryAfterMs: null, availability: false },
        model,
        null,
      );
    }
    return { provider, name, config };
  }

  private result(model: string, reply: ProviderReply, degraded: boolean, attempts: number): GatewayResult {
    if (!isPriced(this.config.models, model) && !this.unpricedWarned.has(model)) {
      this.unpricedWarned.add(model);
      // The mock is free by design; a real model without a price would let max_cost never trip.
      if (this.config.providers[model.split('/')[0]!]?.kind !== 'mock') this.log?.warn({ model }, 'model has no price in agentd.yaml, its cost counts as 0');
    }
    const usage = reply.usage;
    return {
      response: reply.response,
      usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, cost_usd: costUsd(this.config.models, model, usage) },
      model,
      degraded,
      attempts,
      cached: false,
      ...(reply.raw ? { raw: reply.raw } : {}),
    };
  }
}

function cancelled(model: string, cause: unknown): ModelCallError {
  return new ModelCallError(`${model}: the call was cancelled`, CANCELLED, model, null, { cause });
}

/** A provider that throws something else has a bug; retrying the same bug helps nobody. */
function asModelCallError(err: unknown, model: string): ModelCallError {
  if (err instanceof ModelCallError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ModelCallError(`${model}: provider failed unexpectedly: ${message}`, { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false }, model, null, { cause: err });
}
