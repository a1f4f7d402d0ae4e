import { createRequire } from 'node:module';
import type AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { prebuiltValidator } from './prebuilt.js';

type Ajv = InstanceType<typeof AjvModule.default>;

const OPTIONS = { allErrors: true, strict: false, allowUnionTypes: true, verbose: true };
/** What agentd's own schemas are compiled with, at run time or at build time (schema/build-prebuilt.ts). */
export const OWN_OPTIONS = { ...OPTIONS, validateSchema: false };

/** ajv is loaded when a schema is first compiled: start-up validates with the build's code (schema/prebuilt.ts). */
function newAjv(options: object): Ajv {
  // ajv is CommonJS; its module object may carry the class as `default`.
  const loaded = createRequire(import.meta.url)('ajv') as { default?: typeof AjvModule.default };
  const Ajv = loaded.default ?? (loaded as unknown as typeof AjvModule.default);
  return new Ajv(options);
}

let userAjv: Ajv | null = null;
/** One shared ajv for schemas people write (schema/compiled.ts): each is checked against the JSON Schema meta-schema first. */
export function ajv(): Ajv {
  return (userAjv ??= newAjv(OPTIONS));
}

/**
 * agentd's own schemas (schema/schemas.ts, the protocol's) are checked against
 * the meta-schema by a test, not at every start: compiling the meta-schema
 * was about a tenth of start-up (README.md, Benchmark: P4).
 */
let ownAjvInstance: Ajv | null = null;
const ownAjv = (): Ajv => (ownAjvInstance ??= newAjv(OWN_OPTIONS));
/** Every own schema compile() was given, for that test (test/own-schemas.test.ts). */
export const ownSchemas: object[] = [];

export type Validator<T> = ((value: unknown) => value is T) & { problems(value: unknown): string[] };

/**
 * Compile `schema` into a type guard whose `problems` name each field in a
 * person's words. `own: false` for a schema a person wrote (checked against
 * the meta-schema first). Compiled on first use, not when the module loads: start-up
 * compiles only the schemas it uses (README.md, Benchmark: P4).
 */
export function compile<T>(schema: object, options: { own?: boolean } = {}): Validator<T> {
  let compiled: ValidateFunction | null = null;
  if (options.own !== false) ownSchemas.push(schema);
  const fn = (): ValidateFunction => (compiled ??= options.own === false ? ajv().compile(schema) : (prebuiltValidator(schema) ?? ownAjv().compile(schema)));
  const guard = ((value: unknown) => fn()(value)) as Validator<T>;
  guard.problems = (value: unknown) => (fn()(value) ? [] : formatErrors(fn().errors ?? []));
  return guard;
}

/** ajv's errors → lines like `budget.max_stepz is not a known key (did you mean max_steps?)`. */
export function formatErrors(errors: ErrorObject[]): string[] {
  const lines: string[] = [];
  const merged = mergeRequiredAlternatives(errors);
  for (const e of errors) {
    if (merged.consumed.has(e)) {
      const line = merged.lines.get(e);
      if (line) lines.push(line);
      continue;
    }
    // `anyOf`/`oneOf` repeat what their branches said; the branches are clearer.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const field = fieldName(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const guess = closest(key, known);
      const where = field ? `${field}.${key}` : key;
      lines.push(`${where} is not a known key${guess ? ` (did you mean ${guess}?)` : ''}`);
    } else if (e.keyword === 'required') {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      lines.push(`${field ? `${field}.` : ''}${missing} is required`);
    } else if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
      lines.push(`${field || 'value'} must be one of ${allowed}`);
    } else if (e.keyword === 'pattern' && typeof e.parentSchema === 'object' && e.parentSchema && 'description' in e.parentSchema) {
      lines.push(`${field || 'value'} ${String((e.parentSchema as { description: string }).description)}`);
    } else {
      lines.push(`${field || 'value'} ${e.message ?? 'is invalid'}`);
    }
  }
  return [...new Set(lines)];
}

/**
 * An `anyOf` whose every branch failed only for a missing key means "one of
 * these is required" (`command or model is required`), not that each is.
 */
function mergeRequiredAlternatives(errors: ErrorObject[]): { consumed: Set<ErrorObject>; lines: Map<ErrorObject, string> } {
  const consumed = new Set<ErrorObject>();
  const lines = new Map<ErrorObject, string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf') continue;
    const branches = errors.filter((b) => b !== e && b.instancePath === e.instancePath && b.schemaPath.startsWith(`${e.schemaPath}/`));
    if (branches.length < 2 || !branches.every((b) => b.keyword === 'required')) continue;
    const field = fieldName(e.instancePath);
    const missing = branches.map((b) => String((b.params as { missingProperty: string }).missingProperty));
    for (const b of branches) consumed.add(b);
    consumed.add(e);
    lines.set(branches[0]!, `${field ? `${field}.` : ''}${missing.join(' or ')} is required`);
  }
  return { consumed, lines };
}

/** `/budget/max_steps` → `budget.max_steps`; `/tools/0` → `tools[0]`. */
function fieldName(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^[0-9]+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
