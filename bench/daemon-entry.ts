import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/observe/logger.js';
import { ensureDir } from '../src/store/durable.js';
import { HomePaths } from '../src/store/paths.js';

/**
 * What `agentd start --home DIR --log-level L` does (src/cli/commands/start.ts),
 * for the bench to spawn while the CLI itself cannot load (a command file being
 * added by a colleague breaks its imports). Same Daemon class, same logger,
 * same signals; only the argument parsing is simpler.
 */
function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

const home = option('--home');
if (!home) {
  process.stderr.write('usage: daemon-entry.js --home DIR [--log-level L]\n');
  process.exit(2);
}
const paths = new HomePaths(home);
const log = createLogger({ level: option('--log-level') ?? 'info' });
await ensureDir(paths.stateRoot());
await ensureDir(paths.outboxRoot());
const daemon = new Daemon({ home: paths.root, log });
let signals = 0;
const onStop = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) process.exit(0);
  log.info({ signal }, 'signal received');
  void daemon.stop();
};
process.on('SIGTERM', onStop);
process.on('SIGINT', onStop);
process.on('SIGHUP', () => void daemon.reload());
await daemon.start();
await daemon.stopped;
log.flush();
