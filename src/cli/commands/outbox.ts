import type { Command } from 'commander';
import { errorMessage } from '../../errors.js';
import { readAllOutboxes, readOutbox, type OutboxItem } from '../../store/outbox.js';
import { assertName, type HomePaths } from '../../store/paths.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';

interface OutboxOptions {
  home?: string;
  all?: boolean;
  agent?: string;
  json?: boolean;
}

export function registerOutbox(program: Command): void {
  withHome(program.command('outbox'))
    .description('items waiting for a person, across agents, newest first')
    .option('--all', 'include resolved items')
    .option('--agent <agent>', "only this agent's items")
    .option('--json', 'print the items as a JSON array')
    .action((options: OutboxOptions) => runCommand(() => listOutbox(options)));
}

async function listOutbox(options: OutboxOptions): Promise<number> {
  const paths = homeOf(options);
  const { items, problems } = await readItems(paths, options.agent);
  const shown = items.filter((i) => options.all || i.status === 'open').sort(newestFirst);
  // Broken files go to stderr so the rest still prints (and --json stays parseable).
  for (const line of problems.flatMap((p) => p.split('\n'))) process.stderr.write(`agentd: ${line}\n`);

  if (options.json) printJson(shown);
  else if (shown.length === 0) process.stdout.write(options.all ? 'the outbox is empty\n' : 'no open items\n');
  else {
    const rows = shown.map((i) => [i.id, i.agent, i.kind, i.task_id, i.status, i.created_at, truncate(i.reason, 70)]);
    process.stdout.write(formatTable(['ID', 'AGENT', 'KIND', 'TASK', 'STATUS', 'CREATED', 'REASON'], rows));
  }
  return problems.length > 0 ? EXIT.checkFailed : EXIT.ok;
}

async function readItems(paths: HomePaths, agent: string | undefined): Promise<{ items: OutboxItem[]; problems: string[] }> {
  if (agent === undefined) return readAllOutboxes(paths);
  const name = assertName(agent, 'agent name');
  try {
    return { items: (await readOutbox(paths, name)).items, problems: [] };
  } catch (err) {
    return { items: [], problems: [errorMessage(err)] };
  }
}

/** Newest first, then by id. */
export function newestFirst(a: OutboxItem, b: OutboxItem): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** One line, at most `max` characters, for a table cell. */
export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
