import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.js';
import { UsageError } from '../../errors.js';
import { renderTop, type TopAgent, type TopFacts } from '../../observe/top-view.js';
import { daemonRunning, readDaemonStatus } from '../../store/daemon-status.js';
import { listDir } from '../../store/durable.js';
import { hostId, pidAlive } from '../../store/host.js';
import { readAllOutboxes } from '../../store/outbox.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { countDeadLetters } from '../../store/dead-letters.js';
import { inboxSize } from '../../store/inbox-index.js';
import { EXIT, homeOf, runCommand, withHome } from '../common.js';
import { terminalSafe } from '../terminal-text.js';

interface TopOptions {
  home?: string;
  interval: string;
  once?: boolean;
  iterations?: string;
}

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, cursor hidden
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const CLEAR_LINE = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export function registerTop(program: Command): void {
  withHome(program.command('top'))
    .description('a live view of agents, runs in flight, steps, spend and circuits, refreshed in place (q or Ctrl-C quits)')
    .option('--interval <duration>', 'time between refreshes', '1s')
    .option('--once', 'print one frame as plain text and exit')
    .option('--iterations <n>', 'exit after this many frames')
    .action((options: TopOptions) => runCommand(() => top(options)));
}

async function top(options: TopOptions): Promise<number> {
  const paths = homeOf(options);
  const intervalMs = parseInterval(options.interval);
  const width = () => process.stdout.columns ?? 120;
  if (options.once) {
    process.stdout.write(renderTop(await gather(paths), width()).join('\n') + '\n');
    return EXIT.ok;
  }
  const iterations = options.iterations === undefined ? Infinity : Number(options.iterations);
  if (!(iterations >= 1)) throw new UsageError('--iterations must be a whole number, 1 or more');
  return live(paths, intervalMs, iterations, width);
}

/** Frames in place on the alternate screen until q, Ctrl-C, a signal or the last iteration; the screen is always restored. */
async function live(paths: HomePaths, intervalMs: number, iterations: number, width: () => number): Promise<number> {
  const stdin = process.stdin;
  let quit: () => void = () => undefined;
  const quitting = new Promise<void>((resolve) => (quit = resolve));
  const onKey = (key: Buffer) => {
    const text = key.toString('utf8');
    if (text.includes('q') || text.includes('Q') || text.includes('\x03')) quit();
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onKey);
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  process.stdout.write(ENTER);
  try {
    for (let frame = 0; frame < iterations; frame++) {
      const lines = renderTop(await gather(paths), width());
      process.stdout.write(HOME + lines.map((l) => l + CLEAR_LINE).join('\n') + CLEAR_BELOW);
      if (frame + 1 >= iterations) break;
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([quitting.then(() => 'quit'), new Promise<string>((r) => (timer = setTimeout(() => r('tick'), intervalMs)))]);
      clearTimeout(timer);
      if (waited === 'quit') break;
    }
  } finally {
    process.stdout.write(LEAVE);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.off('data', onKey);
    stdin.pause();
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
  }
  return EXIT.ok;
}

function parseInterval(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms >= 10) return ms;
  } catch {
    // reported below
  }
  throw new UsageError(`--interval ${JSON.stringify(text)} must be a duration of 10ms or more, like 1s`);
}

/** What a frame shows: the daemon's snapshot (when it runs) and the home's queues. */
async function gather(paths: HomePaths): Promise<TopFacts> {
  const now = Date.now();
  const status = await readDaemonStatus(paths).catch(() => null);
  const running = status && daemonRunning(status, { now, host: hostId(), pidAlive }) ? status : null;
  const { items } = await readAllOutboxes(paths);
  const dead = await countDeadLetters(paths);
  const names = new Set<string>([...(running?.agents ?? []), ...(await listDir(paths.agentsDir())).filter((n) => isValidName(n) && !isReservedAgentName(n))]);
  const agents: TopAgent[] = [];
  for (const name of [...names].sort()) {
    agents.push({
      name: terminalSafe(name),
      inbox: await inboxSize(paths, name).catch(() => 0),
      openItems: items.filter((i) => i.agent === name && i.status === 'open').length,
      deadLetters: dead[name] ?? 0,
    });
  }
  return { home: paths.root, now, daemon: running, agents };
}

