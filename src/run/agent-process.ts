import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { encodeMessage, type DaemonMessage } from '../protocol/messages.js';
import { confinedSpawn, type Confinement, type SandboxWhere } from '../security/sandbox.js';
import { inRunCgroup } from '../security/run-cgroup.js';
import { secretCensor } from '../security/secrets.js';
import { PYTHON_MODULE_DIR } from '../config/installation.js';
import { endOf, launch, type ExitInfo, type Launched } from './spawner.js';

export type { ExitInfo } from './spawner.js';

/**
 * One agent process: its own process group, a scrubbed environment, NDJSON
 * on stdin/stdout, stderr into the log. Knows nothing of budgets or tasks.
 */

/** Longest stdout line accepted; a longer one is dropped, so a flood cannot exhaust memory. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/** stderr lines of one process that are logged (each cut to STDERR_LINE_CHARS); the rest are dropped. */
export const STDERR_LOG_LINES = 1000;
const STDERR_LINE_CHARS = 4000;

/** The last stderr lines kept in memory, for the error of a run whose agent exits non-zero (and its dead letter). */
export const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_CHARS = 500;

export interface SpawnSpec {
  command: string[];
  cwd: string;
  /** Names of the daemon's variables to pass through (the definition's `env`). */
  passEnv: string[];
  /** AGENTD_* variables. */
  agentdEnv: Record<string, string>;
  /** `sandbox` / `run_as` of the agent (README "Security"); none when absent. */
  confinement?: Confinement;
  /** The run's endpoint (OPENAI_BASE_URL, OPENAI_API_KEY, AGENTD_URL...): set last, over anything passed through. */
  runEnv?: Record<string, string>;
}

/** Build the child's environment: only the listed variables, plus AGENTD_*. Never the daemon's secrets. */
export function scrubbedEnv(passEnv: string[], agentdEnv: Record<string, string>, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of passEnv) {
    if (secretCensor.isSecret(name)) continue; // refused at load too; this holds even if a definition slipped through
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(agentdEnv)) if (name.startsWith('AGENTD_')) env[name] = value;
  return env;
}

/**
 * The one stderr line that best says why an agent died: the last that names an
 * error (Node's `Error [ERR_MODULE_NOT_FOUND]: ...` sits above its stack and
 * version lines, Python's `ModuleNotFoundError: ...` ends its traceback), else the last.
 */
export function stderrCause(tail: string[]): string | undefined {
  return tail.findLast((line) => /\b[A-Za-z]*Error\b|\berror\b/i.test(line)) ?? tail.at(-1);
}

/** `import agentd` for Python agents: the module shipped in the package goes first on PYTHONPATH. */
export function withPythonModule(env: Record<string, string>): Record<string, string> {
  return { ...env, PYTHONPATH: [PYTHON_MODULE_DIR, env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
}

/**
 * The executable to run. The child gets no PATH unless `env` passes it, so the
 * daemon resolves the command with its own PATH; `node` is the daemon's own node.
 */
export function resolveExecutable(command: string, cwd: string, pathVar = process.env.PATH ?? ''): string {
  if (command === 'node') return process.execPath;
  if (command.includes('/')) return path.resolve(cwd, command);
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next folder
    }
  }
  return command;
}

/** A command that cannot be started, found before the spawn, so the reason reads plainly (not as a shell's `exec` error). */
export class StartProblem extends Error {
  constructor(
    message: string,
    /** The shell's exit code for it: 127 not found, 126 found but not executable. */
    readonly exitCode: 126 | 127,
  ) {
    super(message);
  }
}

/**
 * Why `executable` (what resolveExecutable made of `command`) cannot be
 * started, or null when it can. A bare name resolveExecutable did not find on
 * PATH comes back unchanged; a path named in `command` is checked with one access(2). Under
 * `run_as` (`otherAccount`) only that it is there: the daemon's own right to
 * execute it says nothing of the account's.
 */
export function startProblem(command: string, executable: string, otherAccount = false): StartProblem | null {
  // A bare name was found (or not) by resolveExecutable's own access(2): not checked twice on the spawn's path.
  if (!command.includes('/')) return executable.includes('/') ? null : new StartProblem(`spawn ${command} ENOENT (no such command: check \`command\` in the agent's definition, and the daemon's PATH)`, 127);
  try {
    fs.accessSync(executable, otherAccount ? fs.constants.F_OK : fs.constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' && !otherAccount) return new StartProblem(`spawn ${executable} EACCES (not executable: chmod +x it, or name its interpreter first in \`command\`)`, 126);
    if (code === 'ENOENT' || code === 'ENOTDIR') return new StartProblem(`spawn ${executable} ENOENT (no such file: \`command\` is taken from the agent's folder)`, 127);
    return null; // anything else: the spawn says what it is
  }
}

export class AgentProcess {
  /** The process once started (run/spawner.ts); null before, and when it could not be. */
  private launched: Launched | null = null;
  /** What was asked of the process before it was started: done, in order, once it is. */
  private waiting: Array<(launched: Launched) => void> = [];
  /** The process's pid once it is started; null when it could not be. */
  readonly started: Promise<number | null>;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private startError: string | null = null;
  private readonly tail: string[] = [];

  constructor(
    spec: SpawnSpec,
    private log: Logger,
    private onLine: (line: string) => void,
  ) {
    const [cmd, ...args] = spec.command;
    const executable = resolveExecutable(cmd!, spec.cwd);
    const problem = startProblem(cmd!, executable, spec.confinement?.runAs != null);
    const confined = confinedSpawn([executable, ...args], spec.confinement, confinedWhere(spec.cwd, spec.agentdEnv));
    // Unsandboxed, it runs in a cgroup of its own where the daemon has one: killed whole at exit, setsid or not.
    const env = { ...withPythonModule(scrubbedEnv(spec.passEnv, spec.agentdEnv)), ...spec.runEnv };
    const { run, cgroup } = problem ? { run: confined, cgroup: null } : inRunCgroup(confined, spec.confinement?.sandbox ?? false, env);
    const launching = problem ? Promise.reject(problem) : launch({ file: run.file, args: run.args, cwd: spec.cwd, env, uid: run.uid, gid: run.gid }, () => cgroup?.kill());
    this.started = launching.then(
      (launched) => launched.pid,
      () => null,
    );
    this.exited = launching.then(
      (launched) => this.attach(launched, cgroup),
      (err: unknown) => {
        this.log.error({ err }, 'agent process could not start');
        cgroup?.removeEmpty();
        this.waiting = [];
        this.startError = err instanceof Error ? err.message : String(err);
        this.exitInfo ??= { code: err instanceof StartProblem ? err.exitCode : 127, signal: null };
        return this.exitInfo;
      },
    );
  }

  /** Why the process could not be started (then `exited` has 126 or 127); null when it was, or has not been tried yet. */
  startFailure(): string | null {
    return this.startError;
  }

  /** The process is started: read its pipes, do what waited for it, and resolve with its exit once its pipes are closed too. */
  private async attach(launched: Launched, cgroup: ReturnType<typeof inRunCgroup>['cgroup']): Promise<ExitInfo> {
    this.launched = launched;
    // A dead agent makes stdin writes fail with EPIPE; its exit is handled through `exited`.
    launched.stdin.on('error', () => undefined);
    readLines(launched.stdout, (line) => this.onLine(line), () => this.log.warn({ limit: MAX_LINE_BYTES }, 'agent stdout line too long, dropped'));
    let stderrLines = 0;
    readLines(
      launched.stderr,
      (line) => {
        stderrLines++;
        if (line.trim()) {
          this.tail.push(line.slice(0, STDERR_TAIL_CHARS));
          if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
        }
        if (stderrLines <= STDERR_LOG_LINES) this.log.info({ stream: 'stderr', line: line.slice(0, STDERR_LINE_CHARS) }, 'agent stderr');
        else if (stderrLines === STDERR_LOG_LINES + 1) this.log.warn({ logged: STDERR_LOG_LINES }, 'agent writes much to stderr; further lines are dropped without logging');
      },
      () => this.log.warn({ limit: MAX_LINE_BYTES }, 'agent stderr line too long, dropped'),
    );
    // When the agent exits, whatever it started dies with it: a child that kept its
    // stdout open would otherwise hold the run open (its end waits for every pipe end).
    const end = endOf(launched, () => {
      killGroup(launched.pid, 'SIGKILL');
      cgroup?.kill();
    });
    for (const step of this.waiting.splice(0)) step(launched);
    this.exitInfo ??= await end;
    // The run ends once its cgroup is empty, so nothing it started is seen after it; the folder goes after.
    if (cgroup) {
      const { emptied, removed } = cgroup.end();
      void removed.then((gone) => gone || this.log.warn({ cgroup: cgroup.dir }, 'run cgroup not removed'));
      await emptied;
    }
    return this.exitInfo;
  }

  /** `step` now if the process is started, else once it is (never, if it cannot be). */
  private whenStarted(step: (launched: Launched) => void): void {
    if (this.launched) step(this.launched);
    else if (this.exitInfo === null) this.waiting.push(step);
  }

  /** The last non-empty stderr lines (at most STDERR_TAIL_LINES): why an agent failed, e.g. ERR_MODULE_NOT_FOUND. */
  stderrTail(): string[] {
    return [...this.tail];
  }

  /** Null until the process is started (`started` resolves then). */
  get pid(): number | null {
    return this.launched?.pid ?? null;
  }

  /** A warm process (run/warm-pool.ts) handed to a run: its lines and log lines are the run's from now on. */
  adopt(log: Logger, onLine: (line: string) => void): void {
    this.log = log;
    this.onLine = onLine;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  send(message: DaemonMessage): void {
    if (!this.alive) return;
    const line = encodeMessage(message);
    this.whenStarted(({ stdin }) => this.alive && !stdin.destroyed && stdin.write(line));
  }

  /** Signal the whole process group (once it is started); a group already gone is fine. */
  kill(signal: NodeJS.Signals): void {
    this.whenStarted(({ pid }) => killGroup(pid, signal));
  }

  /** Write `text` to stdin and close it (a plain agent's task). */
  input(text: string): void {
    if (!this.alive) return;
    this.whenStarted(({ stdin }) => this.alive && !stdin.destroyed && stdin.end(text));
  }

  closeStdin(): void {
    this.whenStarted(({ stdin }) => stdin.end());
  }
}

/** The sandbox's view for a process started in `cwd` (the agent folder) of the home AGENTD_HOME names. */
export function confinedWhere(cwd: string, agentdEnv: Record<string, string>): SandboxWhere {
  // A plain agent's task and resume files live in a private temp folder the sandbox must still show.
  const readable = [agentdEnv.AGENTD_TASK_FILE, agentdEnv.AGENTD_RESUME_FILE].filter((f): f is string => f !== undefined).map((f) => path.dirname(f));
  return { home: agentdEnv.AGENTD_HOME ?? path.dirname(path.dirname(cwd)), agentDir: cwd, cwd, readable: [...new Set(readable)] };
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/** Split a stream into lines without ever buffering more than MAX_LINE_BYTES (readline would). */
function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void, onTooLong: () => void): void {
  let pending = '';
  let skipping = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let start = 0;
    for (let nl = chunk.indexOf('\n', start); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, nl);
      if (!skipping) onLine(pending + piece);
      pending = '';
      skipping = false;
      start = nl + 1;
    }
    if (skipping) return;
    pending += chunk.slice(start);
    if (pending.length > MAX_LINE_BYTES) {
      pending = '';
      skipping = true;
      onTooLong();
    }
  });
  stream.on('end', () => {
    if (pending && !skipping) onLine(pending);
  });
}
