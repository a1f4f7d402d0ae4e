import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { encodeMessage, type DaemonMessage } from '../protocol/messages.js';
import { confinedSpawn, type Confinement, type SandboxWhere } from '../security/sandbox.js';
import { inRunCgroup } from '../security/run-cgroup.js';
import { secretCensor } from '../security/secrets.js';
import { PYTHON_MODULE_DIR } from '../config/installation.js';

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

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
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

export class AgentProcess {
  private readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private readonly tail: string[] = [];

  constructor(
    spec: SpawnSpec,
    private log: Logger,
    private onLine: (line: string) => void,
  ) {
    const [cmd, ...args] = spec.command;
    const confined = confinedSpawn([resolveExecutable(cmd!, spec.cwd), ...args], spec.confinement, confinedWhere(spec.cwd, spec.agentdEnv));
    // Unsandboxed, it runs in a cgroup of its own where the daemon has one: killed whole at exit, setsid or not.
    const env = { ...withPythonModule(scrubbedEnv(spec.passEnv, spec.agentdEnv)), ...spec.runEnv };
    const { run, cgroup } = inRunCgroup(confined, spec.confinement?.sandbox ?? false, env);
    this.child = spawn(run.file, run.args, {
      cwd: spec.cwd,
      uid: run.uid,
      gid: run.gid,
      env,
      detached: true, // its own process group, so a kill reaches everything it started
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.log.error({ err }, 'agent process could not start');
        cgroup?.removeEmpty();
        this.exitInfo ??= { code: 127, signal: null };
        resolve(this.exitInfo);
      });
      this.child.once('close', (code, signal) => {
        this.exitInfo ??= { code, signal };
        // The run ends once its cgroup is empty and gone, so nothing it started is seen after it.
        const info = this.exitInfo;
        if (cgroup) void cgroup.end().then((removed) => removed || this.log.warn({ cgroup: cgroup.dir }, 'run cgroup not removed'), () => undefined).then(() => resolve(info));
        else resolve(info);
      });
    });
    // When the agent exits, whatever it started dies with it: a child that kept its
    // stdout open would otherwise hold the run open ('close' waits for every pipe end).
    this.child.once('exit', () => {
      if (this.child.pid !== undefined) killGroup(this.child.pid, 'SIGKILL');
      cgroup?.kill();
    });
    // A dead agent makes stdin writes fail with EPIPE; its exit is handled through `exited`.
    this.child.stdin!.on('error', () => undefined);
    readLines(this.child.stdout!, (line) => this.onLine(line), () => this.log.warn({ limit: MAX_LINE_BYTES }, 'agent stdout line too long, dropped'));
    let stderrLines = 0;
    readLines(
      this.child.stderr!,
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
  }

  /** The last non-empty stderr lines (at most STDERR_TAIL_LINES): why an agent failed, e.g. ERR_MODULE_NOT_FOUND. */
  stderrTail(): string[] {
    return [...this.tail];
  }

  get pid(): number | null {
    return this.child.pid ?? null;
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
    if (!this.alive || this.child.stdin!.destroyed) return;
    this.child.stdin!.write(encodeMessage(message));
  }

  /** Signal the whole process group; a group already gone is fine. */
  kill(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    killGroup(this.child.pid, signal);
  }

  /** Write `text` to stdin and close it (a plain agent's task). */
  input(text: string): void {
    if (!this.alive || this.child.stdin!.destroyed) return;
    this.child.stdin!.end(text);
  }

  closeStdin(): void {
    this.child.stdin!.end();
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
