import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { HeaderSource } from './classify.js';

/**
 * One JSON POST to a provider, on node:http with kept-alive connections
 * (README.md, Benchmark: P1 and P6). `fetch` cost the daemon about a third of
 * its CPU per model call (WHATWG streams, Request and Response objects, a
 * second abort signal); node:http does the same exchange for a fraction.
 * What it keeps from fetch: a reply whose body arrives compressed is
 * decompressed, a 307/308 redirect is followed with the same body, and an
 * abort or the timeout tears down the request and its socket.
 */

export interface PostReply {
  status: number;
  statusText: string;
  headers: HeaderSource;
  text: string;
}

/**
 * Idle connections are closed after this (undici's default, which fetch used),
 * or earlier when the server's Keep-Alive header says it closes them sooner.
 */
const IDLE_MS = 4000;
const MAX_REDIRECTS = 5;

const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_MS }),
};

const DECOMPRESS: Record<string, (b: Buffer) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
};

/** The post took longer than its timeout: the request was destroyed. */
export class PostTimeoutError extends Error {
  override readonly name = 'PostTimeoutError';
}

/** What ends a post early: the caller's signal, or `timeoutMs` after it started (redirects and the one retry included). */
export interface PostLimits {
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * POST `body` to `url`; rejects on a connection failure, on an abort of `limits.signal` (with its reason), or with a
 * PostTimeoutError once `limits.timeoutMs` pass; never on an HTTP status.
 */
export async function postJson(url: URL, headers: Record<string, string>, body: string, limits: PostLimits): Promise<PostReply> {
  const payload = Buffer.from(body);
  const call = new PostCall(limits);
  try {
    let target = url;
    for (let hop = 0; ; hop++) {
      const reply = await postOnce(target, headers, payload, call);
      const location = reply.location;
      if ((reply.status !== 307 && reply.status !== 308) || !location || hop >= MAX_REDIRECTS) return reply;
      target = new URL(location, target);
    }
  } finally {
    call.done();
  }
}

/**
 * One post's cancellation: the caller's signal or the timeout destroys the request in flight, and every failure
 * after that is reported as that reason. One listener and one timer per post, rather than an AbortController per
 * call and a signal handed to each request, which node:http follows with a listener per request and an
 * end-of-stream watch (README.md, Benchmark: P6).
 */
class PostCall {
  /** Why the post was cancelled; null while it may go on. */
  reason: unknown = null;
  private current: http.ClientRequest | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = (): void => this.cancel(this.limits.signal.reason ?? new Error('the call was cancelled'));

  constructor(private readonly limits: PostLimits) {
    this.timer = setTimeout(() => this.cancel(new PostTimeoutError(`no complete reply within ${limits.timeoutMs}ms`)), limits.timeoutMs);
    if (limits.signal.aborted) this.onAbort();
    else limits.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The request now in flight: destroyed at once if the post is already cancelled. */
  attach(req: http.ClientRequest): void {
    this.current = req;
    if (this.reason !== null) req.destroy(this.reason as Error);
  }

  done(): void {
    clearTimeout(this.timer);
    this.limits.signal.removeEventListener('abort', this.onAbort);
    this.current = null;
  }

  private cancel(reason: unknown): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.current?.destroy(reason as Error);
  }
}

interface RawReply extends PostReply {
  location: string | undefined;
}

async function postOnce(url: URL, headers: Record<string, string>, payload: Buffer, call: PostCall): Promise<RawReply> {
  try {
    return await exchange(url, headers, payload, call, false);
  } catch (err) {
    // A kept-alive connection the server closed while it sat idle: nothing reached the server, so the
    // request goes once more on a new connection (as Node's http documentation advises).
    if (!(err instanceof StaleConnectionError)) throw err;
    return exchange(url, headers, payload, call, true);
  }
}

class StaleConnectionError extends Error {
  override readonly name = 'StaleConnectionError';
}

function exchange(url: URL, headers: Record<string, string>, payload: Buffer, call: PostCall, fresh: boolean): Promise<RawReply> {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  const agent = fresh ? undefined : agents[secure ? 'https:' : 'http:'];
  const options: http.RequestOptions = {
    method: 'POST',
    headers: { ...headers, 'content-length': String(payload.length) },
    ...(agent ? { agent } : { agent: false }),
  };
  return new Promise<RawReply>((resolve, reject) => {
    // Once the post is cancelled, whatever error the teardown raises is reported as the cancellation.
    const fail = (err: unknown) => reject(call.reason ?? err);
    const req = (secure ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the reply was complete'));
      });
      res.on('end', () => {
        decoded(Buffer.concat(chunks), res.headers['content-encoding'])
          .then((text) => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: headerSource(res.headers), text, location: res.headers.location }))
          .catch(reject);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && !fresh && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && call.reason === null;
      fail(stale ? new StaleConnectionError('the kept-alive connection was closed', { cause: err }) : err);
    });
    call.attach(req);
    req.end(payload);
  });
}

async function decoded(body: Buffer, encoding: string | undefined): Promise<string> {
  const codings = (encoding ?? '').toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity');
  let bytes = body;
  // Applied in the order given, so undone in reverse.
  for (const coding of codings.reverse()) {
    const undo = Object.hasOwn(DECOMPRESS, coding) ? DECOMPRESS[coding] : undefined;
    if (!undo) throw new Error(`the reply's content-encoding ${coding} is not supported`);
    bytes = await undo(bytes);
  }
  return bytes.toString('utf8');
}

function headerSource(headers: http.IncomingHttpHeaders): HeaderSource {
  return {
    get(name: string): string | null {
      const value = headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}
