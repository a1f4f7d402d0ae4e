import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * Where agent processes are started (README.md, "Warm agents and spares"): by
 * the spawner (run/spawner-process.ts), a small process forked once, so that
 * the daemon's event loop never waits on a fork and an exec; or here, with
 * `AGENTD_SPAWNER=off` in the daemon's environment, or when the spawner
 * cannot be started.
 */

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What to start: the file and arguments as exec'd, with exactly this environment. */
export interface LaunchSpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  uid?: number | undefined;
  gid?: number | undefined;
}

/** A started process: its pid (the leader of its own process group), its three pipes, and its exit. */
export interface Launched {
  pid: number;
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** The process exited; its pipes may still be open (a child it left may hold them). */
  exit: Promise<ExitInfo>;
}

/** The daemon's request to the spawner. */
export interface SpawnRequest extends LaunchSpec {
  id: number;
}

/** The spawner's replies: each pipe (with its handle), the exit, or why it could not start. */
export type SpawnReply =
  | { kind: 'stdio'; id: number; pid: number; which: 'stdin' | 'stdout' | 'stderr' }
  | { kind: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'failed'; id: number; message: string };

/** The spawner's pid while it runs (tests, and what `ps` shows beside the daemon); null before its first use. */
export function spawnerPid(): number | null {
  return spawner.pid;
}

/** Start a process; rejects when it could not be started (a command that is not there, a uid not allowed). */
export function launch(spec: LaunchSpec): Promise<Launched> {
  if (process.env.AGENTD_SPAWNER === 'off' || spawner.unavailable) return launchHere(spec);
  return spawner.launch(spec);
}

/** node's spawn, on this process: what the spawner does, without it. */
function launchHere(spec: LaunchSpec): Promise<Launched> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.file, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
      ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      detached: true, // its own process group, so a kill reaches everything it started
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.once('error', reject);
    if (child.pid === undefined) return;
    const exit = new Promise<ExitInfo>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    resolve({ pid: child.pid, stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, exit });
  });
}

interface Pending {
  resolve: (launched: Launched) => void;
  reject: (err: Error) => void;
  pid: number;
  pipes: Partial<Record<'stdin' | 'stdout' | 'stderr', Socket>>;
  launched: boolean;
  exited: (info: ExitInfo) => void;
  exit: Promise<ExitInfo>;
}

const SPAWNER_SCRIPT = fileURLToPath(new URL('./spawner-process.js', import.meta.url));

class Spawner {
  /** Set once forking the spawner failed: processes are started here from then on. */
  unavailable = false;
  private child: ChildProcess | null = null;
  private nextId = 1;
  /** Every process asked for and not yet exited. */
  private readonly pending = new Map<number, Pending>();

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  launch(spec: LaunchSpec): Promise<Launched> {
    const child = this.running();
    if (!child) return launchHere(spec);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let exited!: (info: ExitInfo) => void;
      const exit = new Promise<ExitInfo>((done) => (exited = done));
      this.pending.set(id, { resolve, reject, pid: 0, pipes: {}, launched: false, exited, exit });
      child.channel?.ref(); // an answer is awaited: the daemon's loop must not end before it comes
      const request: SpawnRequest = { id, ...spec };
      child.send(request, (err) => err && this.settle(id, { kind: 'failed', id, message: `the spawner did not take the request: ${err.message}` }));
    });
  }

  /** The spawner, forked on first use; null when it cannot be. */
  private running(): ChildProcess | null {
    if (this.child) return this.child;
    try {
      // No environment: the spawner holds none of the daemon's variables (keys among them); each agent's comes with its request.
      const child = fork(SPAWNER_SCRIPT, [], { env: {}, execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
      child.on('message', (reply: SpawnReply, handle?: Socket) => this.settle(reply.id, reply, handle));
      child.once('exit', () => this.gone(child));
      child.once('error', () => this.gone(child));
      child.unref();
      child.channel?.unref();
      this.child = child;
      return child;
    } catch {
      this.unavailable = true;
      return null;
    }
  }

  private settle(id: number, reply: SpawnReply, handle?: Socket): void {
    const entry = this.pending.get(id);
    if (!entry) {
      handle?.destroy();
      return;
    }
    if (reply.kind === 'stdio' && handle) {
      entry.pid = reply.pid;
      entry.pipes[reply.which] = handle;
      const { stdin, stdout, stderr } = entry.pipes;
      if (stdin && stdout && stderr) {
        entry.launched = true;
        entry.resolve({ pid: entry.pid, stdin, stdout, stderr, exit: entry.exit });
      }
      return;
    }
    if (reply.kind === 'exit') entry.exited({ code: reply.code, signal: reply.signal });
    else if (!entry.launched) entry.reject(new Error(reply.kind === 'failed' ? reply.message : 'the spawner sent no pipes'));
    else endWithPipes(entry); // a failure reported after the start: no exit status will come
    this.pending.delete(id);
    if (this.pending.size === 0) this.child?.channel?.unref();
  }

  /**
   * The spawner is gone (killed, out of memory): the next process starts a new one. A process not started yet
   * fails to start; one that runs has no exit status to report, so its exit is when its pipes close.
   */
  private gone(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = null;
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      if (!entry.launched) {
        for (const pipe of Object.values(entry.pipes)) pipe.destroy();
        entry.reject(new Error('the spawner exited before the process was started'));
        continue;
      }
      endWithPipes(entry);
    }
  }
}

/** A started process whose exit status cannot come: it has ended once its pipes are closed. */
function endWithPipes(entry: Pending): void {
  const { stdout, stderr } = entry.pipes;
  void Promise.all([closed(stdout!), closed(stderr!)]).then(() => entry.exited({ code: null, signal: null }));
}

/** Resolves when the stream is closed (at once if it already is). */
export function closed(stream: Readable | Writable): Promise<void> {
  if (stream.destroyed || (stream as Readable).closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

const spawner = new Spawner();
