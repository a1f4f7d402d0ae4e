import type { Command } from 'commander';
import { NotFoundError, UsageError } from '../../errors.js';
import { exists, listDir } from '../../store/durable.js';
import { assertName, isReservedAgentName, isValidName, type HomePaths } from '../../store/paths.js';
import { listDeadLetters, readDeadLetter, retryDeadLetter, type DeadLetterEntry } from '../../store/dead-letters.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';
import { useHomeFileModes } from '../file-modes.js';
import { truncate } from './outbox.js';

interface DlqOptions {
  home?: string;
  agent?: string;
  json?: boolean;
}

export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('dead letters: tasks that failed for good (state/dead-letter/<agent>/<id>.json)');
  withHome(dlq.command('list', { isDefault: true }))
    .description('list dead letters (the default)')
    .option('--agent <agent>', "only this agent's")
    .option('--json', 'print them as a JSON array')
    .action((options: DlqOptions) => runCommand(() => list(options)));
  withHome(dlq.command('show <id>'))
    .description('print one dead-letter record as JSON')
    .option('--agent <agent>', 'the agent, when the id exists under several')
    .action((id: string, options: DlqOptions) => runCommand(() => show(id, options)));
  withHome(dlq.command('retry <id>'))
    .description("put the task back into its agent's inbox and remove the record")
    .option('--agent <agent>', 'the agent, when the id exists under several')
    .option('--json', 'print {agent, id, file} as JSON')
    .action((id: string, options: DlqOptions) => runCommand(() => retry(id, options)));
}

async function list(options: DlqOptions): Promise<number> {
  const paths = homeOf(options);
  const entries = await listDeadLetters(paths, agentOption(options));
  if (options.json) {
    printJson(entries.map((e) => ({ agent: e.agent, id: e.id, ...summary(e) })));
    return EXIT.ok;
  }
  if (entries.length === 0) {
    process.stdout.write('no dead letters\n');
    return EXIT.ok;
  }
  const rows = entries.map((e) => {
    const s = summary(e);
    return [e.agent, e.id, s.category, truncate(s.message, 70), s.attempts, s.when];
  });
  process.stdout.write(formatTable(['AGENT', 'ID', 'CATEGORY', 'MESSAGE', 'ATTEMPTS', 'WHEN'], rows));
  return EXIT.ok;
}

async function show(id: string, options: DlqOptions): Promise<number> {
  const paths = homeOf(options);
  const entry = await findOne(paths, id, options);
  if (!entry.record) throw new NotFoundError(`${paths.relative(paths.deadLetter(entry.agent, entry.id))} is not readable JSON`);
  printJson(entry.record);
  return EXIT.ok;
}

async function retry(id: string, options: DlqOptions): Promise<number> {
  const paths = homeOf(options);
  const entry = await findOne(paths, id, options);
  const inbox = paths.inboxTask(entry.agent, entry.id);
  if (await exists(inbox)) {
    process.stderr.write(`agentd: ${paths.relative(inbox)} already exists: move it away first\n`);
    return EXIT.checkFailed;
  }
  await useHomeFileModes(paths);
  await retryDeadLetter(paths, entry.agent, entry.id);
  if (options.json) printJson({ agent: entry.agent, id: entry.id, file: paths.relative(inbox) });
  else process.stdout.write(`requeued ${entry.id} into ${paths.relative(inbox)}\n`);
  if (entry.record && !entry.record.task) {
    process.stderr.write(`agentd: note: this task file was malformed (${entry.record.error.message}); fix it or it will be dead-lettered again\n`);
  }
  return EXIT.ok;
}

function agentOption(options: DlqOptions): string | undefined {
  return options.agent === undefined ? undefined : assertName(options.agent, 'agent name');
}

/** The one dead letter `id` names: exit 2 when it is ambiguous without --agent, 1 when there is none. */
async function findOne(paths: HomePaths, id: string, options: DlqOptions): Promise<DeadLetterEntry> {
  assertName(id, 'task id');
  const agent = agentOption(options);
  const agents = agent !== undefined ? [agent] : (await listDir(paths.deadLetterRoot())).filter((n) => isValidName(n) && !isReservedAgentName(n)).sort();
  const matches: DeadLetterEntry[] = [];
  for (const a of agents) {
    if (await exists(paths.deadLetter(a, id))) matches.push({ agent: a, id, record: await readDeadLetter(paths, a, id) });
  }
  if (matches.length > 1) {
    throw new UsageError(`dead letter ${id} exists for agents ${matches.map((m) => m.agent).join(', ')}: pass --agent`);
  }
  if (matches.length === 0) throw new NotFoundError(`no dead letter ${id}${options.agent ? ` for agent ${options.agent}` : ''} (agentd dlq lists them)`);
  return matches[0]!;
}

function summary(e: DeadLetterEntry): { category: string; message: string; attempts: number | null; when: string | null } {
  if (!e.record) return { category: '?', message: 'the record is not readable JSON', attempts: null, when: null };
  return {
    category: e.record.error?.category ?? '?',
    message: e.record.error?.message ?? '',
    attempts: e.record.attempts ?? null,
    when: e.record.dead_lettered_at ?? null,
  };
}
