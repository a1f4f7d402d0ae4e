import { retryDelayProblems } from './delay-bounds.js';
import { DEFAULT_QUIET_PERIOD_MS } from '../store/quiet-period.js';
import { ConfigError } from '../errors.js';
import { compile } from '../schema/validate.js';
import { daemonConfigSchema } from '../schema/schemas.js';
import { HomePaths } from '../store/paths.js';
import { readIfExists } from '../store/durable.js';
import { parseDocument } from './document.js';
import { parseDuration } from './duration.js';
import { mergeBudget, type RawBudget } from '../core/budget-merge.js';
import type { AgentDefaults, BudgetLimits, DaemonConfig, FileModes, Freshness, ProviderConfig, RetryPolicy } from './types.js';
import { resolveToolMap, type RawTool } from './tools.js';
import { parseByteSize } from '../observe/log-file.js';
import { DEFAULT_MAX_FILE_BYTES } from '../store/home-file.js';
import { notifyHeaderEnvs, resolveNotifyHooks, type RawNotifyHook } from './notify-hooks.js';

/** What every agent gets when neither agentd.yaml nor its definition says otherwise. */
export const BUILTIN_DEFAULTS: AgentDefaults = {
  budget: { steps: 50, toolCalls: 100, runtimeMs: 15 * 60_000, tokens: 200_000, costUsd: 2, dailyCostUsd: 20 },
  freshness: { taskMaxAgeMs: 4 * 3_600_000, contextMaxAgeMs: 24 * 3_600_000, contextRefresh: null },
  retry: { attempts: 3, baseDelayMs: 1000, maxDelayMs: 30_000 },
  maxAttempts: 3,
  stopGraceMs: 5000,
  heartbeatTimeoutMs: 5 * 60_000,
  approvalTtlMs: 24 * 3_600_000,
  sandbox: false,
  runAs: null,
  whileWaiting: 'park',
};

/** state/ is the daemon's own; outbox/ is edited by people in the daemon's group. */
export const DEFAULT_FILE_MODES: FileModes = { state: 0o640, outbox: 0o660 };

/** Hard upper bounds, overridable under `limits.budget` in agentd.yaml. */
export const BUILTIN_LIMITS: BudgetLimits = {
  steps: 10_000,
  toolCalls: 10_000,
  runtimeMs: 24 * 3_600_000,
  tokens: 50_000_000,
  costUsd: 1000,
  dailyCostUsd: 10_000,
};

/** The `mock` provider is always there, so the examples run with no key. */
const EMBEDDED_MOCK: ProviderConfig = { name: 'mock', kind: 'mock', baseUrl: null, apiKeyEnv: null, timeoutMs: 60_000, script: null };

interface RawFreshness {
  task_max_age?: string | number;
  context_max_age?: string | number;
  context_refresh?: string[];
}
interface RawRetry {
  attempts?: number;
  base_delay?: string | number;
  max_delay?: string | number;
}
interface RawDaemonConfig {
  providers?: Record<string, { kind: 'openai' | 'mock'; base_url?: string; api_key_env?: string; api_key_file?: string; api_key_credential?: string; timeout?: string; script?: string }>;
  models?: Record<string, { input_usd_per_mtok?: number; output_usd_per_mtok?: number; context_window?: number }>;
  tools?: Record<string, RawTool>;
  defaults?: { budget?: RawBudget; freshness?: RawFreshness; retry?: RawRetry; max_attempts?: number; stop_grace?: string; heartbeat_timeout?: string | number; approval_ttl?: string | number; sandbox?: boolean; run_as?: string; while_waiting?: 'park' | 'block' };
  limits?: { budget?: RawBudget };
  max_parallel_runs?: number;
  http?: string;
  http_allow_remote?: boolean;
  trace?: { capture?: 'full' | 'redacted' | 'none' };
  lock_stale?: string | number;
  outage_alert?: string | number;
  sweep_interval?: string | number;
  quiet_period?: string | number;
  model_timeout?: string | number;
  cache?: { enabled?: boolean; ttl?: string | number };
  circuit?: { failures?: number; window?: string | number; cooldown?: string | number };
  secrets?: string[];
  max_file_bytes?: number | string;
  file_mode?: { state?: string; outbox?: string };
  notify?: Record<string, RawNotifyHook>;
}

export type { RawBudget, RawFreshness, RawRetry };

const validateDaemonConfig = compile<RawDaemonConfig>(daemonConfigSchema);

type RawProviders = NonNullable<RawDaemonConfig['providers']>;

/** Overlay a raw budget onto `base`; each value is in the resolved units. */
export { mergeBudget };

export function mergeFreshness(base: Freshness, raw: RawFreshness | undefined): Freshness {
  if (!raw) return { ...base };
  return {
    taskMaxAgeMs: raw.task_max_age !== undefined ? parseDuration(raw.task_max_age) : base.taskMaxAgeMs,
    contextMaxAgeMs: raw.context_max_age !== undefined ? parseDuration(raw.context_max_age) : base.contextMaxAgeMs,
    contextRefresh: raw.context_refresh ?? base.contextRefresh,
  };
}

export function mergeRetry(base: RetryPolicy, raw: RawRetry | undefined): RetryPolicy {
  if (!raw) return { ...base };
  return {
    attempts: raw.attempts ?? base.attempts,
    baseDelayMs: raw.base_delay !== undefined ? parseDuration(raw.base_delay) : base.baseDelayMs,
    maxDelayMs: raw.max_delay !== undefined ? parseDuration(raw.max_delay) : base.maxDelayMs,
  };
}

/** The budget keys as a person writes them, for error messages. */
export const BUDGET_FIELD: Record<keyof BudgetLimits, string> = {
  steps: 'max_steps',
  toolCalls: 'max_tool_calls',
  runtimeMs: 'max_runtime',
  tokens: 'max_tokens',
  costUsd: 'max_cost_usd',
  dailyCostUsd: 'daily_cost_usd',
};

/** Lines naming every budget in `budget` that exceeds its hard limit. */
export function budgetOverLimits(budget: BudgetLimits, limits: BudgetLimits, prefix: string): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(limits) as (keyof BudgetLimits)[]) {
    if (budget[key] > limits[key]) {
      problems.push(`${prefix}.${BUDGET_FIELD[key]} is ${budget[key]}, above the hard limit ${limits[key]} (agentd.yaml limits.budget)`);
    }
  }
  return problems;
}

/** Read and resolve agentd.yaml / agentd.json; built-in defaults when there is none. Throws ConfigError. */
export async function loadDaemonConfig(paths: HomePaths): Promise<DaemonConfig> {
  for (const candidate of paths.daemonConfigCandidates()) {
    const bytes = await readIfExists(candidate);
    if (bytes === null) continue;
    const file = paths.relative(candidate);
    const raw = parseDocument(file, bytes.toString('utf8'));
    return resolveDaemonConfig(paths, file, raw);
  }
  return resolveDaemonConfig(paths, null, {});
}

export function resolveDaemonConfig(paths: HomePaths, file: string | null, raw: unknown): DaemonConfig {
  const where = file ?? 'agentd.yaml';
  if (!validateDaemonConfig(raw)) throw new ConfigError(where, validateDaemonConfig.problems(raw));
  const limits = mergeBudget(BUILTIN_LIMITS, raw.limits?.budget);
  const defaults: AgentDefaults = {
    budget: mergeBudget(BUILTIN_DEFAULTS.budget, raw.defaults?.budget),
    freshness: mergeFreshness(BUILTIN_DEFAULTS.freshness, raw.defaults?.freshness),
    retry: mergeRetry(BUILTIN_DEFAULTS.retry, raw.defaults?.retry),
    maxAttempts: raw.defaults?.max_attempts ?? BUILTIN_DEFAULTS.maxAttempts,
    stopGraceMs: raw.defaults?.stop_grace !== undefined ? parseDuration(raw.defaults.stop_grace) : BUILTIN_DEFAULTS.stopGraceMs,
    heartbeatTimeoutMs: raw.defaults?.heartbeat_timeout !== undefined ? parseDuration(raw.defaults.heartbeat_timeout) : BUILTIN_DEFAULTS.heartbeatTimeoutMs,
    approvalTtlMs: raw.defaults?.approval_ttl !== undefined ? parseDuration(raw.defaults.approval_ttl) : BUILTIN_DEFAULTS.approvalTtlMs,
    sandbox: raw.defaults?.sandbox ?? BUILTIN_DEFAULTS.sandbox,
    runAs: raw.defaults?.run_as ?? BUILTIN_DEFAULTS.runAs,
    whileWaiting: raw.defaults?.while_waiting ?? BUILTIN_DEFAULTS.whileWaiting,
  };
  const problems = budgetOverLimits(defaults.budget, limits, 'defaults.budget');
  problems.push(...retryDelayProblems('defaults.retry', raw.defaults?.retry, defaults.retry));
  const modelTimeoutMs = raw.model_timeout !== undefined ? parseDuration(raw.model_timeout) : 60_000;
  const providers = resolveProviders(paths, raw.providers ?? {}, modelTimeoutMs, problems);
  const lockStaleMs = raw.lock_stale !== undefined ? parseDuration(raw.lock_stale) : 10_000;
  if (lockStaleMs < 2000) problems.push('lock_stale must be at least 2s (proper-lockfile refuses less)');
  const outageAlertMs = raw.outage_alert !== undefined ? parseDuration(raw.outage_alert) : 10 * 60_000;
  if (outageAlertMs > 24 * 60 * 60 * 1000) problems.push(`outage_alert ${JSON.stringify(raw.outage_alert)} must be at most 24h`);
  const sweepIntervalMs = raw.sweep_interval !== undefined ? parseDuration(raw.sweep_interval) : 60_000;
  const quietPeriodMs = raw.quiet_period !== undefined ? parseDuration(raw.quiet_period) : DEFAULT_QUIET_PERIOD_MS;
  if (quietPeriodMs > 60 * 60 * 1000) problems.push(`quiet_period ${JSON.stringify(raw.quiet_period)} must be at most 1h`);
  if (sweepIntervalMs < 100 || sweepIntervalMs > 24 * 60 * 60 * 1000) problems.push(`sweep_interval ${JSON.stringify(raw.sweep_interval)} must be between 100ms and 24h`);
  const tools = resolveToolMap(raw.tools ?? {}, 'tools', problems, { approvalTtlMs: defaults.approvalTtlMs, shared: true });
  const maxFileBytes = resolveMaxFileBytes(raw.max_file_bytes, problems);
  const fileMode = resolveFileModes(raw.file_mode, problems);
  const notify = resolveNotifyHooks(raw.notify ?? {}, problems);
  if (problems.length > 0) throw new ConfigError(where, problems);
  return {
    file,
    providers,
    models: Object.fromEntries(
      Object.entries(raw.models ?? {}).map(([id, m]) => [
        id,
        { inputUsdPerMtok: m.input_usd_per_mtok ?? 0, outputUsdPerMtok: m.output_usd_per_mtok ?? 0, contextWindow: m.context_window ?? null },
      ]),
    ),
    tools,
    defaults,
    limits,
    maxParallelRuns: raw.max_parallel_runs ?? 4,
    http: raw.http ?? null,
    httpAllowRemote: raw.http_allow_remote ?? false,
    traceCapture: raw.trace?.capture ?? 'redacted',
    lockStaleMs,
    outageAlertMs,
    sweepIntervalMs,
    quietPeriodMs,
    modelTimeoutMs,
    cache: { enabled: raw.cache?.enabled ?? false, ttlMs: raw.cache?.ttl !== undefined ? parseDuration(raw.cache.ttl) : 3_600_000 },
    circuit: {
      failures: raw.circuit?.failures ?? 5,
      windowMs: raw.circuit?.window !== undefined ? parseDuration(raw.circuit.window) : 60_000,
      cooldownMs: raw.circuit?.cooldown !== undefined ? parseDuration(raw.circuit.cooldown) : 30_000,
    },
    // A webhook's header values are credentials: kept from children and masked like any secret.
    secrets: [...new Set([...(raw.secrets ?? []), ...notifyHeaderEnvs(notify)])],
    maxFileBytes,
    fileMode,
    notify,
  };
}

/** The `providers` section, each checked; the embedded mock is always there. */
function resolveProviders(paths: HomePaths, raw: RawProviders, modelTimeoutMs: number, problems: string[]): Record<string, ProviderConfig> {
  const providers: Record<string, ProviderConfig> = { mock: EMBEDDED_MOCK };
  for (const [name, p] of Object.entries(raw)) {
    if (p.kind === 'openai' && !p.base_url) problems.push(`providers.${name}.base_url is required for kind openai`);
    const keyFields = (['api_key_env', 'api_key_file', 'api_key_credential'] as const).filter((field) => p[field] !== undefined);
    if (keyFields.length > 1) problems.push(`providers.${name}: ${keyFields.join(' and ')} are set; a key comes from one place, keep one`);
    let script: string | null = null;
    if (p.script) {
      try {
        script = paths.inside(paths.root, p.script);
      } catch {
        problems.push(`providers.${name}.script ${JSON.stringify(p.script)} must be a relative path inside the home, without ".."`);
      }
    }
    providers[name] = {
      name,
      kind: p.kind,
      baseUrl: p.base_url ? p.base_url.replace(/\/+$/, '') : null,
      apiKeyEnv: p.api_key_env ?? null,
      apiKeyFile: p.api_key_file ?? null,
      apiKeyCredential: p.api_key_credential ?? null,
      timeoutMs: p.timeout !== undefined ? parseDuration(p.timeout) : modelTimeoutMs,
      script,
    };
  }
  return providers;
}

function resolveMaxFileBytes(raw: number | string | undefined, problems: string[]): number {
  if (raw === undefined) return DEFAULT_MAX_FILE_BYTES;
  if (typeof raw === 'number') return raw;
  try {
    return parseByteSize(raw);
  } catch {
    problems.push(`max_file_bytes ${JSON.stringify(raw)} must be a size like 1MB, 512KB or 1048576 (at least 1KB)`);
    return DEFAULT_MAX_FILE_BYTES;
  }
}

/** `"0640"` → 0o640; a mode that lets others (not owner, not group) write is refused. */
function resolveFileModes(raw: { state?: string; outbox?: string } | undefined, problems: string[]): FileModes {
  const modes = { ...DEFAULT_FILE_MODES };
  for (const key of ['state', 'outbox'] as const) {
    const text = raw?.[key];
    if (text === undefined) continue;
    const mode = parseInt(text.replace(/^0o/, ''), 8);
    if (mode & 0o002) problems.push(`file_mode.${key} ${JSON.stringify(text)} lets every user write the files; drop the last digit's write bit`);
    else if ((mode & 0o600) !== 0o600) problems.push(`file_mode.${key} ${JSON.stringify(text)} must let the owner (the daemon) read and write`);
    else modes[key] = mode;
  }
  return modes;
}
