import { DURATION_PATTERN } from '../config/duration.js';

/**
 * JSON Schemas for every file a person writes. Unknown keys are refused
 * everywhere (`additionalProperties: false`) so a typo is an error, not a
 * silently ignored setting.
 */

const NAME = '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$';
const nameString = { type: 'string', pattern: NAME, description: 'must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$' };
const duration = {
  type: ['string', 'integer'],
  pattern: DURATION_PATTERN,
  minimum: 0,
  description: 'must be a duration like 500ms, 30s, 15m, 4h or 1d',
};
const positiveInt = { type: 'integer', minimum: 1 };
const nonNegative = { type: 'number', minimum: 0 };
const command = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 };
const envName = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'must be an environment variable name' };
/** Octal permissions as a string ("0640", "0o640", "640"): YAML would read 0640 as the decimal 640. */
const fileMode = { type: 'string', pattern: '^(0o|0)?[0-7]{3}$', description: 'must be octal permissions as a string, like "0640"' };
const modelId = {
  type: 'string',
  pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*/.+$',
  description: 'must be <provider>/<model name>, e.g. openai/gpt-4.1-mini',
};

export const budgetSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_steps: positiveInt,
    max_tool_calls: { type: 'integer', minimum: 0 },
    max_runtime: duration,
    max_tokens: positiveInt,
    max_cost_usd: nonNegative,
    daily_cost_usd: nonNegative,
  },
};

const freshnessSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    task_max_age: duration,
    context_max_age: duration,
    context_refresh: command,
  },
};

const retrySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    attempts: { type: 'integer', minimum: 1, maximum: 10 },
    base_delay: duration,
    max_delay: duration,
  },
};

export const toolSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    description: { type: 'string' },
    command,
    input_schema: { type: 'object' },
    effect: { enum: ['read', 'write', 'irreversible'] },
    idempotent: { type: 'boolean' },
    approval: { enum: ['never', 'always'] },
    approval_ttl: duration,
    timeout: duration,
    circuit: {
      type: 'object',
      additionalProperties: false,
      properties: { failures: positiveInt, window: duration, cooldown: duration },
    },
  },
};

const toolMapSchema = {
  type: 'object',
  propertyNames: { pattern: '^[a-zA-Z0-9_-]{1,64}$' },
  additionalProperties: toolSchema,
};

/** `user[:group]`, names or numbers (README "Security"). */
const runAs = { type: 'string', pattern: '^[a-z_][a-z0-9_.-]*[$]?(:[a-z_][a-z0-9_.-]*[$]?|:[0-9]+)?$|^[0-9]+(:[0-9]+)?$', description: 'must be user or user:group' };
/** `while_waiting`: what a task waiting on a person does to its agent's queue (README "Tasks"). */
const whileWaiting = { type: 'string', enum: ['park', 'block'] };

export const agentDefinitionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: ['string', 'number'] },
    description: { type: 'string' },
    command,
    protocol: { enum: ['agentd', 'none'] },
    model: modelId,
    models: { type: 'array', items: modelId },
    system_prompt: { type: 'string' },
    fallback_models: { type: 'array', items: modelId },
    tools: {
      anyOf: [{ type: 'array', items: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' } }, toolMapSchema],
    },
    critical: { type: 'boolean' },
    budget: budgetSchema,
    freshness: freshnessSchema,
    retry: retrySchema,
    max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
    output_schema: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }] },
    schedule: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['cron', 'task'],
        properties: {
          cron: { type: 'string', minLength: 1 },
          task: { type: 'object' },
        },
      },
    },
    env: { type: 'array', items: envName },
    stop_grace: duration,
    heartbeat_timeout: duration,
    warm: { type: 'integer', minimum: 0, maximum: 64 },
    spare: { type: 'boolean' },
    sandbox: { type: 'boolean' },
    run_as: runAs,
    while_waiting: whileWaiting,
  },
  anyOf: [{ required: ['command'] }, { required: ['model'] }],
};

const providerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { enum: ['openai', 'mock'] },
    base_url: { type: 'string', pattern: '^https?://', description: 'must be an http:// or https:// URL' },
    api_key_env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    api_key_file: { type: 'string', pattern: '^/', description: 'must be an absolute path' },
    api_key_credential: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,255}$' },
    timeout: duration,
    script: { type: 'string', minLength: 1 },
  },
};

const priceSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    input_usd_per_mtok: nonNegative,
    output_usd_per_mtok: nonNegative,
    context_window: positiveInt,
  },
};

const outboxKinds = ['uncertain', 'stale_task', 'stale_context', 'limit', 'approval', 'unsure_side_effect', 'provider_unavailable', 'config_error', 'budget_alert', 'suspected_injection'];

/** One `notify:` hook (README "Notifications"); exactly one of `command` and `webhook` is checked in config/notify-hooks.ts. */
const notifyHookSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    command,
    webhook: { type: 'string', pattern: '^https?://', description: 'must be an http:// or https:// URL' },
    headers: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9-]+$' }, additionalProperties: envName },
    format: { enum: ['json', 'slack'] },
    env: { type: 'array', items: envName },
    kinds: { type: 'array', items: { enum: outboxKinds }, minItems: 1 },
    on: { type: 'array', items: { enum: ['opened', 'resolved'] }, minItems: 1 },
    timeout: duration,
    retry: { type: 'object', additionalProperties: false, properties: { base_delay: duration, max_delay: duration } },
  },
};

export const daemonConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    providers: { type: 'object', propertyNames: { pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$' }, additionalProperties: providerSchema },
    models: { type: 'object', additionalProperties: priceSchema },
    tools: toolMapSchema,
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: {
        budget: budgetSchema,
        freshness: freshnessSchema,
        retry: retrySchema,
        max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
        stop_grace: duration,
        heartbeat_timeout: duration,
        approval_ttl: duration,
        sandbox: { type: 'boolean' },
        run_as: runAs,
        while_waiting: whileWaiting,
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: { budget: budgetSchema },
    },
    max_parallel_runs: positiveInt,
    http: { type: 'string', pattern: '^[^:]+:[0-9]+$', description: 'must be host:port, e.g. 127.0.0.1:9464' },
    http_allow_remote: { type: 'boolean' },
    notify: { type: 'object', propertyNames: { pattern: NAME }, additionalProperties: notifyHookSchema },
    trace: {
      type: 'object',
      additionalProperties: false,
      properties: { capture: { enum: ['full', 'redacted', 'none'] } },
    },
    lock_stale: duration,
    outage_alert: duration,
    sweep_interval: duration,
    quiet_period: duration,
    model_timeout: duration,
    cache: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, ttl: duration },
    },
    circuit: {
      type: 'object',
      additionalProperties: false,
      properties: { failures: positiveInt, window: duration, cooldown: duration },
    },
    secrets: { type: 'array', items: envName },
    max_file_bytes: { type: ['integer', 'string'], minimum: 1024, pattern: '^[0-9]+(\\.[0-9]+)?\\s*([kKmMgG]i?[bB]?|[bB])?$', description: 'must be a size like 1MB, 512KB or 1048576 (at least 1KB)' },
    file_mode: {
      type: 'object',
      additionalProperties: false,
      properties: { state: fileMode, outbox: fileMode },
    },
  },
};

export const taskSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['goal'],
  properties: {
    id: nameString,
    created_at: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T', description: 'must be an ISO 8601 date-time like 2026-11-22T09:00:00Z' },
    goal: { type: 'string', minLength: 1 },
    input: {},
    priority: { type: 'integer' },
    critical: { type: 'boolean' },
    budget: budgetSchema,
    metadata: { type: 'object' },
  },
};

const resolutionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['decision'],
  properties: {
    decision: { enum: ['continue', 'approve', 'deny', 'cancel', 'retry', 'answer'] },
    answer: { type: 'string' },
    extend: { type: 'object', additionalProperties: { type: 'number', minimum: 0 } },
    by: { type: 'string' },
    at: { type: 'string' },
  },
};

export const outboxItemSchema = {
  type: 'object',
  required: ['id', 'kind', 'agent', 'created_at', 'reason', 'status'],
  properties: {
    id: { type: 'string', minLength: 1 },
    kind: {
      enum: [
        'uncertain',
        'stale_task',
        'stale_context',
        'limit',
        'approval',
        'unsure_side_effect',
        'provider_unavailable',
        'config_error',
        'budget_alert',
        'suspected_injection',
        'journal_lost',
      ],
    },
    agent: { type: 'string' },
    task_id: { type: ['string', 'null'] },
    run_id: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    reason: { type: 'string' },
    question: { type: 'string' },
    blockers: { type: 'array' },
    details: {},
    status: { enum: ['open', 'resolved'] },
    resolution: resolutionSchema,
    delivered_at: { type: 'string' },
  },
  // A resolved item must say what was decided.
  if: { properties: { status: { const: 'resolved' } }, required: ['status'] },
  then: { required: ['resolution'] },
};

export const outboxFileSchema = {
  type: 'object',
  required: ['items'],
  properties: {
    v: { type: 'integer' },
    items: { type: 'array', items: outboxItemSchema },
  },
};
