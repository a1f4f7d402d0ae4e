import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HttpAddress } from '../config/http-address.js';
import type { HealthVerdict } from './health.js';

/**
 * GET /healthz and GET /metrics, without authentication and changing
 * nothing; every other path goes to the console (README "Console"), which
 * has its own token. Loopback by default (the daemon checks the address).
 */

export interface ObserveHandlers {
  /** The verdict and whatever else is worth showing in the body. */
  health(): Promise<HealthVerdict & { details: Record<string, unknown> }>;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Every other path: the web console. */
  console?(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
}

export interface ObserveServer {
  /** The address actually bound (port 0 picks a free one). */
  address: HttpAddress;
  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void>;
}

export async function startObserveServer(address: HttpAddress, handlers: ObserveHandlers, log: Logger): Promise<ObserveServer> {
  const server = http.createServer((req, res) => {
    handle(req, res, handlers).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ status: 'error', error: (err as Error).message }) + '\n');
      else res.destroy();
    });
  });
  // A scraper that keeps a connection open must not hold up the daemon's exit.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http server error'));
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, handlers: ObserveHandlers): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/healthz' && path !== '/metrics' && handlers.console) return handlers.console(req, res);
  if (path !== '/healthz' && path !== '/metrics') return send(res, 404, 'text/plain', 'not found: try /healthz or /metrics\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, 'text/plain', 'method not allowed\n');
  }
  if (path === '/healthz') {
    const verdict = await handlers.health();
    const body = verdict.ok ? { status: 'ok', ...verdict.details } : { status: 'unavailable', reasons: verdict.reasons, ...verdict.details };
    return send(res, verdict.ok ? 200 : 503, 'application/json', JSON.stringify(body) + '\n', req.method === 'HEAD');
  }
  const metrics = await handlers.metrics();
  send(res, 200, metrics.contentType, metrics.body, req.method === 'HEAD');
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(headOnly ? undefined : body);
}
