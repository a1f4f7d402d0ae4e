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
 * abort tears down the request and its socket.
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

/** POST `body` to `url`; rejects on a connection failure or an abort of `signal`, never on an HTTP status. */
export async function postJson(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<PostReply> {
  const payload = Buffer.from(body);
  let target = url;
  for (let hop = 0; ; hop++) {
    const reply = await postOnce(target, headers, payload, signal);
    const location = reply.location;
    if ((reply.status !== 307 && reply.status !== 308) || !location || hop >= MAX_REDIRECTS) return reply;
    target = new URL(location, target);
  }
}

interface RawReply extends PostReply {
  location: string | undefined;
}

async function postOnce(url: URL, headers: Record<string, string>, payload: Buffer, signal: AbortSignal): Promise<RawReply> {
  try {
    return await exchange(url, headers, payload, signal, false);
  } catch (err) {
    // A kept-alive connection the server closed while it sat idle: nothing reached the server, so the
    // request goes once more on a new connection (as Node's http documentation advises).
    if (!(err instanceof StaleConnectionError)) throw err;
    return exchange(url, headers, payload, signal, true);
  }
}

class StaleConnectionError extends Error {
  override readonly name = 'StaleConnectionError';
}

function exchange(url: URL, headers: Record<string, string>, payload: Buffer, signal: AbortSignal, fresh: boolean): Promise<RawReply> {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  const agent = fresh ? undefined : agents[secure ? 'https:' : 'http:'];
  const options: http.RequestOptions = {
    method: 'POST',
    headers: { ...headers, 'content-length': String(payload.length) },
    signal,
    ...(agent ? { agent } : { agent: false }),
  };
  return new Promise<RawReply>((resolve, reject) => {
    const req = (secure ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(signal.aborted ? signal.reason : new Error('the connection closed before the reply was complete'));
      });
      res.on('end', () => {
        decoded(Buffer.concat(chunks), res.headers['content-encoding'])
          .then((text) => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: headerSource(res.headers), text, location: res.headers.location }))
          .catch(reject);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && !fresh && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && !signal.aborted;
      reject(stale ? new StaleConnectionError('the kept-alive connection was closed', { cause: err }) : err);
    });
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
