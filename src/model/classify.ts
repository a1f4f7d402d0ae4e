import type { FailureClass } from './types.js';

/** The headers a failure carries; a fetch `Headers` fits. */
export interface HeaderSource {
  get(name: string): string | null;
}

/**
 * A model call failure as it happened, before anyone decided what it means.
 * Providers build one of these and hand it to `classifyFailure`; nothing else
 * inspects status codes or error objects.
 */
export type RawFailure =
  | { kind: 'http'; status: number; headers: HeaderSource; body: string }
  /** Our own per-call timeout fired. */
  | { kind: 'timeout' }
  /** DNS, refused, reset: the request may never have reached the provider. */
  | { kind: 'connection' }
  /** The caller's signal aborted (the run was stopped). */
  | { kind: 'aborted' }
  /** A 2xx whose body is an error object or not a valid completion. */
  | { kind: 'bad_body' };

/** Statuses that say the request itself is wrong: retrying or another model would not help. */
const BAD_REQUEST = new Set([400, 404, 422]);
const AUTH = new Set([401, 403]);
/** 4xx statuses that are about timing, not about the request. */
const RETRIED_4XX = new Set([408, 409, 425, 429]);

/**
 * The one decision about a failed model call (docs/architecture.md "Rules"): its
 * error category, whether retrying may help, how long the provider asked us to
 * wait, and whether it is an availability failure (the only kind that may
 * fall back to another model). `now` is epoch ms, for HTTP-date Retry-After.
 */
export function classifyFailure(raw: RawFailure, now: number): FailureClass {
  switch (raw.kind) {
    case 'timeout':
      return { category: 'timeout', retryable: true, retryAfterMs: null, availability: true };
    case 'connection':
    case 'bad_body':
      return { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true };
    case 'aborted':
      return { category: 'cancelled', retryable: false, retryAfterMs: null, availability: false };
    case 'http':
      return classifyStatus(raw.status, retryAfterOf(raw.headers, now));
  }
}

function classifyStatus(status: number, retryAfterMs: number | null): FailureClass {
  if (AUTH.has(status)) return { category: 'auth', retryable: false, retryAfterMs: null, availability: false };
  if (BAD_REQUEST.has(status)) return { category: 'bad_request', retryable: false, retryAfterMs: null, availability: false };
  if (status === 429) return { category: 'rate_limit', retryable: true, retryAfterMs, availability: true };
  // 408 is the server telling us the request took too long: the same remedy as our own timeout.
  if (status === 408) return { category: 'timeout', retryable: true, retryAfterMs, availability: true };
  if (RETRIED_4XX.has(status) || status >= 500) return { category: 'provider_error', retryable: true, retryAfterMs, availability: true };
  // Any other 4xx (402, 405, 413...) is about this request or account; README "Models": never fall back on a 4xx.
  if (status >= 400) return { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false };
  // 1xx/3xx reaching us means a misbehaving proxy; treat it like a garbled reply.
  return { category: 'provider_error', retryable: true, retryAfterMs, availability: true };
}

/** `retry-after-ms` (OpenAI, Azure) is more precise than `retry-after`, so it wins. */
function retryAfterOf(headers: HeaderSource, now: number): number | null {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  return parseRetryAfter(headers.get('retry-after'), now);
}

/**
 * Retry-After as delta-seconds (`120`, also `1.5` which some proxies send) or
 * an HTTP date, to milliseconds from `now`. A date in the past is 0; anything
 * unparseable is null (as if absent).
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  // Date.parse alone would accept "5" or "-1" as years; the guard above took the numeric forms.
  if (!/[a-z]/i.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}
