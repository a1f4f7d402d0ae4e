import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AgentDefinition } from '../config/types.js';
import { parseAgentLine, type CheckpointMessage, type HandoffMessage, type ModelRequest, type UncertainMessage } from '../protocol/messages.js';
import type { ModelCallOutcome } from '../run/model-call.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';
import { allowedModels, chooseModel } from './models.js';
import { completionBody, endpointError, providerErrorStatus, sseEvents, type EndpointError, type EndpointErrorCode } from './openai-shape.js';

/**
 * The run's OpenAI-compatible endpoint (README "Bring your own agent"): one
 * loopback HTTP server per daemon, routing each request to its run by the
 * bearer token that run was given. `POST /v1/chat/completions` (streamed or
 * not), `GET /v1/models`, and agentd's own calls for plain agents:
 * `POST /escalate`, `/checkpoint`, `/handoff`.
 */

/** What a run offers its endpoint; every call is serialized with the run's other calls. */
export interface EndpointSession {
  readonly agent: AgentDefinition;
  /** One model step, exactly like a protocol `model` message. */
  chat(request: ModelRequest, model: string, fallbackModels: string[]): Promise<ModelCallOutcome>;
  /** A protocol message that arrived over HTTP. */
  post(message: CheckpointMessage | UncertainMessage | HandoffMessage): Promise<void>;
}

/** A run's registration: the variables its process gets, and the end of its token. */
export interface EndpointGrant {
  env: Record<string, string>;
  close(): void;
}

/** A request body larger than this is refused (a prompt of a few MB is already extreme). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

const AGENT_POSTS: Record<string, 'uncertain' | 'checkpoint' | 'handoff'> = {
  '/escalate': 'uncertain',
  '/checkpoint': 'checkpoint',
  '/handoff': 'handoff',
};

export class RunEndpoint {
  private readonly server: http.Server;
  private readonly sessions = new Map<string, EndpointSession>();
  private port = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        this.log.error({ err, path: req.url }, 'endpoint request failed');
        if (!res.headersSent) send(res, 500, { error: { message: 'agentd failed to handle the request', type: 'server_error', code: 'internal', param: null } });
        else res.destroy();
      });
    });
    // Model calls may take minutes: the run's own limits bound them, not the server's.
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 5000;
  }

  /** Listen on 127.0.0.1, on a port the system picks. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.log.debug({ port: this.port }, 'run endpoint listening');
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Register a run: a fresh token, valid until `close()`. */
  open(session: EndpointSession): EndpointGrant {
    const token = `agentd-run-${randomBytes(24).toString('hex')}`;
    this.sessions.set(token, session);
    return {
      env: { OPENAI_BASE_URL: `${this.url}/v1`, OPENAI_API_KEY: token, AGENTD_URL: this.url, AGENTD_RUN_TOKEN: token },
      close: () => this.sessions.delete(token),
    };
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const session = this.sessionOf(req);
    if (!session) return void (await drainThen(req, () => sendError(res, endpointError('invalid_run_token', 'unknown or expired run token: the run this token was given to has ended'))));
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) return void (await drainThen(req, () => this.models(res, session)));
    if (req.method !== 'POST') return void (await drainThen(req, () => sendError(res, endpointError('not_found', `${req.method} ${path} is not served here`))));
    const body = await readJson(req);
    if (typeof body === 'string') return sendError(res, endpointError('invalid_request', body));
    if (path === '/v1/chat/completions' || path === '/chat/completions') return this.chat(res, session, body);
    const type = Object.hasOwn(AGENT_POSTS, path) ? AGENT_POSTS[path] : undefined;
    if (type) return this.agentPost(res, session, type, body);
    sendError(res, endpointError('not_found', `POST ${path} is not served here (try /v1/chat/completions, /escalate, /checkpoint, /handoff)`));
  }

  private sessionOf(req: http.IncomingMessage): EndpointSession | undefined {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    for (const [known, session] of this.sessions) if (sameToken(known, token)) return session;
    return undefined;
  }

  private models(res: http.ServerResponse, session: EndpointSession): void {
    const created = Math.floor(this.now() / 1000);
    send(res, 200, { object: 'list', data: allowedModels(session.agent).map((id) => ({ id, object: 'model', created, owned_by: 'agentd' })) });
  }

  private async chat(res: http.ServerResponse, session: EndpointSession, body: Record<string, unknown>): Promise<void> {
    if (!Array.isArray(body.messages) || body.messages.length === 0 || !body.messages.every((m) => typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string')) {
      return sendError(res, endpointError('invalid_request', 'messages must be a non-empty array of objects with a role'));
    }
    const choice = chooseModel(session.agent, body.model);
    if (!choice.ok) return sendError(res, endpointError('model_not_allowed', choice.message));
    const outcome = await session.chat(body as unknown as ModelRequest, choice.model, choice.fallbackModels);
    if (outcome.kind !== 'answered') return sendError(res, refusal(outcome));
    const created = Math.floor(this.now() / 1000);
    // The provider's own body carries its id: a fresh one only for a reply built here.
    const completion = completionBody(outcome.reply, outcome.usage, { created, id: outcome.reply.raw ? '' : `chatcmpl-agentd-${randomBytes(8).toString('hex')}` });
    if (body.stream !== true) return send(res, 200, completion);
    const options = body.stream_options as { include_usage?: unknown } | undefined;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.end(sseEvents(completion, options?.include_usage === true).join(''));
  }

  private async agentPost(res: http.ServerResponse, session: EndpointSession, type: 'uncertain' | 'checkpoint' | 'handoff', body: Record<string, unknown>): Promise<void> {
    // The same schema as the protocol's message, so both ways are held to one contract.
    const parsed = parseAgentLine(JSON.stringify({ ...body, type }));
    if (parsed.kind !== 'message') {
      return sendError(res, endpointError('invalid_request', parsed.kind === 'invalid' ? parsed.reason : `${type}: the body is not a JSON object`));
    }
    await session.post(parsed.message as CheckpointMessage | UncertainMessage | HandoffMessage);
    send(res, 200, { ok: true });
  }
}

function refusal(outcome: Exclude<ModelCallOutcome, { kind: 'answered' }>): EndpointError {
  switch (outcome.kind) {
    case 'refused':
      return endpointError('budget_exhausted', `budget exhausted: ${outcome.reason}; the run is stopping (write your handoff to $AGENTD_URL/handoff)`);
    case 'stopping':
      return endpointError('stopping', 'the run is stopping');
    case 'failed': {
      const error = endpointError(outcome.code as EndpointErrorCode, outcome.message);
      return outcome.code === 'provider_error' ? { ...error, status: providerErrorStatus(outcome.status) } : error;
    }
  }
}

function sameToken(known: string, given: string): boolean {
  const a = Buffer.from(known);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The body as a JSON object, or a sentence saying why it is not one. */
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown> | string> {
  const text = await readBody(req);
  if (text === null) return `the body is larger than ${MAX_BODY_BYTES} bytes`;
  if (jsonTextTooDeep(text)) return `the body ${tooDeepProblem()}`;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    return 'the body is not a JSON object';
  } catch {
    return 'the body is not JSON';
  }
}

/**
 * The body as text; null once it passes MAX_BODY_BYTES. Read with listeners, not an async iterator, which costs a few
 * promises per chunk on every call (README.md, Benchmark: P6).
 */
function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      // Refused at once; what still comes is read and dropped.
      chunks.length = 0;
      resolve(null);
    });
    req.once('end', () => resolve(size > MAX_BODY_BYTES ? null : chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

async function drainThen(req: http.IncomingMessage, then: () => void): Promise<void> {
  for await (const _ of req) {
    // discard: a request's body must be read before the connection can be reused
  }
  then();
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: http.ServerResponse, error: EndpointError): void {
  res.setHeader('x-should-retry', 'false');
  send(res, error.status, error.body);
}
