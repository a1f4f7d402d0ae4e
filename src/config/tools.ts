import { parseDuration } from './duration.js';
import type { ToolCircuitPolicy, ToolDefinition } from './types.js';

export interface RawTool {
  description?: string;
  command: string[];
  input_schema?: object;
  effect?: 'read' | 'write' | 'irreversible';
  idempotent?: boolean;
  approval?: 'never' | 'always';
  approval_ttl?: string | number;
  timeout?: string | number;
  circuit?: { failures?: number; window?: string | number; cooldown?: string | number };
}

/** A tool's circuit when its definition says nothing: 5 failures within 60s open it for 30s. */
export const DEFAULT_TOOL_CIRCUIT: ToolCircuitPolicy = { failures: 5, windowMs: 60_000, cooldownMs: 30_000 };

export interface ToolMapOptions {
  /** `approval_ttl` of a tool that does not set one, ms. */
  approvalTtlMs: number;
  /** True for agentd.yaml's tools (shared by agents), false for an agent's own. */
  shared: boolean;
}

/** Resolve a `tools:` map; `approval` defaults to always for irreversible tools. */
export function resolveToolMap(raw: Record<string, RawTool>, prefix: string, problems: string[], options: ToolMapOptions): Record<string, ToolDefinition> {
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
      approvalTtlMs: t.approval_ttl !== undefined ? parseDuration(t.approval_ttl) : options.approvalTtlMs,
      timeoutMs: t.timeout !== undefined ? parseDuration(t.timeout) : 30_000,
      circuit: {
        failures: t.circuit?.failures ?? DEFAULT_TOOL_CIRCUIT.failures,
        windowMs: t.circuit?.window !== undefined ? parseDuration(t.circuit.window) : DEFAULT_TOOL_CIRCUIT.windowMs,
        cooldownMs: t.circuit?.cooldown !== undefined ? parseDuration(t.circuit.cooldown) : DEFAULT_TOOL_CIRCUIT.cooldownMs,
      },
      shared: options.shared,
    };
  }
  return out;
}
