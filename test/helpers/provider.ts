/**
 * The one stand-in for an OpenAI-compatible model provider, on 127.0.0.1,
 * shared by the unit tests, the end-to-end tests, the torture test and the
 * bench. A handler decides each reply; `startStandIn` and `startFakeProvider`
 * are the two ways tests script it (by a function, by a list).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One reply: `body` a string is sent as is, anything else as JSON, none as an empty body; `delayMs` holds it back. */
export interface ProviderReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  delayMs?: number;
}

/** `hang` never answers: the client's timeout or abort is what ends the exchange. */
export type ProviderHandler = (body: Record<string, unknown>, n: number) => ProviderReply | 'hang';

export interface SeenRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Resolves when the exchange's socket or response closed (the client hung up or we answered). */
  closed: Promise<void>;
}

export interface StandIn {
  /** `http://127.0.0.1:<port>/v1` */
  url: string;
  /** The same as `url`, under the name the model tests use. */
  baseUrl: string;
  /** Every request, in order (empty when started with `record: false`). */
  requests: SeenRequest[];
  /** How many requests arrived, recorded or not. */
  readonly count: number;
  /** Resolves once the server has seen `n` requests. */
  seen(n: number): Promise<void>;
  /** Told when a request arrives ('start') and when its reply is sent ('end'): for counting requests in flight. */
  onRequest?: (phase: 'start' | 'end') => void;
  close(): Promise<void>;
}

export interface StandInOptions {
  /** false: bodies are neither parsed nor kept (the bench's long runs). */
  record?: boolean;
}

/** Starts the stand-in; every request is answered by `handler`. */
export async function startProvider(handler: ProviderHandler, options: StandInOptions = {}): Promise<StandIn> {
  const requests: SeenRequest[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();
  let count = 0;
  let standIn: StandIn | null = null;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (options.record !== false) chunks.push(c);
    });
    req.on('end', () => {
      const n = ++count;
      const body = options.record === false ? {} : (JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>);
      if (options.record !== false) requests.push({ path: req.url ?? '', headers: req.headers, body, closed: new Promise<void>((resolve) => res.on('close', () => resolve())) });
      for (const w of waiters.filter((w) => count >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      standIn?.onRequest?.('start');
      const reply = handler(body, n);
      if (reply === 'hang') return;
      const send = () => {
        standIn?.onRequest?.('end');
        const text = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
        res.end(text);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return (standIn = {
    url,
    baseUrl: url,
    requests,
    get count() {
      return count;
    },
    seen: (n) => (count >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** The stand-in scripted by a function of the request body and its number (1-based). */
export function startStandIn(handler: ProviderHandler, options?: StandInOptions): Promise<StandIn> {
  return startProvider(handler, options);
}

/** What the stand-in answers to one request of a list script. */
export type FakeReply = ProviderReply | 'hang';

/**
 * The stand-in scripted by a list: replies are taken in order; the last one
 * repeats when `repeatLast`, otherwise a request past the script gets a 599,
 * so that an unexpected call shows up in the test's assertions.
 */
export function startFakeProvider(script: FakeReply[], options: { repeatLast?: boolean } = {}): Promise<StandIn> {
  return startProvider((_body, n) => {
    const reply = script[n - 1] ?? (options.repeatLast ? script.at(-1) : undefined);
    if (reply === undefined) return { status: 599, body: { error: { message: `unexpected request #${n}` } } };
    if (reply === 'hang' || reply.body !== undefined) return reply;
    return { ...reply, body: chatCompletion({ content: 'ok' }) };
  });
}

/** An OpenAI chat completion body: `content`, the usage, and tool calls in the API's own shape. */
export function completion(content: string | null, usage = { prompt_tokens: 10, completion_tokens: 5 }, toolCalls?: unknown[]): unknown {
  return {
    id: 'cmpl-1',
    object: 'chat.completion',
    choices: [{ index: 0, finish_reason: toolCalls ? 'tool_calls' : 'stop', message: { role: 'assistant', content, ...(toolCalls ? { tool_calls: toolCalls } : {}) } }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/**
 * An OpenAI chat completion body for the model layer's tests: tool calls by
 * name and arguments, and `usage: null` for a provider that reports none.
 */
export function chatCompletion(options: {
  content?: string | null;
  tool_calls?: { id: string; name: string; arguments: string }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content: options.content ?? null };
  if (options.tool_calls) message.tool_calls = options.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  const body: Record<string, unknown> = { id: 'chatcmpl-1', object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'stop' }] };
  if (options.usage !== null) body.usage = { ...(options.usage ?? { prompt_tokens: 10, completion_tokens: 5 }), total_tokens: 0 };
  return body;
}
