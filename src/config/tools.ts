import { parseDuration } from './duration.js';
import type { ToolDefinition } from './types.js';

export interface RawTool {
  description?: string;
  command: string[];
  input_schema?: object;
  effect?: 'read' | 'write' | 'irreversible';
  idempotent?: boolean;
  approval?: 'never' | 'always';
  timeout?: string | number;
}

/** Resolve a `tools:` map; `approval` defaults to always for irreversible tools. */
export function resolveToolMap(raw: Record<string, RawTool>, prefix: string, problems: string[]): Record<string, ToolDefinition> {
  const out: Record<string, ToolDefinition> = {};
  for (const [name, t] of Object.entries(raw)) {
    if (name === 'escalate') {
      problems.push(`${prefix}.escalate is reserved: the built-in escalate tool always exists`);
      continue;
    }
    const effect = t.effect ?? 'read';
    out[name] = {
      name,
      description: t.description ?? '',
      command: t.command,
      inputSchema: t.input_schema ?? { type: 'object' },
      effect,
      idempotent: t.idempotent ?? false,
      approval: t.approval ?? (effect === 'irreversible' ? 'always' : 'never'),
      timeoutMs: t.timeout !== undefined ? parseDuration(t.timeout) : 30_000,
    };
  }
  return out;
}
