import type { Command } from 'commander';
import { Daemon } from '../../daemon/daemon.js';
import { ensureDir } from '../../store/durable.js';
import { createLogger } from '../../observe/logger.js';
import { EXIT, homeOf, runCommand, withHome } from '../common.js';

export function registerStart(program: Command): void {
  withHome(program.command('start'))
    .description('run the daemon in the foreground (for systemd, pm2 or a terminal)')
    .option('--pretty', 'human-readable logs instead of JSON lines')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .action((options: { home?: string; pretty?: boolean; logLevel: string }) =>
      runCommand(async () => {
        const paths = homeOf(options);
        const log = createLogger({ pretty: options.pretty ?? false, level: options.logLevel });
        await ensureDir(paths.stateRoot());
        await ensureDir(paths.outboxRoot());
        const daemon = new Daemon({ home: paths.root, log });
        let signals = 0;
        const onStop = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            // Everything is crash-safe: a second signal need not wait for the runs.
            log.warn({ signal }, 'second signal, exiting now');
            process.exit(EXIT.ok);
          }
          log.info({ signal }, 'signal received');
          void daemon.stop();
        };
        process.on('SIGTERM', onStop);
        process.on('SIGINT', onStop);
        process.on('SIGHUP', () => void daemon.reload());
        try {
          await daemon.start();
        } catch (err) {
          log.error({ problem: (err as Error).message }, 'daemon could not start');
          throw err;
        }
        await daemon.stopped;
        return EXIT.ok;
      }),
    );
}
