import type { AgentDefinition, DaemonConfig } from '../config/types.js';

/**
 * The built-in model agent asks an OpenAI-compatible provider for structured
 * output (README "The built-in model agent"): with an `output_schema`, its
 * requests carry `response_format: json_schema` built from that schema, so the
 * model is held to it where the provider supports it; the schema check and the
 * repair turn stay, since not every compatible server enforces it. Not strict:
 * OpenAI's strict mode accepts only a subset of JSON Schema (every property
 * required, no additionalProperties), and a user's schema need not fit it.
 * Pure.
 */
export function responseFormatFor(definition: Pick<AgentDefinition, 'model' | 'outputSchema'>, config: Pick<DaemonConfig, 'providers'>): Record<string, unknown> | null {
  if (!definition.outputSchema || !definition.model) return null;
  const slash = definition.model.indexOf('/');
  const name = slash > 0 ? definition.model.slice(0, slash) : '';
  const provider = Object.hasOwn(config.providers, name) ? config.providers[name] : undefined;
  if (provider?.kind !== 'openai') return null;
  return { type: 'json_schema', json_schema: { name: 'output', schema: definition.outputSchema, strict: false } };
}
