import fs from 'node:fs/promises';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { BadNameError, ConfigError, NotFoundError, UsageError } from '../errors.js';
import { exists } from '../store/durable.js';
import type { Decision } from '../store/outbox.js';
import { isValidName, type HomePaths } from '../store/paths.js';
import { resolveItem } from '../store/resolution.js';
import { retryDeadLetter } from '../store/dead-letters.js';
import { agentsView, deadLettersView, outboxView, runsView, spendView, traceView, type ConsoleView } from './data.js';
import { ChangeFeed } from './events.js';
import { tokenMatches } from './token.js';

/**
 * The web console (README "Console"), behind the daemon's --http address.
 * Every route but the static assets needs the token: `?token=` on the page
 * and the event stream (a browser cannot set headers there), the
 * `x-agentd-token` header on the API. Changes are POSTs with the header only,
 * so a link or another site's form can never make one.
 */

/** The shipped assets (web/ in the package), by URL path. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/assets/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/assets/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};
/** dist/src/console/ → the package root's web/. */
const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const DECISIONS: ReadonlySet<string> = new Set(['continue', 'approve', 'deny', 'cancel', 'retry', 'answer']);
const MAX_BODY = 64 * 1024;

export interface ConsoleOptions {
  paths: HomePaths;
  token: string;
  view: ConsoleView;
  /** Who decided, when the page does not say: the daemon's OS user. */
  defaultActor: string;
  now: () => number;
  log: Logger;
}

export class ConsoleServer {
  private readonly feed: ChangeFeed;
  private readonly assets = new Map<string, Buffer>();

  constructor(private readonly options: ConsoleOptions) {
    this.feed = new ChangeFeed(options.paths, options.view, options.log);
  }

  close(): void {
    this.feed.close();
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const asset = ASSETS[url.pathname];
    if (asset) return this.sendAsset(req, res, asset);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      if (!this.allowed(url.searchParams.get('token'))) return deny(res);
      if (!isRead(req)) return notAllowed(res, 'GET');
      return this.sendAsset(req, res, { file: 'console.html', type: 'text/html; charset=utf-8' });
    }
    if (url.pathname === '/api/events') {
      if (!this.allowed(url.searchParams.get('token') ?? header(req, 'x-agentd-token'))) return deny(res);
      return this.feed.subscribe(req, res);
    }
    if (!url.pathname.startsWith('/api/')) return sendJson(res, 404, { error: 'not found' });
    if (!this.allowed(header(req, 'x-agentd-token'))) return deny(res);
    try {
      await this.api(req, res, url);
    } catch (err) {
      const status = err instanceof NotFoundError ? 404 : err instanceof UsageError || err instanceof BadNameError ? 400 : err instanceof ConfigError ? 409 : 500;
      if (status === 500) this.options.log.error({ err, path: url.pathname }, 'console request failed');
      sendJson(res, status, { error: status === 500 ? 'internal error (see the daemon log)' : (err as Error).message });
    }
  }

  private allowed(given: string | null): boolean {
    return tokenMatches(given, this.options.token);
  }

  private async api(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const { paths } = this.options;
    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent); // after /api/
    const route = parts[0];
    if (req.method === 'POST') {
      if (route === 'items' && parts.length === 3 && parts[2] === 'resolve') return this.resolve(req, res, parts[1]!);
      if (route === 'dead-letters' && parts.length === 4 && parts[3] === 'retry') return this.retry(res, parts[1]!, parts[2]!);
      return sendJson(res, 404, { error: 'not found' });
    }
    if (parts.at(-1) === 'resolve' || parts.at(-1) === 'retry') return notAllowed(res, 'POST'); // changes are never a GET
    if (!isRead(req)) return notAllowed(res, 'GET, POST');
    const q = url.searchParams;
    if (route === 'me' && parts.length === 1) return sendJson(res, 200, { by: this.options.defaultActor, home: paths.root });
    if (route === 'items' && parts.length === 1) return sendJson(res, 200, await outboxView(paths));
    if (route === 'agents' && parts.length === 1) return sendJson(res, 200, await agentsView(paths, this.options.view));
    if (route === 'runs' && parts.length === 1) {
      const limit = Math.min(1000, Math.max(1, Number(q.get('limit') ?? 200) || 200));
      return sendJson(res, 200, await runsView(paths, { agent: q.get('agent') || null, status: q.get('status') || null, search: q.get('search') || null, limit }));
    }
    if (route === 'runs' && parts.length === 3 && parts[2] === 'trace') {
      const spans = await traceView(paths, parts[1]!);
      return spans ? sendJson(res, 200, spans) : sendJson(res, 404, { error: `no trace of run ${parts[1]}` });
    }
    if (route === 'spend' && parts.length === 1) {
      const days = Math.min(90, Math.max(1, Number(q.get('days') ?? 14) || 14));
      return sendJson(res, 200, await spendView(paths, days, new Date(this.options.now())));
    }
    if (route === 'dead-letters' && parts.length === 1) return sendJson(res, 200, await deadLettersView(paths));
    sendJson(res, 404, { error: 'not found' });
  }

  /** Exactly what `agentd resolve` writes (store/resolution.ts), `by` included. */
  private async resolve(req: http.IncomingMessage, res: http.ServerResponse, itemId: string): Promise<void> {
    const body = await readJsonBody(req);
    const decision = body.decision;
    if (typeof decision !== 'string' || !DECISIONS.has(decision)) throw new UsageError('decision must be one of continue, approve, deny, cancel, retry, answer');
    const answer = optionalString(body.answer, 'answer');
    if (decision === 'answer' && !answer) throw new UsageError('an answer needs text');
    const extend = optionalString(body.extend, 'extend');
    const by = optionalString(body.by, 'by') || this.options.defaultActor;
    const outcome = await resolveItem(this.options.paths, itemId, {
      decision: decision as Decision,
      ...(answer ? { answer } : {}),
      ...(extend ? { extend } : {}),
      by,
    }, new Date(this.options.now()));
    if (outcome.kind === 'already_resolved') {
      const r = outcome.item.resolution;
      return sendJson(res, 409, { error: `already resolved (${r?.decision ?? '?'} by ${r?.by ?? '?'})`, item: outcome.item });
    }
    this.options.log.info({ item_id: itemId, decision, by }, 'outbox item resolved in the console');
    this.feed.poke();
    sendJson(res, 200, { item: outcome.item });
  }

  /** `agentd dlq retry`: the task back into its inbox, the record removed. */
  private async retry(res: http.ServerResponse, agent: string, id: string): Promise<void> {
    if (!isValidName(agent) || !isValidName(id)) throw new UsageError('agent and id must be names');
    const { paths } = this.options;
    if (!(await exists(paths.deadLetter(agent, id)))) throw new NotFoundError(`no dead letter ${agent}/${id}`);
    if (await exists(paths.inboxTask(agent, id))) throw new UsageError(`${paths.relative(paths.inboxTask(agent, id))} already exists: move it away first`);
    await retryDeadLetter(paths, agent, id);
    this.options.log.info({ agent, task_id: id }, 'dead letter requeued from the console');
    this.feed.poke();
    sendJson(res, 200, { agent, id, file: paths.relative(paths.inboxTask(agent, id)) });
  }

  private async sendAsset(req: http.IncomingMessage, res: http.ServerResponse, asset: { file: string; type: string }): Promise<void> {
    if (!isRead(req)) return notAllowed(res, 'GET');
    let body = this.assets.get(asset.file);
    if (!body) {
      body = await fs.readFile(WEB_DIR + asset.file);
      this.assets.set(asset.file, body);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function isRead(req: http.IncomingMessage): boolean {
  return req.method === 'GET' || req.method === 'HEAD';
}

function header(req: http.IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new UsageError(`${field} must be text`);
  return value;
}

async function readJsonBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new UsageError(`the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new UsageError('the request body must be a JSON object');
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function deny(res: http.ServerResponse): void {
  const body = 'unauthorized: open the console with the URL agentd start printed (the token is in state/console.token)\n';
  res.writeHead(401, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function notAllowed(res: http.ServerResponse, allow: string): void {
  res.writeHead(405, { ...SECURITY_HEADERS, allow, 'content-type': 'text/plain' });
  res.end('method not allowed\n');
}
