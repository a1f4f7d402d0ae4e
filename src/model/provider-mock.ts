import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from '../config/document.js';
import type { ProviderConfig } from '../config/types.js';
import { errorMessage } from '../errors.js';
import { messageText, type ChatMessage, type ModelRequest, type ToolCall } from '../protocol/messages.js';
import { compile } from '../schema/validate.js';
import { classifyFailure } from './classify.js';
import { estimateTokens } from './pricing.js';
import { ModelCallError, type FailureClass, type ModelProvider, type ProviderReply } from './types.js';

/** One rule of a mock script, as a person writes it. */
interface RawRule {
  /** A substring, or `/regex/flags`, tested against the last user or tool message. Absent: always. */
  match?: string;
  /** Only for this model (`name` or `provider/name`). */
  model?: string;
  /** Apply to the first N matching calls only, so a script can fail twice and then succeed. */
  times?: number;
  reply?: { content?: string | null; tool_calls?: { name: string; arguments?: Record<string, unknown> }[] };
  usage?: { input_tokens: number; output_tokens: number };
  /** Fail like an HTTP error with this status (and optional Retry-After, seconds). */
  error?: { status: number; message?: string; retry_after?: number };
}

interface RawScript {
  replies: RawRule[];
}

const tokens = { type: 'integer', minimum: 0 };
const validateScript = compile<RawScript>({
  type: 'object',
  required: ['replies'],
  additionalProperties: false,
  properties: {
    v: { const: 1 },
    replies: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        anyOf: [{ required: ['reply'] }, { required: ['error'] }],
        properties: {
          match: { type: 'string', minLength: 1 },
          model: { type: 'string', minLength: 1 },
          times: { type: 'integer', minimum: 1 },
          reply: {
            type: 'object',
            additionalProperties: false,
            properties: {
              content: { type: ['string', 'null'] },
              tool_calls: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['name'],
                  properties: { name: { type: 'string', minLength: 1 }, arguments: { type: 'object' } },
                },
              },
            },
          },
          usage: { type: 'object', additionalProperties: false, required: ['input_tokens', 'output_tokens'], properties: { input_tokens: tokens, output_tokens: tokens } },
          error: {
            type: 'object',
            additionalProperties: false,
            required: ['status'],
            properties: { status: { type: 'integer', minimum: 100, maximum: 599 }, message: { type: 'string' }, retry_after: { type: 'number', minimum: 0 } },
          },
        },
      },
    },
  },
});

interface Rule extends RawRule {
  test: (text: string) => boolean;
}

interface LoadedScript {
  mtimeMs: number;
  size: number;
  rules: Rule[];
  /** How many calls each rule with `times` has answered since the file was last read. */
  used: number[];
}

/** How much of the last user message the default reply echoes. */
const ECHO_CHARS = 200;

/**
 * The `mock` provider: a deterministic echo without a script, or scripted
 * replies from a JSON/YAML file for tests and offline demos. The script is
 * re-read whenever its mtime or size changes, because people edit it while
 * the daemon runs.
 */
export class MockProvider implements ModelProvider {
  private script: LoadedScript | null = null;

  constructor(
    private readonly config: ProviderConfig,
    private readonly deps: { now?: () => number } = {},
  ) {}

  async complete(name: string, request: ModelRequest, options: { signal: AbortSignal; timeoutMs: number }): Promise<ProviderReply> {
    const model = `${this.config.name}/${name}`;
    if (options.signal.aborted) throw this.error(model, 'the call was cancelled', classifyFailure({ kind: 'aborted' }, this.now()), null);
    const last = lastMessage(request.messages, ['user']);
    if (this.config.script === null) {
      const content = `mock reply: ${messageText(last?.content).slice(0, ECHO_CHARS)}`;
      return { response: { content, tool_calls: [] }, usage: estimateUsage(request, content.length) };
    }
    const script = await this.load(model);
    // Fields it has no use for (response_format, tool_choice, seed, ...) are ignored, as a lenient server would.
    const text = messageText(lastMessage(request.messages, ['user', 'tool'])?.content);
    const index = script.rules.findIndex(
      (rule, i) => (rule.model === undefined || rule.model === name || rule.model === model) && (rule.times === undefined || script.used[i]! < rule.times) && rule.test(text),
    );
    const rule = script.rules[index];
    if (!rule) {
      // Loud on purpose: a silent default would hide a script that no longer matches the agent.
      const failure: FailureClass = { category: 'bad_request', retryable: false, retryAfterMs: null, availability: false };
      throw this.error(model, `no rule of ${this.config.script} matches the last message ${JSON.stringify(text.slice(0, 80))}`, failure, null);
    }
    script.used[index]! += 1;
    if (rule.error) {
      const headers = new Headers(rule.error.retry_after !== undefined ? { 'retry-after': String(rule.error.retry_after) } : {});
      const failure = classifyFailure({ kind: 'http', status: rule.error.status, headers, body: rule.error.message ?? '' }, this.now());
      throw this.error(model, `HTTP ${rule.error.status}: ${rule.error.message ?? 'scripted error'}`, failure, rule.error.status);
    }
    const firstId = priorToolCalls(request.messages) + 1;
    const toolCalls: ToolCall[] = (rule.reply?.tool_calls ?? []).map((call, i) => ({
      id: `call_${firstId + i}`,
      type: 'function',
      function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
    }));
    const content = rule.reply?.content ?? null;
    const outputChars = (content ?? '').length + toolCalls.reduce((n, c) => n + c.function.arguments.length, 0);
    return { response: { content, tool_calls: toolCalls }, usage: rule.usage ?? estimateUsage(request, outputChars) };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** The script, re-read when the file changed since the last call. */
  private async load(model: string): Promise<LoadedScript> {
    const file = this.config.script!;
    const broken = (why: string, cause?: unknown): ModelCallError =>
      this.error(model, `mock script ${file}: ${why}`, { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false }, null, cause);
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      throw broken('cannot be read', err);
    }
    if (this.script && this.script.mtimeMs === info.mtimeMs && this.script.size === info.size) return this.script;
    let raw: unknown;
    try {
      raw = parseDocument(file, await readFile(file, 'utf8'));
    } catch (err) {
      throw broken(errorMessage(err), err);
    }
    if (!validateScript(raw)) throw broken(validateScript.problems(raw).join('; '));
    const rules: Rule[] = [];
    for (const [i, rule] of raw.replies.entries()) {
      try {
        rules.push({ ...rule, test: matcher(rule.match) });
      } catch (err) {
        throw broken(`replies[${i}].match is not a valid regular expression: ${errorMessage(err)}`, err);
      }
    }
    this.script = { mtimeMs: info.mtimeMs, size: info.size, rules, used: rules.map(() => 0) };
    return this.script;
  }

  private error(model: string, detail: string, failure: FailureClass, status: number | null, cause?: unknown): ModelCallError {
    return new ModelCallError(`${model}: ${detail}`, failure, model, status, cause === undefined ? undefined : { cause });
  }
}

/** `"/ref[0-9]+/i"` is a regex; anything else a substring. */
function matcher(match: string | undefined): (text: string) => boolean {
  if (match === undefined) return () => true;
  const regex = /^\/(.+)\/([dgimsuy]*)$/s.exec(match);
  if (regex) {
    // A `g` or `y` flag would make test() stateful across calls; the match must not depend on history.
    const re = new RegExp(regex[1]!, regex[2]!.replace(/[gy]/g, ''));
    return (text) => re.test(text);
  }
  return (text) => text.includes(match);
}

function lastMessage(messages: ChatMessage[], roles: ChatMessage['role'][]): ChatMessage | undefined {
  for (let i = messages.length - 1; i >= 0; i--) if (roles.includes(messages[i]!.role)) return messages[i];
  return undefined;
}

/** Ids continue from the conversation, so a replayed request gets the same ids and no id repeats within a run. */
function priorToolCalls(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + (m.role === 'assistant' ? (m.tool_calls?.length ?? 0) : 0), 0);
}

/** ~4 characters per token of message content in, of reply out. */
function estimateUsage(request: ModelRequest, outputChars: number): ProviderReply['usage'] {
  const inputChars = request.messages.reduce((n, m) => n + messageText(m.content).length, 0);
  return { input_tokens: estimateTokens(inputChars), output_tokens: estimateTokens(outputChars) };
}
