import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { findDefinitionFile } from '../../config/agent-definition.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { writeInboxTask } from '../../store/inbox-writer.js';
import { assertName } from '../../store/paths.js';
import { generateTaskId, parseTask, type Task } from '../../store/tasks.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';
import { useHomeFileModes } from '../file-modes.js';

interface SubmitOptions {
  home?: string;
  goal: string;
  input?: string;
  priority?: string;
  id?: string;
  json?: boolean;
}

export function registerSubmit(program: Command): void {
  withHome(program.command('submit <agent>'))
    .description("queue a task in an agent's inbox (agents/<agent>/inbox/<id>.json)")
    .requiredOption('--goal <text>', 'what the agent should do')
    .option('--input <file>', 'a JSON file whose content becomes the task input')
    .option('--priority <n>', 'higher runs first (integer, default 0)')
    .option('--id <id>', 'the task id (default: generated)')
    .option('--json', 'print {agent, id, file} as JSON')
    .action((agentName: string, options: SubmitOptions) => runCommand(() => submit(agentName, options)));
}

async function submit(agentName: string, options: SubmitOptions): Promise<number> {
  const paths = homeOf(options);
  const agent = assertName(agentName, 'agent name');
  const now = new Date();
  const id = options.id !== undefined ? assertName(options.id, 'task id') : generateTaskId(now);
  const candidate: Task = { id, created_at: now.toISOString(), goal: options.goal };
  if (options.input !== undefined) candidate.input = await readInput(options.input);
  if (options.priority !== undefined) candidate.priority = parsePriority(options.priority);

  if (!(await findDefinitionFile(paths, agent))) {
    throw new NotFoundError(`no agent ${JSON.stringify(agent)}: agents/${agent} has no agent.yaml, agent.yml or agent.json`);
  }
  const parsed = parseTask(Buffer.from(JSON.stringify(candidate)), () => id, now);
  if (!parsed.ok) throw new UsageError(`the task is invalid: ${parsed.problems.join('; ')}`);
  const file = paths.inboxTask(agent, id);
  await useHomeFileModes(paths);
  // An exclusive create, not a check then a write: of concurrent submits of one id exactly one wins.
  if (!(await writeInboxTask(paths, agent, id, parsed.task, { exclusive: true }))) {
    process.stderr.write(`agentd: ${paths.relative(file)} already exists: choose another --id\n`);
    return EXIT.checkFailed;
  }

  if (options.json) printJson({ agent, id, file: paths.relative(file) });
  else process.stdout.write(`${id}\n`);
  return EXIT.ok;
}

async function readInput(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--input ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`--input ${file}: is not valid JSON: ${(err as Error).message}`);
  }
}

function parsePriority(value: string): number {
  if (!/^-?[0-9]+$/.test(value.trim())) throw new UsageError(`--priority ${JSON.stringify(value)} must be an integer`);
  return Number(value);
}
