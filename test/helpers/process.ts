import { spawn, type ChildProcess } from 'node:child_process';
import fsSync from 'node:fs';
import { CLI } from './paths.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

type LogWaiter = { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void };

/** `agentd start` as a real child process; its JSON log lines are what tests await. */
export class DaemonProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters: LogWaiter[] = [];
  private stderr = '';

  /** `wrap`: a command the daemon is started through, which execs the rest. */
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
      // Removed once the wait ends, so a long-lived daemon's waits do not pile up listeners.
      const onClose = () => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`daemon exited while waiting for ${what}; stderr: ${this.stderr}\nlast logs:\n${this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        this.child.off('close', onClose);
        reject(new Error(`timed out waiting for ${what}; last logs:\n${this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      const waiter: LogWaiter = {
        match,
        resolve: (l) => {
          clearTimeout(timer);
          this.child.off('close', onClose);
          resolve(l);
        },
      };
      this.waiters.push(waiter);
      this.child.once('close', onClose);
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

/**
 * True while `pid` is a live process. A zombie counts as dead: it has exited
 * and only waits for a parent (here, whatever init the container runs) to reap it.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two checks
  }
}

/**
 * `agentd start` with its stdout (and, with `stderrToo`, its stderr) on the file `logFile`,
 * as `start >log` (`2>&1`) runs it; the log cannot be awaited, so tests watch the home.
 * `stderr()` is what it wrote to stderr when that stays a pipe.
 */
export async function startDaemonLoggingTo(home: string, logFile: string, stderrToo = false): Promise<{ child: ChildProcess; stderr(): string; exited: Promise<number | null> }> {
  const out = await fsSync.promises.open(logFile, 'a');
  const child = spawn(process.execPath, [CLI, 'start', '--home', home, '--log-level', 'debug'], { stdio: ['ignore', out.fd, stderrToo ? out.fd : 'pipe'] });
  await out.close();
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** Host pids whose command line contains `marker`. */
export function pidsWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of fsSync.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fsSync.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}
