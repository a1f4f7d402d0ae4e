import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';

/**
 * agentd's own schemas, validated by code ajv generated at build time
 * (`npm run build` runs schema/build-prebuilt.ts after tsc; ajv's
 * `standalone`): start-up then neither loads ajv's compiler nor compiles
 * agentd.yaml's and the definition's schemas, which was about a fifth of the
 * daemon's fixed start-up work (README.md, Benchmark: P4). Each validator is
 * found by a hash of its schema's text, so a schema changed since the build
 * has none and is compiled by ajv as before; so is every schema when the
 * file is missing (a build by `tsc` alone).
 */

/** Written next to this module by build-prebuilt.ts. */
export const PREBUILT_FILE = 'prebuilt-validators.cjs';

/** The export name of a schema's validator: a hash of its JSON text. */
export function prebuiltKey(schema: object): string {
  return `v${createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32)}`;
}

let prebuilt: Record<string, ValidateFunction> | null | undefined;

/** The build's validator for `schema`, or null when there is none for this text. */
export function prebuiltValidator(schema: object): ValidateFunction | null {
  if (prebuilt === undefined) {
    try {
      prebuilt = createRequire(import.meta.url)(`./${PREBUILT_FILE}`) as Record<string, ValidateFunction>;
    } catch {
      prebuilt = null; // not built: ajv compiles every schema
    }
  }
  return prebuilt?.[prebuiltKey(schema)] ?? null;
}
