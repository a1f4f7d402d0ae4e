import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashLine } from '../src/observe/audit.js';
import type { ModelRequest } from '../src/protocol/messages.js';
import { hashedRequest } from '../src/run/model-call.js';
import { canonicalJson, requestHash } from '../src/store/journal.js';

// The values below were computed by the implementation before canonicalJson was rewritten for speed. Journals and
// audit logs written by any earlier version hold these hashes: a change here would make every recorded call replay
// as diverged and every audit line fail `agentd audit verify`.

const request = {
  model: 'stand/echo',
  stream: true,
  stream_options: { include_usage: true },
  messages: [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'ping ü "q" \n\u2028 😀' },
  ],
  max_tokens: 16,
  temperature: 0,
  tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' }, B: { type: 'integer' } }, required: ['a'] } } }],
  response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' }, strict: true } },
  seed: 7,
  top_p: 0.5,
  z: undefined,
  b: [1, null, 'x', { y: 2, x: [], w: undefined }, -0.5e-7, true],
  '': 1,
  B: 2,
  é: 3,
  'a\u0000b': false,
} as unknown as ModelRequest;

test('canonical JSON sorts keys by code unit, drops undefined members and keeps arrays in order', () => {
  assert.equal(canonicalJson({ b: 1, a: [3, { d: undefined, c: null }], B: 'x', é: true }), '{"B":"x","a":[3,{"c":null}],"b":1,"é":true}');
  assert.equal(canonicalJson([]), '[]');
  assert.equal(canonicalJson({}), '{}');
  assert.equal(canonicalJson(undefined), 'null');
});

test('a model request hashes as it did before: delivery fields left out, the rest canonical', () => {
  assert.equal(requestHash('model', 'stand/echo', hashedRequest(request)), '746b5df17a4bcaa2a2c5564707933626');
  assert.deepEqual(Object.keys(hashedRequest(request)).includes('stream'), false);
  // A streamed call and a plain one are the same call for replay.
  assert.equal(requestHash('model', 'm', hashedRequest({ ...request, stream: false } as ModelRequest)), requestHash('model', 'm', hashedRequest(request)));
});

test('a "__proto__" field of a request is hashed as a field, as before', () => {
  const parsed = JSON.parse('{"messages":[{"role":"user","content":"hi"}],"__proto__":{"polluted":true},"stream":true}') as ModelRequest;
  assert.equal(canonicalJson(hashedRequest(parsed)), '{"__proto__":{"polluted":true},"messages":[{"content":"hi","role":"user"}]}');
  assert.equal(requestHash('model', 'm', hashedRequest(parsed)), 'fe131853615afe573f59763a32adc172');
});

test('an audit line hashes as it did before', () => {
  const line = { v: 1 as const, seq: 3, at: '2026-11-30T00:00:00.000Z', prev: '0'.repeat(64), event: 'claim' as const, agent: 'a', task_id: 't', run_id: null, details: { n: [1, { b: 1, a: 2 }] } };
  assert.equal(hashLine(line), 'bfb1cd2902ea8c866cfd07e13fe165262462be51cb6a24b1e4b61f7ec672a2c7');
});
