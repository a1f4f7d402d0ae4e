import type { ValidateFunction } from 'ajv';
import type { ToolDefinition } from '../config/types.js';
import { ajv, formatErrors } from '../schema/validate.js';

/** One compiled validator per input_schema object, shared by the run host and the tool runner. */
const validators = new WeakMap<object, ValidateFunction>();

/** Why `args` do not fit the tool's input_schema, or null when they do (README "Tools"). */
export function toolArgsProblem(tool: ToolDefinition, args: unknown): string | null {
  let validate = validators.get(tool.inputSchema);
  if (!validate) {
    validate = ajv.compile(tool.inputSchema);
    validators.set(tool.inputSchema, validate);
  }
  return validate(args) ? null : `arguments for ${tool.name}: ${formatErrors(validate.errors ?? []).join('; ')}`;
}
