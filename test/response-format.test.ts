import assert from 'node:assert/strict';
import test from 'node:test';
import { responseFormatFor } from '../src/builtin/response-format.js';
import type { ProviderConfig } from '../src/config/types.js';

/** Which requests of the built-in model agent carry response_format (src/builtin/response-format.ts). */

const provider = (name: string, kind: 'openai' | 'mock'): ProviderConfig => ({ name, kind, baseUrl: null, apiKeyEnv: null }) as ProviderConfig;
const providers = { local: provider('local', 'openai'), demo: provider('demo', 'mock') };
const schema = { type: 'object', required: ['total'], properties: { total: { type: 'number' } } };

test('an output_schema on an OpenAI-compatible provider becomes a json_schema response_format (not strict); a mock provider, no schema or no model gets none', () => {
  assert.deepEqual(responseFormatFor({ model: 'local/llama3.1:8b', outputSchema: schema }, { providers }), { type: 'json_schema', json_schema: { name: 'output', schema, strict: false } });
  assert.equal(responseFormatFor({ model: 'demo/extractor', outputSchema: schema }, { providers }), null);
  assert.equal(responseFormatFor({ model: 'local/llama3.1:8b', outputSchema: null }, { providers }), null);
  assert.equal(responseFormatFor({ model: null, outputSchema: schema }, { providers }), null);
  assert.equal(responseFormatFor({ model: 'constructor/x', outputSchema: schema }, { providers }), null, 'only configured providers');
});
