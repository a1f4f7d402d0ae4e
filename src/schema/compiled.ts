import type { ValidateFunction } from 'ajv';
import { ajv } from './validate.js';

/**
 * The one compiled-schema cache. ajv keeps every schema it compiles under its
 * `$id` and refuses a second schema with the same `$id`, so every caller that
 * compiles a user's schema (an output_schema, a tool's input_schema, an eval
 * case's expect.schema) goes through here:
 *
 * - the same object compiles once (the WeakMap);
 * - a separately loaded copy with the same text reuses the compiled function,
 *   so a reload neither throws "already exists" nor grows ajv's cache;
 * - a changed schema under an `$id` ajv already holds replaces the old one,
 *   instead of silently validating against the stale text.
 */
const byObject = new WeakMap<object, ValidateFunction>();
const byText = new Map<string, ValidateFunction>();
/** The text each `$id` was last compiled from, so a changed schema can replace it. */
const textById = new Map<string, string>();

/** The compiled validator for `schema`; throws ajv's error when it is not a valid JSON Schema. */
export function compiledSchema(schema: object): ValidateFunction {
  const known = byObject.get(schema);
  if (known) return known;
  const text = JSON.stringify(schema);
  let validate = byText.get(text);
  if (!validate) {
    validate = compileFresh(schema, text);
    byText.set(text, validate);
  }
  byObject.set(schema, validate);
  return validate;
}

function compileFresh(schema: object, text: string): ValidateFunction {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') return ajv().compile(schema);
  const previous = textById.get(id);
  if (previous !== undefined) byText.delete(previous);
  // An $id ajv holds from elsewhere (or from an older text) is replaced; the
  // functions compiled from the older text keep working for their holders.
  if (ajv().getSchema(id)) ajv().removeSchema(id);
  const validate = ajv().compile(schema);
  textById.set(id, text);
  return validate;
}
