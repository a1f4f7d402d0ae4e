import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { StartMessage } from '../protocol/messages.js';
import type { RunOutcome } from './run-types.js';

/**
 * A plain agent (`protocol: none`, README "Plain agents") knows nothing of
 * agentd: the task JSON on stdin and in `$AGENTD_TASK_FILE`, what a resumed
 * run needs in `$AGENTD_RESUME_FILE`, its stdout is the result.
 */

/** Stdout kept as the result; more is an invalid result, not a memory problem. */
export const MAX_RESULT_BYTES = 16 * 1024 * 1024;

export interface PlainFiles {
  env: Record<string, string>;
  /** Why the run_as account cannot read the files (it still has the task on stdin); null when it can. */
  problem: string | null;
  remove(): Promise<void>;
}

/** The account a plain agent runs as (`run_as`), when it is not the daemon's. */
export interface PlainFilesOwner {
  uid: number;
  gid: number;
}

/**
 * The task and resume files of one run, in a private temporary folder. Under
 * `run_as` the folder and files are handed to that account, the only one
 * besides the daemon that may read them (README "Plain agents").
 */
export async function writePlainFiles(task: Record<string, unknown>, resume: StartMessage['resume'], context: unknown, owner: PlainFilesOwner | null = null): Promise<PlainFiles> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-run-'));
  const taskFile = path.join(dir, 'task.json');
  const resumeFile = path.join(dir, 'resume.json');
  await fs.writeFile(taskFile, JSON.stringify(task, null, 2) + '\n', { mode: 0o600 });
  await fs.writeFile(resumeFile, JSON.stringify({ ...resume, context }, null, 2) + '\n', { mode: 0o600 });
  const problem = owner ? await handOver(dir, [taskFile, resumeFile], owner) : null;
  return {
    problem,
    env: { AGENTD_TASK_FILE: taskFile, AGENTD_RESUME_FILE: resumeFile },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Give the files to the run_as account. The folder stays the daemon's (so it
 * can remove it from the sticky /tmp), in the account's group, 0750; each file
 * becomes the account's own, or, for a daemon without CAP_CHOWN (not root,
 * only CAP_SETUID and CAP_SETGID) that is a member of the account's group,
 * group-readable. Closed to everyone else either way. When neither works the
 * agent has its task on stdin only: the problem is returned.
 */
async function handOver(dir: string, files: string[], owner: PlainFilesOwner): Promise<string | null> {
  try {
    await fs.chown(dir, -1, owner.gid);
    await fs.chmod(dir, 0o750);
    for (const file of files) await chownOrShare(file, owner);
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return `the daemon can give $AGENTD_TASK_FILE neither to uid ${owner.uid} nor to group ${owner.gid}: it needs CAP_CHOWN or membership of that group (README "Plain agents")`;
  }
}

async function chownOrShare(file: string, owner: PlainFilesOwner): Promise<void> {
  try {
    await fs.chown(file, owner.uid, owner.gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    await fs.chown(file, -1, owner.gid);
    await fs.chmod(file, 0o640);
  }
}

/** Collects a plain agent's stdout, up to MAX_RESULT_BYTES. */
export class PlainOutput {
  private readonly lines: string[] = [];
  private bytes = 0;
  overflowed = false;

  add(line: string): void {
    this.bytes += Buffer.byteLength(line) + 1;
    if (this.bytes > MAX_RESULT_BYTES) this.overflowed = true;
    else this.lines.push(line);
  }

  /** What it printed, without its final newlines. */
  printed(): string {
    return this.lines.join('\n').replace(/\n+$/, '');
  }

  /** The result: JSON when the whole output parses as JSON, else the text without its final newline. */
  result(): unknown {
    const text = this.printed();
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
}

/**
 * A plain agent whose exit status was lost (the spawner died while it ran:
 * README.md, "The spawner"). Exit 0 is its only word that it finished, so
 * whether it did is unknown: it is dead-lettered for a person, not run again,
 * which could repeat what it did (a payment made, a mail sent). Pure.
 */
export function lostExitOutcome(output: PlainOutput, taskId: string): RunOutcome {
  const printed = output.printed().trim();
  const stdout = printed === '' ? 'it printed nothing' : `its stdout began: ${printed.slice(0, STDOUT_SHOWN_CHARS)}`;
  return {
    kind: 'failed',
    category: 'crash',
    retry: false,
    message: `the agent's exit status was lost (the spawner died while it ran), so whether it finished is unknown; not run again, which could repeat what it did (${stdout}). If it did not finish: agentd dlq retry ${taskId}`,
  };
}

/** How much of a plain agent's stdout a lost exit's error shows. */
const STDOUT_SHOWN_CHARS = 300;
