import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { resolveDaemonConfig } from '../src/config/daemon-config.js';
import type { AgentDefinition } from '../src/config/types.js';
import { silentLogger } from '../src/observe/logger.js';
import { compiledSchema } from '../src/schema/compiled.js';
import { ToolRunner } from '../src/tools/tool-runner.js';
import { useHome } from './helpers/hooks.js';

/** A definition whose tool input_schema and output_schema both carry an `$id`, as a shared schema file would. */
const DEFINITION = {
  version: '1',
  command: ['node', 'agent.mjs'],
  output_schema: { $id: 'https://example.test/answer.json', type: 'object', required: ['answer'] },
  tools: {
    lookup: {
      command: ['node', 'lookup.mjs'],
      input_schema: { $id: 'https://example.test/lookup-args.json', type: 'object', required: ['q'], properties: { q: { type: 'string' } } },
    },
  },
};

describe('the compiled-schema cache', () => {
  const home = useHome();

  async function load(): Promise<AgentDefinition> {
    const def = await loadAgentDefinition(home.paths, resolveDaemonConfig(home.paths, 'agentd.yaml', {}), 'ids');
    assert.ok(def, 'the definition loads');
    return def;
  }

  it('the tool runner checks arguments against two separately loaded copies of one definition whose input_schema has an $id', async () => {
    await home.write('agents/ids/agent.json', DEFINITION);
    const first = await load();
    const second = await load();
    assert.notEqual(first.tools.lookup!.inputSchema, second.tools.lookup!.inputSchema, 'two loads give two schema objects');
    const ran: unknown[] = [];
    const tools = new ToolRunner(home.root, silentLogger(), { run: async (_tool, _cwd, args) => (ran.push(args), { ok: true, result: { found: true } }) });
    const call = (agent: AgentDefinition, args: Record<string, unknown>) => tools.call({ agent, taskId: 't1', runId: 'r1', seq: 1, name: 'lookup', args });

    const bad1 = await call(first, { q: 1 });
    const bad2 = await call(second, { q: 1 });
    assert.deepEqual(bad1.ok ? null : [bad1.code, bad1.message], ['invalid_args', 'arguments for lookup: q must be string']);
    assert.deepEqual(bad2.ok ? null : [bad2.code, bad2.message], ['invalid_args', 'arguments for lookup: q must be string']);
    assert.deepEqual(await call(second, { q: 'x' }), { ok: true, result: { found: true } });
    assert.deepEqual(ran, [{ q: 'x' }], 'only the valid call ran');
  });

  it('a definition whose output_schema has an $id loads again (a reload) without "already exists"', async () => {
    await home.write('agents/ids/agent.json', DEFINITION);
    await load();
    const again = await load();
    assert.deepEqual(again.outputSchema, DEFINITION.output_schema);
  });

  it('a changed schema under the same $id validates against the new text, not the stale one', () => {
    const before = compiledSchema({ $id: 'https://example.test/changing.json', type: 'object', required: ['a'] });
    const after = compiledSchema({ $id: 'https://example.test/changing.json', type: 'object', required: ['b'] });
    assert.equal(before({ a: 1 }), true);
    assert.equal(after({ a: 1 }), false, 'the new text requires b');
    assert.equal(after({ b: 1 }), true);
    assert.equal(before({ a: 1 }), true, 'the old validator keeps working for whoever holds it');
  });

  it('copies with the same text share one compiled function', () => {
    const schema = () => ({ type: 'object', properties: { n: { type: 'integer' } } });
    assert.equal(compiledSchema(schema()), compiledSchema(schema()));
  });
});
