import type { Confinement } from '../security/sandbox.js';

/** Resolved, fully defaulted configuration: nothing here is optional that a schema made required. */

/** Per-task budget limits (README "Budgets"). */
export interface BudgetLimits {
  steps: number;
  toolCalls: number;
  runtimeMs: number;
  tokens: number;
  costUsd: number;
  /** Per agent per UTC day, across tasks. */
  dailyCostUsd: number;
}

export type BudgetKey = keyof BudgetLimits;

export interface RetryPolicy {
  /** Total attempts of one model call, 1..10. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface Freshness {
  taskMaxAgeMs: number;
  contextMaxAgeMs: number;
  /** Command run in the agent folder to refresh a stale context, or null. */
  contextRefresh: string[] | null;
}

export type ToolEffect = 'read' | 'write' | 'irreversible';

/** When a tool's circuit opens: `failures` failed runs within `windowMs`; it refuses calls for `cooldownMs`. */
export interface ToolCircuitPolicy {
  failures: number;
  windowMs: number;
  cooldownMs: number;
}

export interface ToolDefinition {
  name: string;
  description: string;
  command: string[];
  inputSchema: object;
  effect: ToolEffect;
  idempotent: boolean;
  approval: 'never' | 'always';
  /** How long a person's approval of a call counts, from when it was given, ms. */
  approvalTtlMs: number;
  timeoutMs: number;
  circuit: ToolCircuitPolicy;
  /** Declared in agentd.yaml (one circuit for every agent) rather than in one agent's definition. */
  shared: boolean;
}

export interface ScheduleEntry {
  cron: string;
  task: Record<string, unknown>;
}

export interface AgentDefinition {
  name: string;
  /** The agent folder, absolute. */
  dir: string;
  /** The definition file, relative to the home. */
  file: string;
  version: string;
  description: string;
  /** A process agent's command, or null for the built-in model agent. */
  command: string[] | null;
  /**
   * `agentd`: the process speaks the protocol on stdin/stdout. `none`: a plain
   * agent: the task on stdin, the result on stdout, the exit code decides.
   */
  protocol: 'agentd' | 'none';
  model: string | null;
  /** More models the run's endpoint lets the agent name, besides `model` and `fallbackModels`. */
  models: string[];
  systemPrompt: string;
  fallbackModels: string[];
  tools: Record<string, ToolDefinition>;
  critical: boolean;
  budget: BudgetLimits;
  freshness: Freshness;
  retry: RetryPolicy;
  maxAttempts: number;
  outputSchema: object | null;
  schedule: ScheduleEntry[];
  env: string[];
  /** How long a stopped agent has to send its handoff before SIGTERM. */
  stopGraceMs: number;
  /** Silence (no protocol message, no call waiting on the daemon) after which the run fails as `timeout`; 0 = never. */
  heartbeatTimeoutMs: number;
  /** Agent processes kept started and waiting for `start` (run/warm-pool.ts); 0 = spawn per run. */
  warm: number;
  /**
   * While the agent has tasks waiting in its inbox, keep one process started ahead for its next run
   * (run/spare-rule.ts; README "Warm agents"); default true for the built-in agent only.
   */
  spare: boolean;
  /** `while_waiting`: a task waiting on a person is parked (the queue goes on) or blocks the agent (README "Tasks"). */
  whileWaiting: WhileWaiting;
  /** `sandbox` and `run_as`, applied to the agent's process and its tools' (README "Security"). */
  confinement: Confinement;
  /** sha256 of the definition file and the files it references. */
  hash: string;
}

export interface ProviderConfig {
  name: string;
  kind: 'openai' | 'mock';
  baseUrl: string | null;
  apiKeyEnv: string | null;
  /** `api_key_file`: an absolute path, mode 0600 (README "Security"). Absent = not set. */
  apiKeyFile?: string | null;
  /** `api_key_credential`: a systemd credential's name, read under $CREDENTIALS_DIRECTORY. Absent = not set. */
  apiKeyCredential?: string | null;
  timeoutMs: number;
  /** mock: a scripted reply file, absolute. */
  script: string | null;
}

export interface ModelPrice {
  inputUsdPerMtok: number;
  outputUsdPerMtok: number;
  contextWindow: number | null;
}

export interface AgentDefaults {
  budget: BudgetLimits;
  freshness: Freshness;
  retry: RetryPolicy;
  maxAttempts: number;
  stopGraceMs: number;
  heartbeatTimeoutMs: number;
  /** Default `approval_ttl` of tools, ms. */
  approvalTtlMs: number;
  /** Default `sandbox` of agents (bubblewrap). */
  sandbox: boolean;
  /** Default `run_as` of agents, as written; resolved per definition. */
  runAs: string | null;
  /** Default `while_waiting` of agents. */
  whileWaiting: WhileWaiting;
}

export type WhileWaiting = 'park' | 'block';

/** Permissions of the files the daemon writes (`file_mode` in agentd.yaml). */
export interface FileModes {
  /** state/ (default 0o640). */
  state: number;
  /** outbox/ and task files written into agents/, which people edit (default 0o660). */
  outbox: number;
}

export interface DaemonConfig {
  /** The config file, relative to the home, or null when built-in defaults apply. */
  file: string | null;
  providers: Record<string, ProviderConfig>;
  models: Record<string, ModelPrice>;
  tools: Record<string, ToolDefinition>;
  defaults: AgentDefaults;
  /** Hard upper bounds no agent or task may exceed. */
  limits: BudgetLimits;
  maxParallelRuns: number;
  http: string | null;
  /** Let `http` listen on a non-loopback address. Default false. */
  httpAllowRemote: boolean;
  traceCapture: 'full' | 'redacted' | 'none';
  /** proper-lockfile stale time: how long a dead daemon's agents stay locked. */
  lockStaleMs: number;
  /** How long a model's circuit stays open before one `provider_unavailable` item tells a person (`outage_alert`, default 10m). */
  outageAlertMs: number;
  /** How often every agent's folder is looked at without a change event (`sweep_interval`, default 60s): bounds the wait for a task written on another host of a shared home. */
  sweepIntervalMs: number;
  /** How long a task file or outbox.json that does not parse must be unchanged before it is refused (`quiet_period`, default 5s). */
  quietPeriodMs: number;
  modelTimeoutMs: number;
  /** Exact-match cache of temperature-0 model calls under state/cache. */
  cache: { enabled: boolean; ttlMs: number };
  /** Circuit breaker per model: opens after `failures` availability failures within `windowMs`. */
  circuit: { failures: number; windowMs: number; cooldownMs: number };
  /** Names of daemon variables that are secrets besides providers' api_key_env: never passed to a child, masked in logs and files. */
  secrets: string[];
  /** Largest task file or definition read, bytes (default 1 MiB). */
  maxFileBytes: number;
  fileMode: FileModes;
  /** `notify:` hooks by name (README "Notifications"); empty when none. */
  notify: NotifyHook[];
}

/** Where a notification goes: a command with the item on stdin, or a POST. */
export type NotifyTarget =
  | { kind: 'command'; command: string[]; env: string[] }
  | { kind: 'webhook'; url: string; /** header name → the env variable holding its value */ headers: Record<string, string>; format: 'json' | 'slack' };

export interface NotifyHook {
  name: string;
  target: NotifyTarget;
  /** Item kinds delivered; null: every kind. */
  kinds: string[] | null;
  on: ('opened' | 'resolved')[];
  /** One attempt's limit, ms (default 10 s). */
  timeoutMs: number;
  /** Backoff between failed attempts, doubling from base to max, ms (defaults 1 s and 5 min). */
  retry: { baseDelayMs: number; maxDelayMs: number };
}
