import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RunTrace, type SpanLine } from '../src/observe/trace.js';

/**
 * The order of a trace's lines now that spans are written after the event
 * loop's turn (src/observe/trace.ts): a span ended just before the run is
 * finished is still written, and before the run span; a span whose payload
 * cannot be built is reported and the rest of the trace is kept.
 */

async function newTrace(onError?: (err: unknown) => void): Promise<{ trace: RunTrace; file: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-trace-writes-'));
  const file = path.join(dir, 'run.jsonl');
  let now = 1_000;
  const trace = new RunTrace({ file, capture: 'redacted', clock: { now: () => (now += 5) }, attributes: { 'agentd.agent': 'a' }, ...(onError ? { onError } : {}) });
  return { trace, file };
}

async function linesOf(file: string): Promise<SpanLine[]> {
  return (await fs.readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as SpanLine);
}

test('spans ended in the same turn as finish are written, in order, before the run span', async () => {
  const { trace, file } = await newTrace();
  const model = trace.model(1, 'mock/echo', { messages: [{ role: 'user', content: 'mail jane.doe@example.com' }] });
  model.completed({ response: { content: 'ok', tool_calls: [] }, model: 'mock/echo', usage: { input_tokens: 3, output_tokens: 1, cost_usd: 0 }, attempts: 1, degraded: false, cached: false } as never);
  trace.tool(2, 'lookup', 'read', { q: 1 }).completed({ found: true });
  await trace.finish('ok', {});
  const lines = await linesOf(file);
  assert.deepEqual(
    lines.map((l) => l.kind),
    ['model', 'tool', 'run'],
  );
  const input = JSON.stringify(lines[0]!.attributes['gen_ai.input.messages']);
  assert.ok(!input.includes('jane.doe@example.com'), `the payload is redacted when written: ${input}`);
  assert.equal(lines[1]!.attributes['agentd.tool.result'] !== undefined, true);
});

test('a span whose payload throws while it is built is reported; the spans after it and the run span are written', async () => {
  const errors: unknown[] = [];
  const { trace, file } = await newTrace((err) => errors.push(err));
  const hostile = {
    toJSON() {
      throw new Error('cannot serialize');
    },
  };
  trace.tool(1, 'bad', 'read', { value: hostile }).completed(null);
  trace.tool(2, 'good', 'read', {}).completed('fine');
  await trace.finish('ok', {});
  const lines = await linesOf(file);
  assert.deepEqual(
    lines.map((l) => l.name),
    ['execute_tool good', 'run a'],
  );
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /cannot serialize/);
});
