import type { Command } from 'commander';
import { errorMessage } from '../../errors.js';
import { readAllOutboxes, readOutbox, type OutboxItem } from '../../store/outbox.js';
import { assertName, type HomePaths } from '../../store/paths.js';
import { decisionsFor, describeResolution } from '../../store/resolution.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';
import { terminalSafe } from '../terminal-text.js';

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
  else process.stdout.write(shown.map((i) => formatItem(i)).join('\n'));
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

const FLAG: Record<string, string> = { answer: '--answer TEXT', continue: '--continue [--extend steps=20]' };

/**
 * One item as a person reads it: what happened, what they are asked, for an
 * approval the exact call, and the `agentd resolve` choices its kind allows.
 */
export function formatItem(item: OutboxItem): string {
  const safe = (text: string) => terminalSafe(text);
  const lines = [`${item.id}  ${item.kind}  ${item.agent}  task ${item.task_id ?? '-'}  ${item.status}  ${item.created_at}`];
  const field = (name: string, text: string) => lines.push(`  ${name.padEnd(9)} ${safe(text)}`);
  field('reason', item.reason);
  if (item.question) field('question', item.question);
  const details = item.details as { tool?: unknown; args?: unknown } | undefined;
  if (item.kind === 'approval' && typeof details?.tool === 'string') field('call', `${details.tool} ${JSON.stringify(details.args ?? {})}`);
  if (Array.isArray(item.blockers)) for (const b of item.blockers) field('blocker', typeof b === 'string' ? b : JSON.stringify(b));
  if (item.status === 'open') field('decide', `agentd resolve ${item.id} ${decisionsFor(item.kind).map((d) => FLAG[d] ?? `--${d}`).join(' | ')}`);
  else if (item.resolution) field('resolved', `${describeResolution(item.resolution)} at ${item.resolution.at ?? '?'}`);
  return lines.join('\n') + '\n';
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
