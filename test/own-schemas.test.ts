import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ajv, compile, ownSchemas } from '../src/schema/validate.js';
// Every module that compiles one of agentd's own schemas when it loads.
import '../src/config/agent-definition.js';
import '../src/config/daemon-config.js';
import '../src/protocol/messages.js';
import '../src/model/provider-mock.js';
import '../src/eval/cases.js';
import '../src/store/tasks.js';
import '../src/store/outbox.js';

describe('own schemas', () => {
  it('every schema of agentd\'s own is a valid JSON Schema (the daemon compiles them without the meta-schema check)', () => {
    assert.ok(ownSchemas.length >= 10, `only ${ownSchemas.length} own schemas registered`);
    for (const schema of ownSchemas) {
      assert.equal(ajv.validateSchema(schema), true, `${JSON.stringify(schema).slice(0, 200)}: ${ajv.errorsText(ajv.errors)}`);
    }
  });

  it('a schema a person wrote is still checked against the meta-schema', () => {
    const bad = compile({ type: 'object', properties: { a: { type: 'nonsense' } } }, { own: false });
    assert.throws(() => bad({}), /schema is invalid/);
  });
});
