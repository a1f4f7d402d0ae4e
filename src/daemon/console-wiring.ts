import type http from 'node:http';
import type { Logger } from 'pino';
import { defaultActor } from '../cli/common.js';
import type { ConsoleView } from '../console/data.js';
import type { Clock } from '../core/clock.js';
import type { HomePaths } from '../store/paths.js';

/** The console as the http server sees it. */
export interface RunningConsole {
  token: string;
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  close(): void;
}

/** The console's code is loaded only by a daemon that serves --http (README "Console"). */
export async function startConsole(paths: HomePaths, view: ConsoleView, clock: Clock, log: Logger): Promise<RunningConsole> {
  const [{ ConsoleServer }, { consoleToken }] = await Promise.all([import('../console/server.js'), import('../console/token.js')]);
  const token = await consoleToken(paths);
  const server = new ConsoleServer({ paths, token, view, defaultActor: defaultActor(), now: () => clock.now(), log });
  return { token, handle: (req, res) => server.handle(req, res), close: () => server.close() };
}

/**
 * The URL with the token goes to stderr, for the person who started the
 * daemon, and never into the JSON log, which is shipped and kept elsewhere.
 */
export function announceConsole(base: string, token: string, log: Logger): void {
  log.info({ url: base, token_file: 'state/console.token' }, 'console listening');
  process.stderr.write(`agentd: console at ${base}?token=${token}\n`);
}
