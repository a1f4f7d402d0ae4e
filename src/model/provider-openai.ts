import fs from 'node:fs';
import type { ProviderConfig } from '../config/types.js';
import { keyFromText, keySource } from '../security/provider-keys.js';
import type { ModelRequest, ModelResponse, ToolCall } from '../protocol/messages.js';
import { classifyFailure, type RawFailure } from './classify.js';
import { PostTimeoutError, postJson, type PostReply } from './http-post.js';
import { estimateRequestTokens, estimateTokens } from './pricing.js';
import { ModelCallError, type ModelProvider, type ProviderReply } from './types.js';

/** Ports of the OpenAI client; the defaults are the real ones. */
export interface OpenAIProviderDeps {
  /** Where the API key variable is read from, at every call. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Epoch ms, for HTTP-date Retry-After. Default: `Date.now`. */
  now?: () => number;
}

/** How much of an error body goes into a message: enough to read, not a whole HTML page. */
const DETAIL_CHARS = 300;

/**
 * A client of any OpenAI-compatible chat completions endpoint (OpenAI, vLLM,
 * Ollama, llama.cpp server, LiteLLM). Every failure is a ModelCallError whose
 * `failure` came from classifyFailure; the API key never appears in one.
 */
export class OpenAIProvider implements ModelProvider {
  private readonly env: NodeJS.ProcessEnv;
  private readonly now: () => number;
  /** Parsed at the first call: a base_url that is no URL fails that call, as fetch did, not the daemon. */
  private url: URL | null = null;

  constructor(
    private readonly config: ProviderConfig,
    deps: OpenAIProviderDeps = {},
  ) {
    if (!config.baseUrl) throw new Error(`provider ${config.name}: kind openai needs base_url`);
    this.env = deps.env ?? process.env;
    this.now = deps.now ?? Date.now;
  }

  async complete(name: string, request: ModelRequest, options: { signal: AbortSignal; timeoutMs: number }): Promise<ProviderReply> {
    const model = `${this.config.name}/${name}`;
    const key = this.apiKey(model);
    if (options.signal.aborted) throw this.fail(model, { kind: 'aborted' }, 'the call was cancelled before it was sent', null, key);

    // The caller's signal and the timeout both tear down the request and its socket (model/http-post.ts).
    let res: PostReply;
    try {
      const headers = { 'content-type': 'application/json', accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
      this.url ??= new URL(`${this.config.baseUrl}/chat/completions`);
      res = await postJson(this.url, headers, JSON.stringify(providerBody(name, request)), options);
    } catch (err) {
      if (err instanceof PostTimeoutError) throw this.fail(model, { kind: 'timeout' }, `no complete reply within ${options.timeoutMs}ms`, null, key, err);
      if (options.signal.aborted) throw this.fail(model, { kind: 'aborted' }, 'the call was cancelled', null, key, err);
      throw this.fail(model, { kind: 'connection' }, `connection failed: ${connectionDetail(err)}`, null, key, err);
    }
    const text = res.text;
    if (res.status < 200 || res.status > 299) {
      const raw: RawFailure = { kind: 'http', status: res.status, headers: res.headers, body: text };
      throw this.fail(model, raw, `HTTP ${res.status}: ${errorDetail(text) || res.statusText || 'no detail'}`, res.status, key);
    }
    const parsed = parseCompletion(text, request);
    if (typeof parsed === 'string') throw this.fail(model, { kind: 'bad_body' }, `HTTP ${res.status} but ${parsed}`, res.status, key);
    return parsed;
  }

  /** Read at call time so a rotated key is picked up without a restart. */
  private apiKey(model: string): string | null {
    const source = keySource(this.config, this.env);
    if (source.kind === 'file') return this.keyFromFile(model, source.path, source.field);
    if (source.kind === 'none') return null;
    const variable = source.name;
    const key = this.env[variable];
    if (!key) {
      const failure = { category: 'auth', retryable: false, retryAfterMs: null, availability: false } as const;
      throw new ModelCallError(`${model}: environment variable ${variable} (api_key_env of provider ${this.config.name}) is not set`, failure, model, null);
    }
    return key;
  }

  /** api_key_file or a systemd credential, read now (a rotated file counts from the next call). */
  private keyFromFile(model: string, file: string, field: string): string {
    let key = '';
    try {
      key = keyFromText(fs.readFileSync(file, 'utf8'));
    } catch {
      // reported below, without the error's detail (it names nothing secret, but keeps one message)
    }
    if (!key) {
      const failure = { category: 'auth', retryable: false, retryAfterMs: null, availability: false } as const;
      throw new ModelCallError(`${model}: cannot read the key from ${file} (${field})`, failure, model, null);
    }
    return key;
  }

  private fail(model: string, raw: RawFailure, detail: string, status: number | null, key: string | null, cause?: unknown): ModelCallError {
    // A provider may echo the Authorization header back in an error body.
    const safe = key ? detail.split(key).join('[redacted]') : detail;
    return new ModelCallError(`${model}: ${safe}`, classifyFailure(raw, this.now()), model, status, cause === undefined ? undefined : { cause });
  }
}

/** Fields the provider never sees: streaming is answered by agentd's endpoint from the whole reply. */
const NOT_SENT = new Set(['model', 'stream', 'stream_options']);

/**
 * The body sent to the provider: every field of the request as the agent wrote
 * it (response_format, tool_choice, seed, top_p, max_completion_tokens, ...),
 * with the provider's own model name. An empty tools list is left out, as some
 * servers refuse one.
 */
export function providerBody(name: string, request: ModelRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model: name };
  for (const [field, value] of Object.entries(request)) {
    if (value === undefined || NOT_SENT.has(field)) continue;
    if (field === 'tools' && Array.isArray(value) && value.length === 0) continue;
    body[field] = value;
  }
  return body;
}

/** The error text of an OpenAI-style body `{error: {message}}`, or the start of the raw body. */
function errorDetail(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    const error = isRecord(body) ? body.error : undefined;
    const message = isRecord(error) ? error.message : error;
    if (typeof message === 'string') return message.slice(0, DETAIL_CHARS);
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return text.trim().slice(0, DETAIL_CHARS);
}

/** The system error's code (ECONNREFUSED, ENOTFOUND...), the useful part of a connection failure. */
function connectionDetail(err: unknown): string {
  const code = isRecord(err) ? err.code : undefined;
  if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  const cause = err instanceof Error ? err.cause : undefined;
  if (isRecord(cause) && typeof cause.code === 'string') return cause.code;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** A completion body → ProviderReply, or a sentence saying why it is not one. */
function parseCompletion(text: string, request: ModelRequest): ProviderReply | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `the body is not JSON: ${JSON.stringify(text.slice(0, 80))}`;
  }
  if (!isRecord(body)) return 'the body is not a JSON object';
  if (body.error !== undefined && body.error !== null) return `the body is an error: ${errorDetail(text)}`;
  const choice = Array.isArray(body.choices) ? body.choices[0] : undefined;
  const message = isRecord(choice) ? choice.message : undefined;
  if (!isRecord(message)) return 'the body has no choices[0].message';
  const content = message.content;
  if (content !== null && content !== undefined && typeof content !== 'string') return 'choices[0].message.content is not a string';
  const toolCalls = parseToolCalls(message.tool_calls);
  if (typeof toolCalls === 'string') return toolCalls;
  const response: ModelResponse = { content: content ?? null, tool_calls: toolCalls };
  // Some local servers omit usage; an estimate keeps token budgets meaningful.
  const usage = isRecord(body.usage) ? body.usage : {};
  const outputChars = (response.content ?? '').length + toolCalls.reduce((n, c) => n + c.function.name.length + c.function.arguments.length, 0);
  return {
    response,
    usage: {
      input_tokens: count(usage.prompt_tokens) ?? estimateRequestTokens(request),
      output_tokens: count(usage.completion_tokens) ?? estimateTokens(outputChars),
    },
    raw: body,
  };
}

function parseToolCalls(value: unknown): ToolCall[] | string {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return 'choices[0].message.tool_calls is not an array';
  const calls: ToolCall[] = [];
  for (const [i, item] of value.entries()) {
    const fn = isRecord(item) ? item.function : undefined;
    if (!isRecord(item) || typeof item.id !== 'string' || !isRecord(fn) || typeof fn.name !== 'string') {
      return `tool_calls[${i}] lacks an id or function.name`;
    }
    // The spec says a JSON string; some servers (older Ollama) send the object itself.
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    calls.push({ id: item.id, type: 'function', function: { name: fn.name, arguments: args } });
  }
  return calls;
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
