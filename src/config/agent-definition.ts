import { createHash } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { ajv, compile } from '../schema/validate.js';
import { agentDefinitionSchema } from '../schema/schemas.js';
import type { HomePaths } from '../store/paths.js';
import { readIfExists } from '../store/durable.js';
import { parseDocument } from './document.js';
import { budgetOverLimits, mergeBudget, mergeFreshness, mergeRetry, type RawBudget, type RawFreshness, type RawRetry } from './daemon-config.js';
import { parseDuration } from './duration.js';
import { resolveToolMap, type RawTool } from './tools.js';
import type { AgentDefinition, DaemonConfig, ToolDefinition } from './types.js';

interface RawAgentDefinition {
  version?: string | number;
  description?: string;
  command?: string[];
  model?: string;
  system_prompt?: string;
  fallback_models?: string[];
  tools?: string[] | Record<string, RawTool>;
  critical?: boolean;
  budget?: RawBudget;
  freshness?: RawFreshness;
  retry?: RawRetry;
  max_attempts?: number;
  output_schema?: string | object;
  schedule?: { cron: string; task: Record<string, unknown> }[];
  env?: string[];
  stop_grace?: string | number;
}

const validateDefinition = compile<RawAgentDefinition>(agentDefinitionSchema);

/** The definition file of `agent`, or null when its folder has none. */
export async function findDefinitionFile(paths: HomePaths, agent: string): Promise<{ file: string; bytes: Buffer } | null> {
  for (const candidate of paths.definitionCandidates(agent)) {
    const bytes = await readIfExists(candidate);
    if (bytes !== null) return { file: candidate, bytes };
  }
  return null;
}

/**
 * Load, validate and resolve an agent definition against the daemon config.
 * Throws ConfigError naming the file and each bad field; returns null when the
 * folder has no definition at all (it is not an agent).
 */
export async function loadAgentDefinition(paths: HomePaths, config: DaemonConfig, agent: string): Promise<AgentDefinition | null> {
  const found = await findDefinitionFile(paths, agent);
  if (!found) return null;
  const file = paths.relative(found.file);
  const raw = parseDocument(file, found.bytes.toString('utf8'));
  return resolveAgentDefinition(paths, config, agent, file, raw, found.bytes);
}

export async function resolveAgentDefinition(
  paths: HomePaths,
  config: DaemonConfig,
  agent: string,
  file: string,
  raw: unknown,
  bytes: Buffer,
): Promise<AgentDefinition> {
  if (!validateDefinition(raw)) throw new ConfigError(file, validateDefinition.problems(raw));
  const problems: string[] = [];
  const dir = paths.agentDir(agent);
  const hash = createHash('sha256').update(bytes);

  const budget = mergeBudget(config.defaults.budget, raw.budget);
  problems.push(...budgetOverLimits(budget, config.limits, 'budget'));

  for (const model of [raw.model, ...(raw.fallback_models ?? [])]) {
    if (model === undefined) continue;
    const provider = model.slice(0, model.indexOf('/'));
    if (!config.providers[provider]) {
      const field = model === raw.model ? 'model' : 'fallback_models';
      problems.push(`${field} ${JSON.stringify(model)} names provider ${JSON.stringify(provider)}, which agentd.yaml does not declare under providers`);
    }
  }

  const tools = resolveAgentTools(raw.tools, config, problems);
  const outputSchema = await resolveOutputSchema(paths, dir, raw.output_schema, problems, hash);

  if (problems.length > 0) throw new ConfigError(file, problems);
  return {
    name: agent,
    dir,
    file,
    version: raw.version === undefined ? '0' : String(raw.version),
    description: raw.description ?? '',
    command: raw.command ?? null,
    model: raw.model ?? null,
    systemPrompt: raw.system_prompt ?? '',
    fallbackModels: raw.fallback_models ?? [],
    tools,
    critical: raw.critical ?? false,
    budget,
    freshness: mergeFreshness(config.defaults.freshness, raw.freshness),
    retry: mergeRetry(config.defaults.retry, raw.retry),
    maxAttempts: raw.max_attempts ?? config.defaults.maxAttempts,
    outputSchema,
    schedule: raw.schedule ?? [],
    env: raw.env ?? [],
    stopGraceMs: raw.stop_grace !== undefined ? parseDuration(raw.stop_grace) : config.defaults.stopGraceMs,
    hash: hash.digest('hex'),
  };
}

function resolveAgentTools(
  raw: RawAgentDefinition['tools'],
  config: DaemonConfig,
  problems: string[],
): Record<string, ToolDefinition> {
  if (raw === undefined) return {};
  if (Array.isArray(raw)) {
    const tools: Record<string, ToolDefinition> = {};
    raw.forEach((name, i) => {
      const shared = config.tools[name];
      if (shared) tools[name] = shared;
      else problems.push(`tools[${i}] ${JSON.stringify(name)} is not declared under tools in agentd.yaml`);
    });
    return tools;
  }
  return resolveToolMap(raw, 'tools', problems);
}

async function resolveOutputSchema(
  paths: HomePaths,
  dir: string,
  raw: string | object | undefined,
  problems: string[],
  hash: ReturnType<typeof createHash>,
): Promise<object | null> {
  if (raw === undefined) return null;
  let schema: unknown = raw;
  if (typeof raw === 'string') {
    let file: string;
    try {
      file = paths.inside(dir, raw);
    } catch {
      problems.push(`output_schema ${JSON.stringify(raw)} must be a path inside the home`);
      return null;
    }
    const bytes = await readIfExists(file);
    if (bytes === null) {
      problems.push(`output_schema ${JSON.stringify(raw)} does not exist (looked for ${paths.relative(file)})`);
      return null;
    }
    hash.update(bytes);
    try {
      schema = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      problems.push(`output_schema ${path.basename(file)} is not valid JSON: ${(err as Error).message}`);
      return null;
    }
  }
  try {
    ajv.compile(schema as object);
  } catch (err) {
    problems.push(`output_schema is not a valid JSON Schema: ${(err as Error).message}`);
    return null;
  }
  return schema as object;
}
