import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyFailure, parseRetryAfter } from '../src/model/classify.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const http = (status: number, headers: Record<string, string> = {}) => classifyFailure({ kind: 'http', status, headers: new Headers(headers), body: '' }, NOW);

test('408, 409, 425, 429 and 5xx are retryable availability failures', () => {
  for (const status of [408, 409, 425, 429, 500, 502, 503, 504, 529]) {
    const failure = http(status);
    assert.equal(failure.retryable, true, `HTTP ${status} retryable`);
    assert.equal(failure.availability, true, `HTTP ${status} availability`);
  }
  assert.equal(http(429).category, 'rate_limit');
  assert.equal(http(408).category, 'timeout');
  assert.equal(http(409).category, 'provider_error');
  assert.equal(http(503).category, 'provider_error');
});

test('400, 401, 403, 404 and 422 are never retried and never fall back', () => {
  const expected: Record<number, string> = { 400: 'bad_request', 401: 'auth', 403: 'auth', 404: 'bad_request', 422: 'bad_request' };
  for (const [status, category] of Object.entries(expected)) {
    assert.deepEqual(http(Number(status)), { category, retryable: false, retryAfterMs: null, availability: false }, `HTTP ${status}`);
  }
});

test('other 4xx statuses are provider errors that are not retried', () => {
  for (const status of [402, 405, 413]) assert.deepEqual(http(status), { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false });
});

test('timeouts, connection errors and bad 200 bodies are retried; an abort is cancelled', () => {
  assert.deepEqual(classifyFailure({ kind: 'timeout' }, NOW), { category: 'timeout', retryable: true, retryAfterMs: null, availability: true });
  assert.deepEqual(classifyFailure({ kind: 'connection' }, NOW), { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true });
  assert.deepEqual(classifyFailure({ kind: 'bad_body' }, NOW), { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true });
  assert.deepEqual(classifyFailure({ kind: 'aborted' }, NOW), { category: 'cancelled', retryable: false, retryAfterMs: null, availability: false });
});

test('Retry-After on a 429 or 503 is read in seconds or as an HTTP date', () => {
  assert.equal(http(429, { 'retry-after': '7' }).retryAfterMs, 7000);
  assert.equal(http(503, { 'retry-after': new Date(NOW + 12_000).toUTCString() }).retryAfterMs, 12_000);
  assert.equal(http(429, { 'retry-after-ms': '1500', 'retry-after': '9' }).retryAfterMs, 1500, 'retry-after-ms is more precise and wins');
  assert.equal(http(401, { 'retry-after': '7' }).retryAfterMs, null, 'a failure that is not retried has no wait');
});

test('parseRetryAfter accepts seconds, decimals and dates, and ignores garbage', () => {
  assert.equal(parseRetryAfter('120', NOW), 120_000);
  assert.equal(parseRetryAfter(' 1.5 ', NOW), 1500);
  assert.equal(parseRetryAfter('0', NOW), 0);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', NOW), 30_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', NOW), 0, 'a date in the past means now');
  assert.equal(parseRetryAfter('-5', NOW), null);
  assert.equal(parseRetryAfter('soon', NOW), null);
  assert.equal(parseRetryAfter('', NOW), null);
  assert.equal(parseRetryAfter(null, NOW), null);
});
