import type { RecordedModelReply } from '../run/model-call.js';

/**
 * The OpenAI wire shapes the run's endpoint answers in (README "Bring your own
 * agent"): a completion body, the SSE chunks of a streamed one, and errors.
 * Pure: no I/O.
 */

/** agentd's refusal codes at the endpoint. */
export type EndpointErrorCode =
  | 'budget_exhausted'
  | 'stopping'
  | 'model_not_allowed'
  | 'provider_unavailable'
  | 'provider_error'
  | 'invalid_request'
  | 'invalid_run_token'
  | 'not_found';

/**
 * HTTP status of each refusal. Only statuses that none of the clients retry:
 * the openai client retries 408, 409, 429 and 5xx, the Vercel AI SDK the same,
 * LangChain everything but 400-407. agentd has retried already.
 */
const STATUS: Record<EndpointErrorCode, number> = {
  budget_exhausted: 403,
  stopping: 403,
  provider_unavailable: 403,
  model_not_allowed: 404,
  not_found: 404,
  provider_error: 400,
  invalid_request: 400,
  invalid_run_token: 401,
};

const TYPE: Record<EndpointErrorCode, string> = {
  budget_exhausted: 'insufficient_quota',
  stopping: 'insufficient_quota',
  provider_unavailable: 'server_error',
  model_not_allowed: 'invalid_request_error',
  not_found: 'invalid_request_error',
  provider_error: 'invalid_request_error',
  invalid_request: 'invalid_request_error',
  invalid_run_token: 'authentication_error',
};

export interface EndpointError {
  status: number;
  body: { error: { message: string; type: string; code: EndpointErrorCode; param: null } };
}

export function endpointError(code: EndpointErrorCode, message: string): EndpointError {
  return { status: STATUS[code], body: { error: { message, type: TYPE[code], code, param: null } } };
}

/** A provider's 4xx keeps its status (400, 404, 422...) when no client retries it; anything else is 400. */
export function providerErrorStatus(status: number | null): number {
  return status !== null && status >= 400 && status <= 407 ? status : 400;
}

export interface CompletionContext {
  /** Unix seconds. */
  created: number;
  /** Used when the provider sent no body of its own (the mock, a cache hit). */
  id: string;
}

/**
 * The non-streamed reply: the provider's own body when there is one, so every
 * field it sent reaches the agent; else one built from the response.
 */
export function completionBody(reply: RecordedModelReply, usage: { input_tokens: number; output_tokens: number }, ctx: CompletionContext): Record<string, unknown> {
  if (reply.raw) return reply.raw;
  const { content, tool_calls: toolCalls } = reply.response;
  return {
    id: ctx.id,
    object: 'chat.completion',
    created: ctx.created,
    model: reply.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map((c) => ({ ...c, type: 'function' })) } : {}) },
        finish_reason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: usage.input_tokens, completion_tokens: usage.output_tokens, total_tokens: usage.input_tokens + usage.output_tokens },
  };
}

/**
 * A completion as the SSE events OpenAI sends when streaming: a role chunk,
 * the content, each tool call whole, the finish reason, the usage chunk when
 * `include_usage` was asked, and `[DONE]`. The journal holds the whole reply
 * before a byte is sent, so it goes out at once.
 */
export function sseEvents(body: Record<string, unknown>, includeUsage: boolean): string[] {
  const choice = (Array.isArray(body.choices) ? body.choices[0] : undefined) as Record<string, unknown> | undefined;
  const message = (choice?.message ?? {}) as Record<string, unknown>;
  const base = { id: body.id, object: 'chat.completion.chunk', created: body.created, model: body.model, ...(body.system_fingerprint ? { system_fingerprint: body.system_fingerprint } : {}) };
  const chunk = (delta: Record<string, unknown>, finish: unknown = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const chunks: unknown[] = [chunk({ role: 'assistant', content: '' })];
  if (typeof message.content === 'string' && message.content !== '') chunks.push(chunk({ content: message.content }));
  if (typeof message.refusal === 'string') chunks.push(chunk({ refusal: message.refusal }));
  const toolCalls = Array.isArray(message.tool_calls) ? (message.tool_calls as Record<string, unknown>[]) : [];
  toolCalls.forEach((call, index) => chunks.push(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: call.function }] })));
  chunks.push(chunk({}, choice?.finish_reason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop')));
  if (includeUsage) chunks.push({ ...base, choices: [], usage: body.usage ?? null });
  return [...chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`), 'data: [DONE]\n\n'];
}
