import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { CLI, REPO_ROOT } from '../test/helpers/paths.js';
import { startProvider, type StandIn } from '../test/helpers/provider.js';

/**
 * What every figure shares: throw-away homes, `agentd start` as a child whose
 * JSON log lines are awaited, the stand-in provider, the bench agent, timing
 * and percentiles. Times are wall-clock milliseconds with sub-millisecond
 * precision (performance.timeOrigin + performance.now()), comparable across
 * processes on this machine; the daemon's own log `time` is whole milliseconds.
 */

export { CLI, REPO_ROOT } from '../test/helpers/paths.js';
/** Stand-in for `agentd start` while the CLI cannot load (see daemonCommand). */
export const DAEMON_ENTRY = fileURLToPath(new URL('./daemon-entry.js', import.meta.url));
export const BENCH_AGENT = path.join(REPO_ROOT, 'bench', 'agents', 'bench-agent.mjs');
export const AGENT_COMMAND = ['node', BENCH_AGENT];

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The same "random" agents on every run. */
export { seededRandom } from '../test/helpers/random.js';

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(samples: number[]): number {
  return percentile(samples, 50);
}

export interface Spread {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function spread(samples: number[]): Spread {
  return { n: samples.length, p50: percentile(samples, 50), p95: percentile(samples, 95), p99: percentile(samples, 99), max: Math.max(...samples) };
}

export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toFixed(digits);
}

export function fmtSpread(s: Spread, unit = 'ms'): string {
  return `p50 ${fmt(s.p50)} / p95 ${fmt(s.p95)} / p99 ${fmt(s.p99)} / max ${fmt(s.max)} ${unit} (n=${s.n})`;
}

// ---------------------------------------------------------------- cleanup

const homes = new Set<string>();
const children = new Set<ChildProcess>();

/** Whatever the bench leaves running or on disk is removed when it exits, however it exits. */
function cleanupNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
}
process.on('exit', cleanupNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanupNow();
    process.exit(130);
  });
}

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.on('close', () => children.delete(child));
}

// ---------------------------------------------------------------- homes

/** A throw-away home under os.tmpdir(). */
export class BenchHome {
  private constructor(readonly root: string) {}

  static async create(config: Record<string, unknown> = {}): Promise<BenchHome> {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'agentd-bench-'));
    homes.add(root);
    await fsp.mkdir(path.join(root, 'agents'));
    await fsp.mkdir(path.join(root, 'state'));
    await fsp.mkdir(path.join(root, 'outbox'));
    await fsp.writeFile(path.join(root, 'agentd.yaml'), YAML.stringify(config));
    return new BenchHome(root);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /** agents/<name>/agent.yaml running the bench agent, plus an empty inbox folder (watched from the start). */
  async agent(name: string, definition: Record<string, unknown> = {}): Promise<void> {
    const dir = this.path('agents', name);
    await fsp.mkdir(path.join(dir, 'inbox'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'agent.yaml'), YAML.stringify({ version: '1', command: AGENT_COMMAND, ...definition }));
  }

  /** Many agents, `batch` at a time. */
  async agents(names: string[], definition: Record<string, unknown> = {}, options: { inbox?: boolean } = {}): Promise<void> {
    const yaml = YAML.stringify({ version: '1', command: AGENT_COMMAND, ...definition });
    await inBatches(names, 200, async (name) => {
      const dir = this.path('agents', name);
      await fsp.mkdir(options.inbox === false ? dir : path.join(dir, 'inbox'), { recursive: true });
      await fsp.writeFile(path.join(dir, 'agent.yaml'), yaml);
    });
  }

  /**
   * A task lands in the inbox the way a careful writer puts it there: a dot-file
   * (ignored by the daemon) renamed into place, so the daemon never reads half
   * a file. Returns the wall time right before the rename: when the task appeared.
   */
  async writeTask(agent: string, task: { id: string; goal?: string; input?: unknown }): Promise<number> {
    const inbox = this.path('agents', agent, 'inbox');
    const tmp = path.join(inbox, `.${task.id}.tmp`);
    await fsp.writeFile(tmp, JSON.stringify({ goal: 'bench', created_at: new Date().toISOString(), ...task }));
    const at = nowMs();
    await fsp.rename(tmp, path.join(inbox, `${task.id}.json`));
    return at;
  }

  /** Finished tasks written straight into state/<agent>/done/, as if the daemon had run them. */
  async doneRecords(agent: string, count: number): Promise<void> {
    const dir = this.path('state', agent, 'done');
    await fsp.mkdir(dir, { recursive: true });
    const at = new Date().toISOString();
    for (let i = 0; i < count; i++) {
      const id = `old-${agent}-${i}`;
      const record = {
        v: 1,
        task: { id, created_at: at, goal: 'an old task', input: { mode: 'result' } },
        status: 'done',
        output: { first_at: 0 },
        finished_at: at,
        runs: [`r-20260101000000-${i.toString(16).padStart(8, '0')}`],
      };
      await fsp.writeFile(path.join(dir, `${id}.json`), JSON.stringify(record, null, 2) + '\n');
    }
  }

  async readJson<T>(...parts: string[]): Promise<T> {
    return JSON.parse(await fsp.readFile(this.path(...parts), 'utf8')) as T;
  }

  async remove(): Promise<void> {
    await fsp.rm(this.root, { recursive: true, force: true });
    homes.delete(this.root);
  }
}

export async function inBatches<T>(items: T[], size: number, each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(each));
}

export function agentNames(prefix: string, count: number): string[] {
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(width, '0')}`);
}

// ---------------------------------------------------------------- the daemon

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  pid?: number;
  agent?: string;
  task_id?: string;
  run_id?: string;
  trigger?: string;
  outcome?: string;
  [key: string]: unknown;
}

let cliChecked: { command: string[]; note: string } | null = null;

/**
 * How to run `agentd start`: the built CLI when it loads; otherwise (a
 * colleague's half-added command file breaks its imports) bench/daemon-entry,
 * which does what `start` does through the same Daemon class and logger.
 */
export function daemonCommand(): { command: string[]; note: string } {
  if (cliChecked) return cliChecked;
  const probe = spawnSync(process.execPath, [CLI, 'start', '--help'], { encoding: 'utf8', timeout: 20_000 });
  cliChecked =
    probe.status === 0
      ? { command: [process.execPath, CLI, 'start'], note: 'daemon: `agentd start` (dist/src/cli/main.js)' }
      : { command: [process.execPath, DAEMON_ENTRY], note: 'daemon: dist/bench/daemon-entry.js (the CLI did not load: ' + firstLine(probe.stderr) + ')' };
  return cliChecked;
}

function firstLine(text: string | null): string {
  const line = (text ?? '').split('\n').find((l) => l.includes('Error')) ?? (text ?? '').split('\n')[0] ?? '';
  return line.trim().slice(0, 160);
}

type Waiter = { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void };

export interface DaemonOptions {
  logLevel?: string;
  /** Run under `strace -f`, writing the trace to this file. */
  straceTo?: string;
  straceCalls?: string[];
  /** Extra node flags for the daemon (e.g. --cpu-prof), for profiling runs. */
  nodeArgs?: string[];
}

/** `agentd start` as a child process; its JSON log lines are what the bench awaits. */
export class DaemonChild {
  readonly child: ChildProcess;
  readonly spawnedAt: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly logs: LogLine[] = [];
  private readonly waiters: Waiter[] = [];
  private stderr = '';
  private daemonPid: number | null = null;

  constructor(
    readonly home: BenchHome,
    options: DaemonOptions = {},
  ) {
    const [node, ...rest] = daemonCommand().command;
    const command = [node!, ...(options.nodeArgs ?? []), ...rest];
    const args = [...command, '--home', home.root, '--log-level', options.logLevel ?? 'info'];
    // straceCalls ['all']: every system call (no filter), to count what a call costs in all.
    const filter = options.straceCalls?.includes('all') ? [] : ['--seccomp-bpf', '-e', `trace=${(options.straceCalls ?? ['fsync', 'fdatasync']).join(',')}`];
    const traced = options.straceTo ? ['strace', '-f', '-qq', '-ttt', '-y', ...filter, '-o', options.straceTo, ...args] : args;
    this.spawnedAt = nowMs();
    this.child = spawn(traced[0]!, traced.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    if (!options.straceTo) this.daemonPid = this.child.pid ?? null;
    trackChild(this.child);
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
    let pending = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          continue; // not a log line
        }
        this.onLog(parsed);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr = (this.stderr + c).slice(-4000)));
  }

  private onLog(line: LogLine): void {
    if (line.msg === 'daemon started' && typeof line.pid === 'number') this.daemonPid = line.pid;
    this.logs.push(line);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(line)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  }

  /** The daemon's own pid (not strace's). */
  get pid(): number {
    const pid = this.daemonPid ?? this.child.pid;
    if (pid === undefined) throw new Error('the daemon has no pid');
    return pid;
  }

  /** Log lines seen so far that match. */
  lines(match: (l: LogLine) => boolean): LogLine[] {
    return this.logs.filter(match);
  }

  /** Forget the lines seen so far (long runs). */
  dropLogs(): void {
    this.logs.length = 0;
  }

  /** The first line (already seen or still to come) that matches. */
  waitFor(match: (l: LogLine) => boolean, what: string, timeoutMs: number): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        const i = this.waiters.indexOf(waiter);
        if (i === -1) return;
        this.waiters.splice(i, 1);
        clearTimeout(timer);
        const tail = this.logs.slice(-8).map((l) => JSON.stringify(l).slice(0, 400)).join('\n');
        reject(new Error(`${why} waiting for ${what}\nlast log lines:\n${tail}\nstderr: ${this.stderr.slice(-1500)}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then(() => fail('the daemon exited'));
    });
  }

  /** Resolves once `n` lines (seen or to come) match; returns them. */
  async waitCount(match: (l: LogLine) => boolean, n: number, what: string, timeoutMs: number): Promise<LogLine[]> {
    // waitFor looks at the lines already seen first, so the count starts from none, not from them.
    let count = 0;
    if (this.logs.filter(match).length < n) await this.waitFor((l) => match(l) && ++count >= n, `${n} × ${what}`, timeoutMs);
    return this.logs.filter(match);
  }

  started(timeoutMs = 120_000): Promise<LogLine> {
    return this.waitFor((l) => l.msg === 'daemon started', 'daemon started', timeoutMs);
  }

  /** VmRSS of the daemon, in MB. */
  rssMb(): number {
    return procStatusKb(this.pid, 'VmRSS') / 1024;
  }

  /** Resolves once the daemon has used no CPU for `quietMs` (its start-up work, e.g. the watcher's scan, is over). */
  async settled(quietMs = 500, timeoutMs = 60_000): Promise<boolean> {
    return waitForQuiet(this.pid, quietMs, timeoutMs);
  }

  kill9(): void {
    killPid(this.pid, 'SIGKILL');
    if (this.child.pid !== this.pid) killPid(this.child.pid, 'SIGKILL');
  }

  /** SIGTERM (the daemon stops its runs), then SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    killPid(this.pid, 'SIGTERM');
    const timer = setTimeout(() => this.kill9(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function killPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function procStatusKb(pid: number, field: string): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU time of a process (`self`) and of its children it has waited for (`children`), in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number | 'self'): { self: number; children: number } {
  const f = statFields(pid);
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_S;
  // The daemon's agents are the spawner's children (run/spawner.ts): a child still running counts with its own
  // time and its reaped children's, so the spawner and every agent it started are in `children`.
  let live = 0;
  if (pid !== 'self') {
    for (const child of liveChildren(pid)) {
      const c = statFields(child);
      if (c.length > 0) live += c[11]! + c[12]! + c[13]! + c[14]!;
    }
  }
  return { self: ms(f[11]! + f[12]!), children: ms(f[13]! + f[14]! + live) };
}

/** Page faults of a process so far, from /proc/<pid>/stat: a major one waited for the disk. */
export function pageFaults(pid: number): { minor: number; major: number } {
  const f = statFields(pid);
  return { minor: f[7] ?? 0, major: f[9] ?? 0 };
}

function statFields(pid: number | 'self'): number[] {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  } catch {
    if (pid === 'self') throw new Error('no /proc/self/stat');
    return []; // gone since it was listed
  }
}

/** The process's children that have not exited, from every thread's list. */
function liveChildren(pid: number): number[] {
  const found = new Set<number>();
  let threads: string[] = [];
  try {
    threads = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const tid of threads) {
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (child.trim()) found.add(Number(child));
    } catch {
      // the thread ended
    }
  }
  return [...found];
}

/**
 * CPU time of a process split by thread, in ms: its main thread (JavaScript, the event loop, their system calls)
 * and its other threads (the thread pool's fdatasyncs, V8's GC and compiler helpers); user and system time.
 */
export function cpuSplitMs(pid: number): { main: number; others: number; user: number; system: number } {
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_S;
  const fields = (file: string) => {
    const stat = fs.readFileSync(file, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  };
  const all = fields(`/proc/${pid}/stat`);
  const main = fields(`/proc/${pid}/task/${pid}/stat`);
  const total = ms(all[11]! + all[12]!);
  return { main: ms(main[11]! + main[12]!), others: total - ms(main[11]! + main[12]!), user: ms(all[11]!), system: ms(all[12]!) };
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function waitForQuiet(pid: number, quietMs: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = cpuTicks(pid);
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await sleep(50);
    const ticks = cpuTicks(pid);
    if (ticks !== last) {
      last = ticks;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) return true;
  }
  return false;
}

// ---------------------------------------------------------------- the stand-in provider

/** The bench's provider answer: one short completion, at once. */
const PONG = JSON.stringify({
  id: 'cmpl-bench',
  object: 'chat.completion',
  choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'pong' } }],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
});

/**
 * The tests' stand-in provider (test/helpers/provider.ts) answering every chat
 * completion at once, keeping no requests (long runs send many).
 */
export function startStandIn(): Promise<StandIn> {
  return startProvider(() => ({ body: PONG }), { record: false });
}

// ---------------------------------------------------------------- machine limits

/** The daemon's way of starting an agent (agent-process.ts): own process group, only AGENTD_* in the environment. */
export function spawnAgent(cwd: string): ChildProcess {
  const child = spawn(process.execPath, [BENCH_AGENT], {
    cwd,
    env: { AGENTD_AGENT: 'bare', AGENTD_TASK_ID: 'bare', AGENTD_HOME: cwd, AGENTD_RUN_ID: 'bare' },
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  trackChild(child);
  return child;
}

/**
 * A bare spawn of the bench agent, with no daemon: spawn it, hand it a start
 * message, and time until its first stdout line (the agent's own clock right
 * before it, as for the daemon's runs); then close its stdin and wait for it
 * to exit. Returns the milliseconds to the first line.
 */
export async function bareRun(cwd: string, input: Record<string, unknown> = { mode: 'result' }): Promise<number> {
  const t0 = nowMs();
  const child = spawnAgent(cwd);
  const start = { type: 'start', run_id: 'bare', task: { id: 'bare', goal: 'bench', input }, context: null, resume: { checkpoint: null, handoff: null, resolutions: [] }, budget: { remaining: {} } };
  child.stdin!.write(JSON.stringify(start) + '\n');
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const firstLine = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (text.includes('\n')) return;
      text += chunk;
      if (!text.includes('\n')) return;
      // Timed like the daemon's runs: the agent's own clock right before its first line.
      const firstAt = (JSON.parse(text.slice(0, text.indexOf('\n'))) as { output?: { first_at?: number } }).output?.first_at;
      resolve((firstAt ?? nowMs()) - t0);
    });
    child.stderr!.resume();
    child.on('close', () => reject(new Error('the bench agent exited before its first line')));
    setTimeout(() => reject(new Error('the bench agent printed nothing within 30 s')), 30_000).unref();
  });
  child.stdin!.end();
  await closed;
  return firstLine;
}

/** Median of one fdatasync'd 1 KB append: open 'a', write 1 KB, fdatasync, close. */
export function appendMedianMs(dir: string, count: number): { median: number; spread: Spread } {
  const file = path.join(dir, 'append.bin');
  const data = Buffer.alloc(1024, 0x61);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = nowMs();
    const fd = fs.openSync(file, 'a');
    fs.writeSync(fd, data);
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    samples.push(nowMs() - t);
  }
  fs.rmSync(file, { force: true });
  return { median: median(samples), spread: spread(samples) };
}

/** fs.watch on a folder: how long from a rename into it until the event arrives (the machine's floor for noticing a task). */
export async function watchFloorMs(dir: string, count: number): Promise<Spread> {
  await fsp.mkdir(dir, { recursive: true });
  const samples: number[] = [];
  let expect: { name: string; at: number; done: () => void } | null = null;
  const watcher = fs.watch(dir, (_event, name) => {
    if (expect && name === expect.name) {
      samples.push(nowMs() - expect.at);
      const done = expect.done;
      expect = null;
      done();
    }
  });
  try {
    for (let i = 0; i < count; i++) {
      const name = `t${i}.json`;
      const tmp = path.join(dir, `.t${i}.tmp`);
      await fsp.writeFile(tmp, '{}');
      const seen = new Promise<void>((resolve) => (expect = { name, at: nowMs(), done: resolve }));
      await fsp.rename(tmp, path.join(dir, name));
      await Promise.race([seen, sleep(2000)]);
    }
  } finally {
    watcher.close();
  }
  return spread(samples);
}

/** A bare `node` printing one line: time to that line, and its VmRSS then (MB). */
export async function bareNode(): Promise<{ startMs: number; rssMb: number }> {
  const t0 = nowMs();
  const child = spawn(process.execPath, ['-e', "console.log('up'); setTimeout(() => {}, 5000)"], { stdio: ['ignore', 'pipe', 'ignore'] });
  trackChild(child);
  const startMs = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', () => resolve(nowMs() - t0));
    setTimeout(() => reject(new Error('a bare node printed nothing within 30 s')), 30_000).unref();
  });
  const rssMb = procStatusKb(child.pid!, 'VmRSS') / 1024;
  child.kill('SIGKILL');
  return { startMs, rssMb };
}
