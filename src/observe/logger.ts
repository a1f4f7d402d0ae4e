import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import { RotatingLogFile, type LogFileOptions } from './log-file.js';
import { secretCensor } from '../security/secrets.js';
import { boundExitFlush } from './log-exit-flush.js';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  /** Where JSON lines go; stdout by default (journald and pm2 collect it). */
  destination?: NodeJS.WritableStream;
  /** Also write JSON lines to this file, rotated by size (`agentd start --log-file`). */
  file?: LogFileOptions;
}

/**
 * Paths pino masks wherever they appear in a log line. Keys never reach a
 * log by design; this catches an accidental `{ headers }` or `{ env }`.
 */
export const REDACT_PATHS = [
  'apiKey',
  'api_key',
  '*.apiKey',
  '*.api_key',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  '*.headers.Authorization',
  'env',
  '*.env',
];

/** The one root logger; components and runs take children of it. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? process.env.AGENTD_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    // The values of the daemon's secrets (agentd.yaml `secrets`, providers' api_key_env) are
    // masked wherever they appear in the finished line: any field, a message, an error's stack.
    hooks: { streamWrite: (line: string) => secretCensor.mask(line) },
  };
  const primary = options.pretty
    ? loadPretty()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true })
    : ((options.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false }));
  survivesWriteErrors(primary);
  boundExitFlush(primary);
  survivesStderrErrors();
  if (!options.file) return pino(base, primary);
  // Each stream takes every line the logger's level lets through; the file always gets JSON.
  return pino(base, pino.multistream([{ stream: primary, level: 'trace' }, { stream: new RotatingLogFile(options.file), level: 'trace' }]));
}

/**
 * A log line that cannot be written (stdout is a file on a full disk, a
 * closed pipe) is dropped: the stream's 'error' event would otherwise be
 * unhandled and take the daemon down. Said once on stderr, best effort.
 */
function survivesWriteErrors(stream: unknown): void {
  const emitter = stream as { on?: (event: string, listener: (err: Error) => void) => unknown };
  if (typeof emitter.on !== 'function') return;
  let reported = false;
  emitter.on('error', (err: Error) => {
    if (reported) return;
    reported = true;
    try {
      process.stderr.write(`agentd: log lines are being dropped: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
    } catch {
      // stderr may be on the same full disk
    }
  });
}

/**
 * A write to stderr that fails (a file on a full disk: `agentd start
 * >log 2>&1`) is reported as an 'error' event on process.stderr, which would
 * be unhandled and end the daemon. Nowhere is left to say it: it is dropped.
 */
function survivesStderrErrors(): void {
  if (process.stderr.listenerCount('error') > 0) return;
  process.stderr.on('error', () => undefined);
}

/** pino-pretty is loaded only for --pretty: the daemon under systemd or pm2 never needs its memory. */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

/** A logger that discards everything, for commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
