import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * Where agent and tool processes are started (README.md, "The spawner"): by
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
  | { kind: 'handed'; id: number; pid: number }
  | { kind: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'failed'; id: number; message: string; code: string | null };

/** The spawner could not start a process; `code` is the system's (ENOENT, EACCES...) when it gave one. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The spawner's pid while it runs (tests, and what `ps` shows beside the daemon); null before its first use. */
export function spawnerPid(): number | null {
  return spawner.pid;
}

/**
 * Start a process; rejects when it could not be started (a command that is not there, a uid not allowed).
 * `beforeRestart`: called when the spawner died before saying which process it started, before the process is
 * started again here; it kills whatever the first start may have left (the run's cgroup, where there is one).
 */
export function launch(spec: LaunchSpec, beforeRestart?: () => void): Promise<Launched> {
  if (process.env.AGENTD_SPAWNER === 'off' || spawner.unavailable) return launchHere(spec);
  return spawner.launch(spec, beforeRestart);
}

/** node's spawn of `spec` with its three pipes: what the spawner runs for each request, and launchHere without it. */
export function spawnPiped(spec: LaunchSpec): ChildProcess {
  return spawn(spec.file, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
    ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
    detached: true, // its own process group, so a kill reaches everything it started
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** node's spawn, on this process: what the spawner does, without it. */
function launchHere(spec: LaunchSpec): Promise<Launched> {
  return new Promise((resolve, reject) => {
    const child = spawnPiped(spec);
    child.once('error', reject);
    if (child.pid === undefined) return;
    const exit = new Promise<ExitInfo>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    resolve({ pid: child.pid, stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, exit });
  });
}

interface Pending {
  spec: LaunchSpec;
  beforeRestart: (() => void) | undefined;
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
  /** Set once a spawner failed before it answered anything: processes are started here from then on. */
  unavailable = false;
  private child: ChildProcess | null = null;
  /** The running spawner has answered a request: it works. */
  private answered = false;
  private nextId = 1;
  /** Every process asked for and not yet exited. */
  private readonly pending = new Map<number, Pending>();

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  launch(spec: LaunchSpec, beforeRestart?: () => void): Promise<Launched> {
    const child = this.running();
    if (!child) return launchHere(spec);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let exited!: (info: ExitInfo) => void;
      const exit = new Promise<ExitInfo>((done) => (exited = done));
      this.pending.set(id, { spec, beforeRestart, resolve, reject, pid: 0, pipes: {}, launched: false, exited, exit });
      // An answer is awaited: the daemon's loop must not end before it comes, or before the spawner's exit is seen.
      child.ref();
      child.channel?.ref();
      const request: SpawnRequest = { id, ...spec };
      // A request the spawner did not take is left to its exit (gone), which starts the process here.
      child.send(request, (err) => err && child.kill('SIGKILL'));
    });
  }

  /** The spawner, forked on first use; null when it cannot be. */
  private running(): ChildProcess | null {
    if (this.child) return this.child;
    try {
      // No environment: the spawner holds none of the daemon's variables (keys among them); each agent's comes with
      // its request. A session of its own: a terminal's Ctrl-C or hang-up reaches the daemon, which decides; the
      // spawner goes when the daemon does.
      const child = fork(SPAWNER_SCRIPT, [String(process.pid)], { env: {}, execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json', detached: true });
      child.on('message', (reply: SpawnReply, handle?: Socket) => this.settle(reply.id, reply, handle));
      child.once('exit', () => this.gone(child));
      child.once('error', () => this.gone(child));
      child.unref();
      child.channel?.unref();
      this.child = child;
      this.answered = false;
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
    this.answered = true;
    // A pipe that did not come (its message came without it, or not at all before the end of the hand-over): the
    // process cannot be spoken to, so it must not run on unseen.
    if (reply.kind === 'handed') {
      if (!entry.launched) this.noPipe(id, entry, reply.pid, 'all its pipes');
      return;
    }
    if (reply.kind === 'stdio') {
      if (!handle) {
        this.noPipe(id, entry, reply.pid, `its ${reply.which}`);
        return;
      }
      entry.pid = reply.pid;
      entry.pipes[reply.which] = handle;
      const { stdin, stdout, stderr } = entry.pipes;
      if (stdin && stdout && stderr) {
        entry.launched = true;
        entry.resolve({ pid: entry.pid, stdin, stdout, stderr, exit: entry.exit });
      }
      return;
    }
    if (!entry.launched) {
      abandon(entry);
      if (reply.kind === 'failed') entry.reject(new LaunchError(reply.message, reply.code ?? 'spawn_failed'));
      else entry.reject(new LaunchError(`process ${entry.pid} exited before all its pipes came`, 'no_pipe'));
    } else if (reply.kind === 'exit') ended(entry, { code: reply.code, signal: reply.signal });
    else endWithPipes(entry); // a failure reported after the start: no exit status will come
    this.forget(id);
  }

  private noPipe(id: number, entry: Pending, pid: number, what: string): void {
    entry.pid = pid;
    abandon(entry);
    entry.reject(new LaunchError(`the spawner could not hand over ${what} for process ${pid}`, 'no_pipe'));
    this.forget(id);
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.pending.size > 0) return;
    this.child?.unref();
    this.child?.channel?.unref();
  }

  /**
   * The spawner is gone (killed, out of memory, or it never started): the next process starts a new one, or, when
   * this one never answered, every process is started here from now on. A process it had not handed over is
   * started here instead (one it may have started is killed, by its pid or, before that came, by its caller's
   * beforeRestart: nothing can speak to it); one that runs has no exit
   * status to report, so its exit is when its pipes close.
   */
  private gone(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = null;
    if (!this.answered) this.unavailable = true;
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      if (entry.launched) {
        endWithPipes(entry);
        continue;
      }
      abandon(entry);
      // Its pid may never have come: what it started can only be found where it ran.
      if (entry.pid === 0) entry.beforeRestart?.();
      launchHere(entry.spec).then(entry.resolve, entry.reject);
    }
  }
}

/** A process that will not be handed over: its pipes closed and its group killed, if it was started. */
function abandon(entry: Pending): void {
  for (const pipe of Object.values(entry.pipes)) pipe.destroy();
  if (entry.pid > 0) {
    try {
      process.kill(-entry.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/**
 * A handed-over process has exited. Its stdin is closed, as node does at its own children's exit: a process the
 * agent left (setsid, out of its group's kill) may hold the other end, and would keep this descriptor open in the
 * daemon for as long as it runs.
 */
function ended(entry: Pending, info: ExitInfo): void {
  entry.pipes.stdin!.destroy();
  entry.exited(info);
}

/** A started process whose exit status cannot come: it has ended once its pipes are closed. */
function endWithPipes(entry: Pending): void {
  void outputClosed({ stdout: entry.pipes.stdout!, stderr: entry.pipes.stderr! }).then(() => ended(entry, { code: null, signal: null }));
}

/**
 * A started process's end (agents' and tools' alike): its exit, then `atExit` (which kills what it left running),
 * then its stdout and stderr closed at every end. Listening for the closes starts at once.
 */
export async function endOf(launched: Pick<Launched, 'stdout' | 'stderr' | 'exit'>, atExit: () => void): Promise<ExitInfo> {
  const output = outputClosed(launched);
  const exit = await launched.exit;
  atExit();
  await output;
  return exit;
}

/** Resolves once a process's stdout and stderr are both closed. */
function outputClosed(pipes: { stdout: Readable; stderr: Readable }): Promise<void> {
  return Promise.all([closed(pipes.stdout), closed(pipes.stderr)]).then(() => undefined);
}

/** Resolves when the stream is closed (at once if it already is). */
export function closed(stream: Readable | Writable): Promise<void> {
  if (stream.destroyed || (stream as Readable).closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

const spawner = new Spawner();
