import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  /** Where JSON lines go; stdout by default (journald and pm2 collect it). */
  destination?: NodeJS.WritableStream;
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
  };
  if (options.pretty) return pino(base, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  return pino(base, (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false }));
}

/** A logger that discards everything, for commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
