import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { BadNameError, BadTaskError, ConfigError, HomeNotWritableError, NotFoundError, UsageError } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { HomePaths } from '../store/paths.js';

/** Exit codes of every command (README "Command line"). */
export const EXIT = { ok: 0, checkFailed: 1, usage: 2 } as const;

/** The home: --home, else AGENTD_HOME, else the current directory. */
export function homeOf(options: { home?: string }): HomePaths {
  return new HomePaths(path.resolve(options.home ?? process.env.AGENTD_HOME ?? process.cwd()));
}

/** Adds the --home option every command takes. */
export function withHome(command: Command): Command {
  return command.option('--home <dir>', 'the agentd home folder (default: $AGENTD_HOME or the current directory)');
}

/** Who resolved something: --by, else the OS user. */
export function defaultActor(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/**
 * Run a command body; map errors to a message on stderr and the right exit
 * code: 2 for bad usage or names, 1 for everything else.
 */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    const usage = err instanceof UsageError || err instanceof BadNameError;
    const known = usage || err instanceof ConfigError || err instanceof NotFoundError || err instanceof BadTaskError || err instanceof HomeNotWritableError;
    process.stderr.write(`agentd: ${known ? (err as Error).message : (err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = usage ? EXIT.usage : EXIT.checkFailed;
  }
}

/** A plain aligned table for a terminal; every command that prints one also has --json. */
export function formatTable(columns: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [columns, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A `--since 1h` option in milliseconds; a bad duration is bad usage (exit 2). */
export function sinceOptionMs(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new UsageError(`--since: ${(err as Error).message}`);
  }
}
