import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { OpenAIProvider } from '../src/model/provider-openai.js';
import type { ModelRequest } from '../src/protocol/messages.js';
import { openaiProvider } from './helpers/model-config.js';
import { chatCompletion } from './helpers/provider.js';

/**
 * The provider client's own HTTP (src/model/http-post.ts), on what fetch used
 * to do for it: compressed replies, redirects that keep the body, and a kept-
 * alive connection the server dropped.
 */

const request: ModelRequest = { messages: [{ role: 'user', content: 'ping' }], max_tokens: 16 };
const live = () => ({ signal: new AbortController().signal, timeoutMs: 5000 });

interface Seen {
  path: string;
  body: string;
  socket: Socket;
}

async function serve(handle: (req: IncomingMessage, res: ServerResponse, body: string, seen: Seen[]) => void): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ path: req.url ?? '', body, socket: req.socket });
      handle(req, res, body, seen);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1`, seen };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

test('a gzip-compressed reply is decompressed', async (t) => {
  const reply = chatCompletion({ content: 'pong' });
  const { server, url } = await serve((_req, res) => {
    const body = gzipSync(JSON.stringify(reply));
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length });
    res.end(body);
  });
  t.after(() => close(server));
  const result = await new OpenAIProvider(openaiProvider('local', url)).complete('m', request, live());
  assert.equal(result.response.content, 'pong');
  assert.deepEqual(result.raw, reply);
});

test('a 307 redirect is followed with the same method and body', async (t) => {
  const { server, url, seen } = await serve((req, res) => {
    if (req.url === '/v1/chat/completions') {
      res.writeHead(307, { location: '/moved/chat/completions', 'content-length': 0 });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(chatCompletion({ content: 'moved' })));
  });
  t.after(() => close(server));
  const result = await new OpenAIProvider(openaiProvider('local', url)).complete('m', request, live());
  assert.equal(result.response.content, 'moved');
  assert.deepEqual(seen.map((s) => s.path), ['/v1/chat/completions', '/moved/chat/completions']);
  assert.equal(seen[1]!.body, seen[0]!.body);
});

test('calls share one kept-alive connection, and one the server dropped is sent again on a new connection', async (t) => {
  let drop = false;
  const { server, url, seen } = await serve((_req, res, _body, all) => {
    const current = all.at(-1)!;
    // The third request arrives on the connection of the first two: the server hangs up on it unanswered,
    // as a server does that closes an idle connection just as a request is sent on it.
    if (drop && all.filter((s) => s.socket === current.socket).length === 3) return void current.socket.destroy();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(chatCompletion({ content: `reply ${all.length}` })));
  });
  t.after(() => close(server));
  const provider = new OpenAIProvider(openaiProvider('local', url));
  await provider.complete('m', request, live());
  await provider.complete('m', request, live());
  assert.equal(seen[1]!.socket, seen[0]!.socket, 'the second call reused the first connection');
  drop = true;
  const third = await provider.complete('m', request, live());
  assert.equal(seen.length, 4, 'the dropped request was sent once more');
  assert.notEqual(seen[3]!.socket, seen[0]!.socket, 'on a new connection');
  assert.equal(third.response.content, 'reply 4');
});
