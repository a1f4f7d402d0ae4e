/** Shared fixtures of the model tests: a stand-in provider on 127.0.0.1, a manual clock, configs. */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_DEFAULTS, BUILTIN_LIMITS } from '../src/config/daemon-config.js';
import type { DaemonConfig, ModelPrice, ProviderConfig } from '../src/config/types.js';

/** What the fake answers to one request; `hang` never answers. */
export type FakeReply = { status?: number; headers?: Record<string, string>; body?: unknown } | 'hang';

export interface SeenRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** Resolves when the exchange's socket or response closed (the client hung up or we answered). */
  closed: Promise<void>;
}

export interface FakeProvider {
  /** `http://127.0.0.1:<port>/v1` */
  baseUrl: string;
  requests: SeenRequest[];
  /** Resolves once the server has seen `n` requests. */
  seen(n: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A scripted OpenAI-compatible endpoint. Replies are taken in order; the last
 * one repeats when `repeatLast`, otherwise a request past the script gets a
 * 599 so an unexpected call shows up in the test's assertions.
 */
export async function startFakeProvider(script: FakeReply[], options: { repeatLast?: boolean } = {}): Promise<FakeProvider> {
  const requests: SeenRequest[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const index = requests.length;
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
      requests.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>, closed });
      for (const w of waiters.filter((w) => requests.length >= w.n)) w.resolve();
      const reply = script[index] ?? (options.repeatLast ? script.at(-1) : undefined) ?? { status: 599, body: { error: { message: `unexpected request #${index + 1}` } } };
      if (reply === 'hang') return;
      const body = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? completion({ content: 'ok' }));
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    seen: (n) => (requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** An OpenAI chat completion body. */
export function completion(options: {
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

/** Time that moves only when told; `sleep` records the wait and returns at once. */
export class ManualClock {
  readonly sleeps: number[] = [];
  constructor(public t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
    this.sleeps.push(ms);
    this.t += ms;
  }
}

export function openaiProvider(name: string, baseUrl: string, overrides: Partial<ProviderConfig> = {}): ProviderConfig {
  return { name, kind: 'openai', baseUrl, apiKeyEnv: null, timeoutMs: 5000, script: null, ...overrides };
}

export function daemonConfig(providers: ProviderConfig[], models: Record<string, ModelPrice> = {}): DaemonConfig {
  return {
    file: null,
    providers: Object.fromEntries(providers.map((p) => [p.name, p])),
    models,
    tools: {},
    defaults: { ...BUILTIN_DEFAULTS, retry: { attempts: 3, baseDelayMs: 1000, maxDelayMs: 30_000 } },
    limits: BUILTIN_LIMITS,
    maxParallelRuns: 4,
    http: null,
    httpAllowRemote: false,
    traceCapture: 'redacted',
    cache: { enabled: false, ttlMs: 3_600_000 },
    circuit: { failures: 5, windowMs: 60_000, cooldownMs: 30_000 },
    lockStaleMs: 10_000,
    outageAlertMs: 600_000,
    sweepIntervalMs: 60_000,
    quietPeriodMs: 5000,
    modelTimeoutMs: 60_000,
    secrets: [],
    maxFileBytes: 1024 * 1024,
    fileMode: { state: 0o640, outbox: 0o660 },
    notify: [],
  };
}

/** How many timers the process holds: a call must leave this where it found it. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
