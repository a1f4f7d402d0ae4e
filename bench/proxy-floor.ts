// The floor under P6's daemon CPU per endpoint call (README.md, Benchmark: P6):
// a bare node:http proxy doing what the run's endpoint must do at least for a
// chat completion (read the request, one line appended, the provider called on a
// kept-alive connection, one line appended and fdatasynced, the reply sent),
// with none of agentd's own work. Prints the proxy's CPU per
// call (main thread, user, system) as fetch calls it like P6's agent does, and
// its wall overhead over the same call made straight to the provider (p50 and
// p99, alternating) as a ratio to a 1 KB fdatasync'd append measured in the
// same run, as P6 reports it: first with the fdatasync on the thread pool, then
// on the event loop (as agentd does while the disk is fast: store/sync-choice.ts),
// then without the fdatasync, and without any file.
// `node dist/bench/proxy-floor.js [calls]`
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { appendMedianMs, cpuSplitMs, percentile } from './support.js';

const PONG = JSON.stringify({ id: 'cmpl-bench', object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'pong' } }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
export type Mode = 'append+fdatasync' | 'append+inline fdatasync' | 'append' | 'no file';

function listen(server: http.Server): void {
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
}

function provider(): void {
  listen(
    http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(PONG) });
        res.end(PONG);
      });
    }),
  );
}

function readAll(stream: NodeJS.ReadableStream, then: (text: string) => void): void {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => then(Buffer.concat(chunks).toString('utf8')));
}

function proxy(upstream: number, journal: string, mode: Mode): void {
  const fd = fs.openSync(journal, 'a');
  const fdatasync = promisify(fs.fdatasync);
  const agent = new http.Agent({ keepAlive: true });
  const append = (record: unknown) => mode !== 'no file' && fs.writeSync(fd, JSON.stringify(record) + '\n');
  const server = http.createServer((req, res) =>
    readAll(req, (text) => {
      const body = JSON.parse(text) as Record<string, unknown>;
      append({ phase: 'started', body });
      const payload = JSON.stringify({ ...body, model: 'echo' });
      const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
      const out = http.request({ host: '127.0.0.1', port: upstream, path: '/v1/chat/completions', method: 'POST', agent, headers }, (reply) =>
        readAll(reply, (answer) => {
          append({ phase: 'completed', reply: JSON.parse(answer) as unknown });
          const send = () => {
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
            res.end(answer);
          };
          if (mode === 'append+fdatasync') fdatasync(fd).then(send, (err: unknown) => res.destroy(err as Error));
          else {
            if (mode === 'append+inline fdatasync') fs.fdatasyncSync(fd);
            send();
          }
        }),
      );
      out.end(payload);
    }),
  );
  listen(server);
}

/** What one mode of the floor measured: the proxy's CPU per call, and its overhead over a direct call against the append. */
export interface FloorResult {
  mode: Mode;
  cpu: { all: number; main: number; others: number; user: number; system: number };
  overheadP50: number;
  overheadP99: number;
  append: { median: number; p99: number };
}

/** One mode of the floor, `calls` chat completions; the proxy and the stand-in provider are child processes. */
export async function measureFloor(mode: Mode, calls: number, dir: string): Promise<FloorResult> {
  const self = fileURLToPath(import.meta.url);
  const portOf = (child: ReturnType<typeof fork>) => new Promise<number>((resolve) => child.once('message', (m) => resolve(Number(m))));
  const stand = fork(self, ['provider']);
  const providerPort = await portOf(stand);
  const via = fork(self, ['proxy', String(providerPort), path.join(dir, 'journal.jsonl'), mode]);
  try {
    const url = `http://127.0.0.1:${await portOf(via)}/v1/chat/completions`;
    const direct = `http://127.0.0.1:${providerPort}/v1/chat/completions`;
    const body = JSON.stringify({ model: 'echo', messages: [{ role: 'user', content: 'ping' }], max_tokens: 16 });
    const post = async (to: string) => (await fetch(to, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer x' }, body })).text();
    const timed = async (to: string) => {
      const t0 = performance.now();
      await post(to);
      return performance.now() - t0;
    };
    for (let i = 0; i < 50; i++) await post(url);
    const before = cpuSplitMs(via.pid!);
    for (let i = 0; i < calls; i++) await post(url);
    const after = cpuSplitMs(via.pid!);
    const viaMs: number[] = [];
    const directMs: number[] = [];
    for (let i = 0; i < calls; i++) {
      // Alternating order, as P6 does.
      if (i % 2 === 0) viaMs.push(await timed(url)), directMs.push(await timed(direct));
      else directMs.push(await timed(direct)), viaMs.push(await timed(url));
    }
    const append = appendMedianMs(dir, 1000);
    const over = (p: number) => percentile(viaMs, p) - percentile(directMs, p);
    const per = (k: keyof typeof after) => (after[k] - before[k]) / calls;
    return {
      mode,
      cpu: { all: per('main') + per('others'), main: per('main'), others: per('others'), user: per('user'), system: per('system') },
      overheadP50: over(50),
      overheadP99: over(99),
      append: { median: append.median, p99: append.spread.p99 },
    };
  } finally {
    stand.kill();
    via.kill();
  }
}

function printFloor(r: FloorResult): void {
  const ms = (n: number) => n.toFixed(2);
  console.log(`${r.mode.padEnd(24)} proxy CPU per call ${ms(r.cpu.all)} ms (main thread ${ms(r.cpu.main)} ms, other threads ${ms(r.cpu.others)} ms; user ${ms(r.cpu.user)}, system ${ms(r.cpu.system)})`);
  console.log(
    `${''.padEnd(24)} overhead over a direct call p50 ${r.overheadP50.toFixed(3)} ms = ${(r.overheadP50 / r.append.median).toFixed(2)}× the append's p50 (${r.append.median.toFixed(3)} ms), p99 ${r.overheadP99.toFixed(3)} ms = ${(r.overheadP99 / r.append.p99).toFixed(2)}× the append's p99 (${r.append.p99.toFixed(3)} ms)`,
  );
}

// The proxy and the provider are this file forked with a role; run with none, it prints every mode. Imported (P6
// runs the inline mode beside the daemon), it does nothing by itself.
const [role, ...rest] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (role === 'provider') provider();
  else if (role === 'proxy') proxy(Number(rest[0]), rest[1]!, rest[2] as Mode);
  else {
    const calls = Number(role ?? 840);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-floor-'));
    try {
      console.log(`a bare node:http proxy, ${calls} chat completions (fetch, as P6's agent), load average ${os.loadavg()[0]!.toFixed(2)}`);
      for (const mode of ['append+fdatasync', 'append+inline fdatasync', 'append', 'no file'] as const) printFloor(await measureFloor(mode, calls, dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
