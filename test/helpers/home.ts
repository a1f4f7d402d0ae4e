import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/helpers/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** A raw-protocol agent that follows its task's input.script (see the file). */
export const SCRIPTED_AGENT = path.join(REPO_ROOT, 'test', 'fixtures', 'scripted-agent.mjs');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A throw-away home folder. */
export class TestHome {
  constructor(readonly root: string) {}

  static async create(config?: string): Promise<TestHome> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-test-'));
    await fs.mkdir(path.join(root, 'agents'));
    if (config !== undefined) await fs.writeFile(path.join(root, 'agentd.yaml'), config);
    return new TestHome(root);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async write(rel: string, content: string | object): Promise<void> {
    const file = this.path(rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }

  /** An agent run by the scripted test agent; `definition` overrides or adds keys. */
  async scriptedAgent(name: string, definition: Record<string, unknown> = {}): Promise<void> {
    await this.write(`agents/${name}/agent.json`, { version: '1', command: ['node', SCRIPTED_AGENT], model: 'mock/echo', ...definition });
  }

  async inbox(agent: string, id: string, task: Record<string, unknown>): Promise<void> {
    await this.write(`agents/${agent}/inbox/${id}.json`, { id, created_at: new Date().toISOString(), ...task });
  }

  async readJson<T = Record<string, unknown>>(rel: string): Promise<T> {
    return JSON.parse(await fs.readFile(this.path(rel), 'utf8')) as T;
  }

  async readLines<T = Record<string, unknown>>(rel: string): Promise<T[]> {
    const text = await fs.readFile(this.path(rel), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as T);
  }

  async exists(rel: string): Promise<boolean> {
    return fs.access(this.path(rel)).then(
      () => true,
      () => false,
    );
  }

  async list(rel: string): Promise<string[]> {
    return fs.readdir(this.path(rel)).catch(() => []);
  }

  /** Run the built CLI against this home. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return runCli([...args, '--home', this.root], env);
  }

  /** `wrap`: a command the daemon is started through (it must exec the rest, e.g. `unshare --mount -- sh -c ...`). */
  startDaemon(env: NodeJS.ProcessEnv = {}, args: string[] = [], wrap: string[] = []): DaemonProcess {
    return new DaemonProcess(this.root, env, args, wrap);
  }

  async remove(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

type LogWaiter = { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void };

/** `agentd start` as a real child process; its JSON log lines are what tests await. */
export class DaemonProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters: LogWaiter[] = [];
  private stderr = '';

  constructor(home: string, env: NodeJS.ProcessEnv, args: string[], wrap: string[] = []) {
    const command = [...wrap, process.execPath, CLI, 'start', '--home', home, '--log-level', 'debug', ...args];
    this.child = spawn(command[0]!, command.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
    let pending = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          this.onLog(JSON.parse(line) as LogLine);
        } catch {
          // not a log line
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
  }

  /** What the daemon wrote to stderr so far (Node's own warnings land there). */
  get stderrText(): string {
    return this.stderr;
  }

  private onLog(line: LogLine): void {
    this.logs.push(line);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(line)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  }

  /** The first log line (already seen or still to come) that matches. */
  waitForLog(match: (l: LogLine) => boolean, what = 'a log line', timeoutMs = 20_000): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${what}; last logs:\n${this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      const waiter: LogWaiter = {
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.waiters.push(waiter);
      this.child.once('close', () => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`daemon exited while waiting for ${what}; stderr: ${this.stderr}\nlast logs:\n${this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
      });
    });
  }

  /** Waits for the n-th (1-based) log line that matches. */
  async waitForCount(match: (l: LogLine) => boolean, n: number, what: string, timeoutMs = 20_000): Promise<void> {
    let count = 0;
    await this.waitForLog((l) => match(l) && ++count >= n, what, timeoutMs).catch((err: Error) => {
      if (this.logs.filter(match).length >= n) return;
      throw err;
    });
  }

  started(): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'daemon started', 'daemon started');
  }

  /** The n-th 'run ended' line of `agent`. */
  runEnded(agent: string, n = 1, timeoutMs?: number): Promise<LogLine> {
    let seen = 0;
    return this.waitForLog((l) => l.msg === 'run ended' && l.agent === agent && ++seen === n, `run ${n} of ${agent} to end`, timeoutMs);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** A stand-in OpenAI-compatible provider on 127.0.0.1, scripted per test. */
export interface StandIn {
  url: string;
  requests: { body: Record<string, unknown>; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
  /** Told when a request arrives ('start') and when its reply is sent ('end'): for counting requests in flight. */
  onRequest?: (phase: 'start' | 'end') => void;
}

export type StandInHandler = (body: Record<string, unknown>, n: number) => { status?: number; body: unknown; delayMs?: number } | 'hang';

export async function startStandIn(handler: StandInHandler): Promise<StandIn> {
  const requests: StandIn['requests'] = [];
  let standIn: StandIn | null = null;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as Record<string, unknown>;
      requests.push({ body, headers: req.headers });
      standIn?.onRequest?.('start');
      const reply = handler(body, requests.length);
      if (reply === 'hang') return;
      const send = () => {
        standIn?.onRequest?.('end');
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
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
  const { port } = server.address() as AddressInfo;
  return (standIn = {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** An OpenAI chat completion body. */
export function completion(content: string | null, usage = { prompt_tokens: 10, completion_tokens: 5 }, toolCalls?: unknown[]): unknown {
  return {
    id: 'cmpl-1',
    object: 'chat.completion',
    choices: [{ index: 0, finish_reason: toolCalls ? 'tool_calls' : 'stop', message: { role: 'assistant', content, ...(toolCalls ? { tool_calls: toolCalls } : {}) } }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}
