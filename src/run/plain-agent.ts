import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { StartMessage } from '../protocol/messages.js';

/**
 * A plain agent (`protocol: none`, README "Plain agents") knows nothing of
 * agentd: the task JSON on stdin and in `$AGENTD_TASK_FILE`, what a resumed
 * run needs in `$AGENTD_RESUME_FILE`, its stdout is the result.
 */

/** Stdout kept as the result; more is an invalid result, not a memory problem. */
export const MAX_RESULT_BYTES = 16 * 1024 * 1024;

export interface PlainFiles {
  env: Record<string, string>;
  remove(): Promise<void>;
}

/** The task and resume files of one run, in a private temporary folder. */
export async function writePlainFiles(task: Record<string, unknown>, resume: StartMessage['resume'], context: unknown): Promise<PlainFiles> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-run-'));
  const taskFile = path.join(dir, 'task.json');
  const resumeFile = path.join(dir, 'resume.json');
  await fs.writeFile(taskFile, JSON.stringify(task, null, 2) + '\n', { mode: 0o600 });
  await fs.writeFile(resumeFile, JSON.stringify({ ...resume, context }, null, 2) + '\n', { mode: 0o600 });
  return {
    env: { AGENTD_TASK_FILE: taskFile, AGENTD_RESUME_FILE: resumeFile },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
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

  /** The result: JSON when the whole output parses as JSON, else the text without its final newline. */
  result(): unknown {
    const text = this.lines.join('\n').replace(/\n+$/, '');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
}
