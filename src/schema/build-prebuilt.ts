import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { PREBUILT_FILE, prebuiltKey } from './prebuilt.js';
import { OWN_OPTIONS, ownSchemas } from './validate.js';
// Every module that compiles one of agentd's own schemas when it loads (as test/own-schemas.test.ts).
import '../config/agent-definition.js';
import '../config/daemon-config.js';
import '../protocol/messages.js';
import '../model/provider-mock.js';
import '../eval/cases.js';
import '../store/tasks.js';
import '../store/outbox.js';

/**
 * `node dist/src/schema/build-prebuilt.js` (run by `npm run build` after tsc):
 * ajv's standalone code for each of agentd's own schemas, one export per
 * schema named by schema/prebuilt.ts prebuiltKey, written as CommonJS next to
 * prebuilt.js (its `require`s of ajv's small runtime helpers resolve from
 * there). Same options as the compile at run time.
 */
export function prebuiltSource(): string {
  const require = createRequire(import.meta.url);
  type AjvClass = typeof import('ajv').default;
  const ajvModule = require('ajv') as { default?: AjvClass };
  const Ajv = ajvModule.default ?? (ajvModule as unknown as AjvClass);
  const standalone = require('ajv/dist/standalone') as { default: (ajv: InstanceType<AjvClass>, refs: Record<string, string>) => string };
  const ajv = new Ajv({ ...OWN_OPTIONS, code: { source: true } });
  const refs: Record<string, string> = {};
  for (const schema of ownSchemas) {
    const key = prebuiltKey(schema);
    if (refs[key]) continue;
    ajv.addSchema(schema, key);
    refs[key] = key;
  }
  return standalone.default(ajv, refs);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(new URL(`./${PREBUILT_FILE}`, import.meta.url), prebuiltSource());
}
