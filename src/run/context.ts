import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { HomePaths } from '../store/paths.js';
import { writeJsonAtomic } from '../store/durable.js';
import { DEFAULT_MAX_FILE_BYTES, readHomeFile, tooBigProblem } from '../store/home-file.js';
import { confinedWhere, killGroup, resolveExecutable, scrubbedEnv } from './agent-process.js';
import { confinedSpawn, type Confinement } from '../security/sandbox.js';

/** context-snapshot.json as read at boot: its content and when it was last updated. */
export type ContextSnapshot =
  | { kind: 'none' }
  | { kind: 'ok'; context: unknown; updatedAt: string }
  | { kind: 'broken'; problem: string };

export async function readContext(paths: HomePaths, agent: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<ContextSnapshot> {
  const file = paths.contextSnapshot(agent);
  // Not through a link out of the home, not a FIFO, not unbounded (store/home-file.ts).
  const read = await readHomeFile(paths, file, maxBytes);
  if (read.kind === 'missing') return { kind: 'none' };
  if (read.kind === 'refused') return { kind: 'broken', problem: `${paths.relative(file)} ${read.problem}` };
  if (read.kind === 'too_big') return { kind: 'broken', problem: `${paths.relative(file)} ${tooBigProblem(read.size, maxBytes)}` };
  const bytes = read.bytes;
  let context: unknown;
  try {
    context = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return { kind: 'broken', problem: `${paths.relative(file)} is not valid JSON: ${(err as Error).message}` };
  }
  const declared = (context as { updated_at?: unknown } | null)?.updated_at;
  if (typeof declared === 'string' && !Number.isNaN(Date.parse(declared))) return { kind: 'ok', context, updatedAt: declared };
  // Without updated_at the file's own mtime says when it was written.
  return { kind: 'ok', context, updatedAt: read.mtime.toISOString() };
}

/** The agent's `checkpoint` context, stamped with updated_at, into context-snapshot.json. */
export async function writeContext(paths: HomePaths, agent: string, context: unknown, now: Date): Promise<void> {
  const value = context !== null && typeof context === 'object' && !Array.isArray(context) ? { ...context, updated_at: now.toISOString() } : { context, updated_at: now.toISOString() };
  await writeJsonAtomic(paths.contextSnapshot(agent), value);
}

/** Run `context_refresh` in the agent folder; true when it exited 0 within the timeout. */
export async function runContextRefresh(
  command: string[],
  cwd: string,
  passEnv: string[],
  agentdEnv: Record<string, string>,
  timeoutMs: number,
  log: Logger,
  confinement?: Confinement,
): Promise<boolean> {
  const [cmd, ...args] = command;
  const run = confinedSpawn([resolveExecutable(cmd!, cwd), ...args], confinement, confinedWhere(cwd, agentdEnv));
  const child = spawn(run.file, run.args, { cwd, uid: run.uid, gid: run.gid, env: scrubbedEnv(passEnv, agentdEnv), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => log.info({ stream: 'context_refresh', output: chunk.slice(0, 2000) }, 'context refresh output'));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => log.info({ stream: 'context_refresh', output: chunk.slice(0, 2000) }, 'context refresh output'));
  const timer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  return code === 0;
}
