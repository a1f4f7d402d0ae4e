import type { ToolDefinition } from '../config/types.js';
import { compiledSchema } from '../schema/compiled.js';
import { formatErrors } from '../schema/validate.js';

/** Why `args` do not fit the tool's input_schema, or null when they do (README "Tools"); shared by the run host, the tool runner and eval's recorder. */
export function toolArgsProblem(tool: ToolDefinition, args: unknown): string | null {
  const validate = compiledSchema(tool.inputSchema);
  return validate(args) ? null : `arguments for ${tool.name}: ${formatErrors(validate.errors ?? []).join('; ')}`;
}
