import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.js';
import { UsageError } from '../../errors.js';
import { readHistory, type HistoryLine } from '../../store/history.js';
import { assertName, isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, sinceOptionMs, withHome } from '../common.js';

interface RunsOptions {
  home?: string;
  status?: string;
  since?: string;
  limit: string;
  json?: boolean;
}

export function registerRuns(program: Command): void {
  withHome(program.command('runs [agent]'))
    .description('run history (state/<agent>/history.jsonl), newest first, across agents or for one')
    .option('--status <status>', 'only runs that ended so (done, failed, escalated, limit, interrupted, cancelled, dead_letter)')
    .option('--since <duration>', 'only runs started within this long, e.g. 1h')
    .option('--limit <n>', 'at most this many runs', '50')
    .option('--json', 'print the history lines as a JSON array')
    .action((agent: string | undefined, options: RunsOptions) => runCommand(() => listRuns(agent, options)));
}

async function listRuns(agent: string | undefined, options: RunsOptions): Promise<number> {
  const paths = homeOf(options);
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit ${JSON.stringify(options.limit)} must be a positive integer`);
  const sinceMs = options.since === undefined ? null : Date.now() - sinceOptionMs(options.since);
  const agents = agent !== undefined ? [assertName(agent, 'agent name')] : await agentsWithState(paths);

  const lines: HistoryLine[] = [];
  for (const name of agents) lines.push(...(await readHistory(paths, name)));
  const shown = lines
    .filter((l) => options.status === undefined || l.status === options.status)
    .filter((l) => sinceMs === null || Date.parse(l.started_at) >= sinceMs)
    .sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at))
    .slice(0, limit);

  if (options.json) printJson(shown);
  else if (shown.length === 0) process.stdout.write('no runs\n');
  else {
    const rows = shown.map((l) => [
      l.run_id,
      l.agent,
      l.task_id,
      l.trigger,
      l.status,
      l.started_at,
      formatDuration(l.duration_ms ?? 0),
      l.steps,
      (l.tokens?.input ?? 0) + (l.tokens?.output ?? 0),
      `$${(l.cost_usd ?? 0).toFixed(4)}`,
      l.error_category,
    ]);
    process.stdout.write(formatTable(['RUN', 'AGENT', 'TASK', 'TRIGGER', 'STATUS', 'STARTED', 'DURATION', 'STEPS', 'TOKENS', 'COST', 'ERROR'], rows));
  }
  return EXIT.ok;
}


/** Agents with a state folder: history outlives a removed definition. */
async function agentsWithState(paths: HomePaths): Promise<string[]> {
  const entries = await fs.readdir(paths.stateRoot(), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries.filter((e) => e.isDirectory() && isValidName(e.name) && !isReservedAgentName(e.name)).map((e) => e.name).sort();
}
