import { retryDelayProblems } from './delay-bounds.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { compiledSchema } from '../schema/compiled.js';
import { compile } from '../schema/validate.js';
import { agentDefinitionSchema, taskSchema } from '../schema/schemas.js';
import { cronProblem } from '../daemon/cron-times.js';
import type { HomePaths } from '../store/paths.js';
import { sharedInboxProblem } from '../store/shared-folders.js';
import { plainBelowHome } from '../store/plain-path.js';
import { DEFAULT_MAX_FILE_BYTES, escapesHome, readHomeFile, tooBigProblem, type HomeFile } from '../store/home-file.js';
import { readHomeFileSync } from '../store/home-file.js';
import { plainBelowHomeSync } from '../store/plain-path.js';
import { secretSource } from '../security/secrets.js';
import { confinementProblems } from '../security/confinement.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';
import { parseDocument } from './document.js';
import { shared } from './shared-values.js';
import { budgetOverLimits, mergeBudget, mergeFreshness, mergeRetry, type RawBudget, type RawFreshness, type RawRetry } from './daemon-config.js';
import { parseDuration } from './duration.js';
import { resolveToolMap, type RawTool } from './tools.js';
import type { AgentDefinition, DaemonConfig, ToolDefinition } from './types.js';

interface RawAgentDefinition {
  version?: string | number;
  description?: string;
  command?: string[];
  protocol?: 'agentd' | 'none';
  model?: string;
  models?: string[];
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
  heartbeat_timeout?: string | number;
  warm?: number;
  spare?: boolean;
  sandbox?: boolean;
  run_as?: string;
  while_waiting?: 'park' | 'block';
}

const validateDefinition = compile<RawAgentDefinition>(agentDefinitionSchema);
const validateTaskTemplate = compile(taskSchema);

/** A definition file as read: its path, bytes and mtime (whole milliseconds). */
export interface DefinitionFile {
  file: string;
  bytes: Buffer;
  mtimeMs: number;
}

/** What loadAgentDefinition may be told. */
export interface LoadDefinitionOptions {
  /** Told which file was read (null: none was found), before it is parsed (daemon/start-catch-up.ts). */
  onRead?: (found: DefinitionFile | null) => void;
  /**
   * Read with the sync calls (store/home-file.ts readHomeFileSync): only while nothing
   * else waits on the event loop, the daemon's load at start (README.md,
   * Benchmark: P4).
   */
  sync?: boolean;
}

/**
 * The definition file of `agent`, or null when its folder has none. Throws
 * ConfigError when the folder or the file leads outside the home, or the
 * file is larger than `maxBytes`.
 */
export async function findDefinitionFile(paths: HomePaths, agent: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<DefinitionFile | null> {
  // No link from the home down to the inbox (store/plain-path.ts): neither check below can find anything.
  if (!(await plainBelowHome(paths, paths.inboxDir(agent)))) {
    const folder = await escapesHome(paths, paths.agentDir(agent));
    if (folder) throw new ConfigError(`agents/${agent}`, [folder]);
    const shared = await sharedInboxProblem(paths, agent);
    if (shared) throw new ConfigError(`agents/${agent}`, [shared]);
  }
  for (const candidate of paths.definitionCandidates(agent)) {
    const found = definitionRead(paths, candidate, await readHomeFile(paths, candidate, maxBytes), maxBytes);
    if (found) return found;
  }
  return null;
}

/**
 * findDefinitionFile without the thread pool (store/home-file.ts readHomeFileSync), for
 * the daemon's load of every definition at start; undefined when a link lies
 * below the home on the way (findDefinitionFile then looks closer).
 */
function findDefinitionFileSync(paths: HomePaths, agent: string, maxBytes: number): DefinitionFile | null | undefined {
  if (!plainBelowHomeSync(paths, paths.inboxDir(agent))) return undefined;
  for (const candidate of paths.definitionCandidates(agent)) {
    const found = definitionRead(paths, candidate, readHomeFileSync(paths, candidate, maxBytes), maxBytes);
    if (found) return found;
  }
  return null;
}

/** A candidate as read: null when it is missing; throws ConfigError when it is refused or too big. */
function definitionRead(paths: HomePaths, candidate: string, read: HomeFile, maxBytes: number): DefinitionFile | null {
  if (read.kind === 'missing') return null;
  if (read.kind === 'refused') throw new ConfigError(paths.relative(candidate), [read.problem]);
  if (read.kind === 'too_big') throw new ConfigError(paths.relative(candidate), [tooBigProblem(read.size, maxBytes)]);
  return { file: candidate, bytes: read.bytes, mtimeMs: read.mtime.getTime() };
}

/**
 * Load, validate and resolve an agent definition against the daemon config.
 * Throws ConfigError naming the file and each bad field; returns null when the
 * folder has no definition at all (it is not an agent).
 */
export async function loadAgentDefinition(paths: HomePaths, config: DaemonConfig, agent: string, options: LoadDefinitionOptions = {}): Promise<AgentDefinition | null> {
  const fast = options.sync ? findDefinitionFileSync(paths, agent, config.maxFileBytes) : undefined;
  const found = fast !== undefined ? fast : await findDefinitionFile(paths, agent, config.maxFileBytes);
  options.onRead?.(found);
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

  for (const model of [raw.model, ...(raw.fallback_models ?? []), ...(raw.models ?? [])]) {
    if (model === undefined) continue;
    const provider = model.slice(0, model.indexOf('/'));
    if (!config.providers[provider]) {
      const field = model === raw.model ? 'model' : raw.fallback_models?.includes(model) ? 'fallback_models' : 'models';
      problems.push(`${field} ${JSON.stringify(model)} names provider ${JSON.stringify(provider)}, which agentd.yaml does not declare under providers`);
    }
  }

  // A plain agent knows no protocol: the built-in model agent cannot be one.
  if (raw.protocol === 'none' && !raw.command) problems.push('protocol: none needs a command (a plain agent is a program of yours)');
  // A spare is started before its task, which a plain agent gets at spawn (README "Warm agents").
  if (raw.protocol === 'none' && raw.spare === true) problems.push('spare: true needs the agentd protocol (a plain agent gets its task when it is started, so it cannot be started ahead)');
  const tools = resolveAgentTools(raw.tools, config, problems);
  (raw.env ?? []).forEach((name, i) => {
    const source = secretSource(config, name);
    if (source) problems.push(`env[${i}] ${JSON.stringify(name)} is a secret (agentd.yaml ${source}): it is never passed to an agent; remove it from env`);
  });
  (raw.schedule ?? []).forEach((entry, i) => {
    const cron = cronProblem(entry.cron);
    if (cron) problems.push(`schedule[${i}].cron ${JSON.stringify(entry.cron)}: ${cron}`);
    for (const problem of validateTaskTemplate.problems(entry.task)) problems.push(`schedule[${i}].task: ${problem}`);
  });
  const confinement = resolveConfinement(raw, config, problems);
  const outputSchema = await resolveOutputSchema(paths, dir, raw.output_schema, problems, hash, config.maxFileBytes);
  problems.push(...retryDelayProblems('retry', raw.retry, mergeRetry(config.defaults.retry, raw.retry)));

  if (problems.length > 0) throw new ConfigError(file, problems);
  // Plain values many agents hold alike are shared, one copy each (config/shared-values.ts).
  return {
    name: agent,
    dir,
    file,
    version: raw.version === undefined ? '0' : String(raw.version),
    description: raw.description ?? '',
    command: shared(raw.command ?? null),
    protocol: raw.protocol ?? 'agentd',
    model: raw.model ?? null,
    models: shared(raw.models ?? []),
    systemPrompt: raw.system_prompt ?? '',
    fallbackModels: shared(raw.fallback_models ?? []),
    tools: Object.keys(tools).length === 0 ? shared(tools) : tools,
    critical: raw.critical ?? false,
    budget: shared(budget),
    freshness: shared(mergeFreshness(config.defaults.freshness, raw.freshness)),
    retry: shared(mergeRetry(config.defaults.retry, raw.retry)),
    maxAttempts: raw.max_attempts ?? config.defaults.maxAttempts,
    whileWaiting: raw.while_waiting ?? config.defaults.whileWaiting,
    outputSchema,
    schedule: raw.schedule && raw.schedule.length > 0 ? raw.schedule : shared([]),
    env: shared(raw.env ?? []),
    stopGraceMs: raw.stop_grace !== undefined ? parseDuration(raw.stop_grace) : config.defaults.stopGraceMs,
    heartbeatTimeoutMs: raw.heartbeat_timeout !== undefined ? parseDuration(raw.heartbeat_timeout) : config.defaults.heartbeatTimeoutMs,
    warm: raw.warm ?? 0,
    // The built-in agent reads its task from `start`; a command of yours may read it from its environment.
    spare: raw.spare ?? (raw.command === undefined && raw.protocol !== 'none'),
    confinement: shared(confinement),
    hash: hash.digest('hex'),
  };
}

/** `sandbox` and `run_as`, the definition's over agentd.yaml's defaults; a sandbox without bwrap is a problem, never a bare run. */
function resolveConfinement(raw: RawAgentDefinition, config: DaemonConfig, problems: string[]): AgentDefinition['confinement'] {
  const sandbox = raw.sandbox ?? config.defaults.sandbox;
  const runAs = raw.run_as ?? config.defaults.runAs;
  const resolved = confinementProblems({ sandbox, runAs, from: raw.run_as !== undefined ? 'run_as' : 'run_as (agentd.yaml defaults.run_as)', sandboxFrom: raw.sandbox !== undefined ? 'sandbox' : 'sandbox (agentd.yaml defaults.sandbox)' });
  problems.push(...resolved.problems);
  return resolved.confinement;
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
  return resolveToolMap(raw, 'tools', problems, { approvalTtlMs: config.defaults.approvalTtlMs, shared: false });
}

async function resolveOutputSchema(
  paths: HomePaths,
  dir: string,
  raw: string | object | undefined,
  problems: string[],
  hash: ReturnType<typeof createHash>,
  maxBytes: number,
): Promise<object | null> {
  if (raw === undefined) return null;
  let schema: unknown = raw;
  if (typeof raw === 'string') {
    let file: string;
    try {
      file = paths.inside(dir, raw);
    } catch {
      problems.push(`output_schema ${JSON.stringify(raw)} must be a relative path inside the home, without ".."`);
      return null;
    }
    const read = await readHomeFile(paths, file, maxBytes);
    if (read.kind === 'missing') {
      problems.push(`output_schema ${JSON.stringify(raw)} does not exist (looked for ${paths.relative(file)})`);
      return null;
    }
    if (read.kind !== 'ok') {
      problems.push(`output_schema ${JSON.stringify(raw)} ${read.kind === 'refused' ? read.problem : tooBigProblem(read.size, maxBytes)}`);
      return null;
    }
    const bytes = read.bytes;
    if (jsonTextTooDeep(bytes.toString('utf8'))) {
      problems.push(`output_schema ${JSON.stringify(raw)} ${tooDeepProblem()}`);
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
    compiledSchema(schema as object);
  } catch (err) {
    problems.push(`output_schema is not a valid JSON Schema: ${(err as Error).message}`);
    return null;
  }
  return schema as object;
}
