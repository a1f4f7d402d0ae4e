import type { Command } from 'commander';
import { Daemon } from '../../daemon/daemon.js';
import { ensureDir } from '../../store/durable.js';
import { createLogger } from '../../observe/logger.js';
import { parseByteSize, parseFileCount } from '../../observe/log-file.js';
import { EXIT, homeOf, runCommand, withHome } from '../common.js';
import { otherRunningDaemon, startRefusal, stopOtherCommand } from '../home-checks.js';

export function registerStart(program: Command): void {
  withHome(program.command('start'))
    .description('run the daemon in the foreground (for systemd, pm2 or a terminal)')
    .option('--pretty', 'human-readable logs instead of JSON lines')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option('--log-file <path>', 'also write JSON logs to this file, rotated by size into PATH.1 ... PATH.N')
    .option('--log-max-size <size>', 'rotate the log file before it passes this size (K, M, G are powers of 1024)', '10MB')
    .option('--log-files <n>', 'how many rotated log files to keep', '5')
    .option('--http <host:port>', 'serve /healthz and /metrics there (loopback only, e.g. 127.0.0.1:9464); overrides agentd.yaml http')
    .option('--http-allow-remote', 'let --http listen on a non-loopback address (no authentication: put a proxy in front)')
    .action((options: { home?: string; pretty?: boolean; logLevel: string; logFile?: string; logMaxSize: string; logFiles: string; http?: string; httpAllowRemote?: boolean }) =>
      runCommand(async () => {
        const paths = homeOf(options);
        const refusal = await startRefusal(paths);
        if (refusal) {
          process.stderr.write(`agentd: ${refusal}\n`);
          return EXIT.checkFailed;
        }
        const file = options.logFile === undefined ? undefined : { path: options.logFile, maxBytes: parseByteSize(options.logMaxSize), files: parseFileCount(options.logFiles) };
        const log = createLogger({ pretty: options.pretty ?? false, level: options.logLevel, file });
        await ensureDir(paths.stateRoot());
        await ensureDir(paths.outboxRoot());
        const other = await otherRunningDaemon(paths);
        if (other) {
          // Allowed (daemons on several hosts share a home, README "Scale"), but on one host it is usually a mistake.
          log.warn({ other_pid: other.pid, other_host: other.host, started_at: other.started_at, next: stopOtherCommand(other, paths) }, 'another daemon already runs on this home; both will share its work. If that is not meant, stop one (next)');
        }
        const daemon = new Daemon({ home: paths.root, log, http: options.http, httpAllowRemote: options.httpAllowRemote });
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
          await daemon.stop(); // whatever start() had opened (the http server) must not keep the process alive
          throw err;
        }
        await daemon.stopped;
        // pm2 (fork mode) talks to its app over an IPC channel, which would keep the process alive after the stop.
        if (process.connected) process.disconnect?.();
        return EXIT.ok;
      }),
    );
}
