import { compile } from '../schema/validate.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';

/**
 * The agent protocol (docs/protocol.md): newline-delimited JSON on the
 * agent's stdin (daemon → agent) and stdout (agent → daemon). Shared by the
 * daemon and the SDK.
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

/**
 * The text of a message's content: a string, or the text parts of an array of
 * content parts (what OpenAI-style clients send), joined.
 */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('');
}

export interface ToolCall {
  id: string;
  type?: 'function';
  function: { name: string; arguments: string };
}

export interface ToolSpec {
  type: 'function';
  function: { name: string; description?: string; parameters?: object };
}

/**
 * A chat completions request. Fields beyond these (response_format,
 * tool_choice, parallel_tool_calls, seed, stop, top_p, ...) pass through to
 * the provider unchanged (docs/protocol.md, "model").
 */
export interface ModelRequest {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  max_tokens?: number;
  /** The newer name of max_tokens; clamped by the budget the same way. */
  max_completion_tokens?: number;
  temperature?: number;
  [field: string]: unknown;
}

export interface ModelResponse {
  content: string | null;
  tool_calls: ToolCall[];
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface BudgetRemaining {
  steps: number;
  tool_calls: number;
  tokens: number;
  cost_usd: number;
  runtime_ms: number;
}

export interface BudgetUsed {
  steps: number;
  tool_calls: number;
  tokens: number;
  cost_usd: number;
  runtime_ms: number;
}

export type StopReason = 'max_steps' | 'max_tool_calls' | 'max_runtime' | 'max_tokens' | 'max_cost' | 'daily_cost' | 'shutdown' | 'cancelled';

export type ErrorCode =
  | 'budget_exhausted'
  | 'not_allowed'
  | 'invalid_args'
  | 'provider_unavailable'
  | 'provider_error'
  | 'tool_failed'
  | 'circuit_open'
  | 'denied'
  | 'bad_message'
  | 'stopping';

/** A resolution of an outbox item, handed to the agent when it starts again. */
export interface DeliveredResolution {
  item_id: string;
  kind: string;
  reason: string;
  question?: string;
  decision: string;
  answer?: string;
  extend?: Record<string, number>;
  by?: string;
  at?: string;
}

// Daemon → agent
export interface StartMessage {
  type: 'start';
  run_id: string;
  task: Record<string, unknown>;
  context: unknown;
  resume: { checkpoint: unknown; handoff: unknown; resolutions: DeliveredResolution[] };
  budget: { remaining: BudgetRemaining };
}
export interface ModelResultMessage {
  type: 'model_result';
  id: string;
  ok: true;
  response: ModelResponse;
  usage: Usage;
  model: string;
  replayed: boolean;
}
export interface ToolResultMessage {
  type: 'tool_result';
  id: string;
  ok: true;
  result: unknown;
  replayed: boolean;
}
export interface ErrorMessage {
  type: 'error';
  id: string | null;
  code: ErrorCode;
  message: string;
  /** With `circuit_open`: ms until the tool's circuit lets a call through again. */
  retry_after_ms?: number;
}
export interface BudgetWarningMessage {
  type: 'budget_warning';
  used: BudgetUsed;
  limits: BudgetUsed;
  /** The agent's spend today against daily_cost_usd, which also caps the cost left. */
  daily?: { used_usd: number; limit_usd: number };
}
export interface StopMessage {
  type: 'stop';
  reason: StopReason;
  grace_ms: number;
}
export type DaemonMessage = StartMessage | ModelResultMessage | ToolResultMessage | ErrorMessage | BudgetWarningMessage | StopMessage;

// Agent → daemon
export interface ModelCallMessage {
  type: 'model';
  id: string;
  request: ModelRequest;
}
export interface ToolCallMessage {
  type: 'tool';
  id: string;
  name: string;
  args: Record<string, unknown>;
}
export interface CheckpointMessage {
  type: 'checkpoint';
  state: unknown;
  context?: unknown;
}
export interface UncertainMessage {
  type: 'uncertain';
  reason: string;
  question?: string;
  blockers?: unknown[];
  state?: unknown;
}
export interface HandoffMessage {
  type: 'handoff';
  summary: string;
  next_steps?: unknown[];
  state?: unknown;
}
export interface UsageMessage {
  type: 'usage';
  input_tokens: number;
  output_tokens: number;
  cost_usd?: number;
}
export interface LogMessage {
  type: 'log';
  level?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  msg: string;
}
export interface ResultMessage {
  type: 'result';
  output: unknown;
}
export type AgentMessage =
  | ModelCallMessage
  | ToolCallMessage
  | CheckpointMessage
  | UncertainMessage
  | HandoffMessage
  | UsageMessage
  | LogMessage
  | ResultMessage;

const id = { type: 'string', minLength: 1, maxLength: 200 };
const count = { type: 'integer', minimum: 0 };

const chatMessageSchema = {
  type: 'object',
  required: ['role'],
  properties: {
    role: { enum: ['system', 'user', 'assistant', 'tool'] },
    // An array of content parts is what OpenAI-style clients send for multi-part messages.
    content: { type: ['string', 'null', 'array'] },
    tool_calls: { type: 'array' },
    tool_call_id: { type: 'string' },
    name: { type: 'string' },
  },
};

/** One schema per message type, so an error names the field of that type. */
const agentMessageSchemas: Record<AgentMessage['type'], object> = {
  model: {
    properties: {
      id,
      request: {
        type: 'object',
        required: ['messages'],
        properties: {
          messages: { type: 'array', items: chatMessageSchema, minItems: 1 },
          tools: { type: 'array' },
          max_tokens: { type: 'integer', minimum: 1 },
          max_completion_tokens: { type: 'integer', minimum: 1 },
          temperature: { type: 'number', minimum: 0, maximum: 2 },
          // Streaming is the endpoint's business; over the protocol a reply is one message.
          stream: { not: {} },
          stream_options: { not: {} },
        },
      },
    },
    required: ['id', 'request'],
  },
  tool: { properties: { id, name: { type: 'string', minLength: 1 }, args: { type: 'object' } }, required: ['id', 'name', 'args'] },
  checkpoint: { properties: { state: {}, context: {} }, required: ['state'] },
  uncertain: {
    properties: { reason: { type: 'string' }, question: { type: 'string' }, blockers: { type: 'array' }, state: {} },
    required: ['reason'],
  },
  handoff: { properties: { summary: { type: 'string' }, next_steps: { type: 'array' }, state: {} }, required: ['summary'] },
  usage: {
    properties: { input_tokens: count, output_tokens: count, cost_usd: { type: 'number', minimum: 0 } },
    required: ['input_tokens', 'output_tokens'],
  },
  log: { properties: { level: { enum: ['trace', 'debug', 'info', 'warn', 'error'] }, msg: { type: 'string' } }, required: ['msg'] },
  result: { properties: { output: {} }, required: ['output'] },
};

const validators = Object.fromEntries(
  Object.entries(agentMessageSchemas).map(([type, schema]) => [type, compile<AgentMessage>({ type: 'object', ...schema })]),
) as Record<AgentMessage['type'], ReturnType<typeof compile<AgentMessage>>>;

export type ParsedLine = { kind: 'message'; message: AgentMessage } | { kind: 'invalid'; reason: string; id: string | null } | { kind: 'noise' };

/**
 * Classify one stdout line: a valid message, a message-shaped line that is
 * wrong (answered with an error when it has an id), or noise (logged, ignored).
 */
export function parseAgentLine(line: string): ParsedLine {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return { kind: 'noise' };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { kind: 'noise' };
  }
  if (typeof value !== 'object' || value === null || typeof (value as { type?: unknown }).type !== 'string') return { kind: 'noise' };
  const maybeId = (value as { id?: unknown }).id;
  const replyId = typeof maybeId === 'string' ? maybeId : null;
  const type = (value as { type: string }).type;
  // Hashing and journaling recurse into a message: past this depth it is refused, not walked.
  if (jsonTextTooDeep(trimmed)) return { kind: 'invalid', reason: `${type} message ${tooDeepProblem()}`, id: replyId };
  const validate = Object.hasOwn(validators, type) ? validators[type as AgentMessage['type']] : undefined;
  if (!validate) return { kind: 'invalid', reason: `unknown message type ${JSON.stringify(type)}`, id: replyId };
  if (validate(value)) return { kind: 'message', message: value };
  return { kind: 'invalid', reason: `${type} message: ${validate.problems(value).join('; ')}`, id: replyId };
}

export { encodeMessage } from './codec.js';
