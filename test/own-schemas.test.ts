import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ValidateFunction } from 'ajv';
import { prebuiltSource } from '../src/schema/build-prebuilt.js';
import { prebuiltKey, prebuiltValidator } from '../src/schema/prebuilt.js';
import { ajv, compile, OWN_OPTIONS, ownSchemas } from '../src/schema/validate.js';
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
      assert.equal(ajv().validateSchema(schema), true, `${JSON.stringify(schema).slice(0, 200)}: ${ajv().errorsText(ajv().errors)}`);
    }
  });

  it("every own schema gets a prebuilt validator from the build (schema/build-prebuilt.ts), which answers as ajv compiling the schema now", () => {
    const Ajv = AjvModule.default ?? (AjvModule as unknown as typeof AjvModule.default);
    const samples: unknown[] = [{}, { bogus: 1 }, null, [], 'x', 42, { version: 1, command: 'x', budget: { max_stepz: 1 }, id: '../x', type: 'start' }];
    // What `npm run build` writes, made here (a build by tsc alone has no file), beside the compiled tests so ajv's runtime resolves.
    const file = fileURLToPath(new URL(`./.prebuilt-${process.pid}.cjs`, import.meta.url));
    fs.writeFileSync(file, prebuiltSource());
    let built: Record<string, ValidateFunction>;
    try {
      built = createRequire(import.meta.url)(file) as Record<string, ValidateFunction>;
    } finally {
      fs.rmSync(file, { force: true });
    }
    for (const schema of ownSchemas) {
      const prebuilt = built[prebuiltKey(schema)];
      assert.ok(prebuilt, `no prebuilt validator for ${JSON.stringify(schema).slice(0, 120)}`);
      const now = new Ajv(OWN_OPTIONS).compile(schema);
      for (const sample of samples) {
        assert.equal(prebuilt(sample), now(sample));
        assert.deepEqual(prebuilt.errors ?? null, now.errors ?? null, JSON.stringify(sample));
      }
    }
  });

  it('a schema changed since the build has no prebuilt validator and is compiled by ajv', () => {
    const changed = { ...(ownSchemas[0] as Record<string, unknown>), description: 'changed after the build' };
    assert.equal(prebuiltValidator(changed), null);
    const validate = compile(changed);
    assert.equal(typeof validate({}), 'boolean');
  });

  it('a schema a person wrote is still checked against the meta-schema', () => {
    const bad = compile({ type: 'object', properties: { a: { type: 'nonsense' } } }, { own: false });
    assert.throws(() => bad({}), /schema is invalid/);
  });
});
