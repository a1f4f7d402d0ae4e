import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { Decision, OutboxItem } from '../../store/outbox.js';
import { describeResolution, resolveItem } from '../../store/resolution.js';
import { defaultActor, EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';

interface ResolveOptions {
  home?: string;
  continue?: boolean;
  approve?: boolean;
  deny?: boolean;
  cancel?: boolean;
  retry?: boolean;
  answer?: string;
  extend?: string;
  by?: string;
  json?: boolean;
}

const DECISION_FLAGS = ['continue', 'approve', 'deny', 'cancel', 'retry'] as const;

export function registerResolve(program: Command): void {
  withHome(program.command('resolve <item-id>'))
    .description('decide an outbox item: exactly one of --continue, --approve, --deny, --cancel, --retry (or --answer alone)')
    .option('--continue', 'go on as it is')
    .option('--approve', 'allow the action waiting for approval')
    .option('--deny', 'refuse the action waiting for approval')
    .option('--cancel', 'cancel the task')
    .option('--retry', 'run the task again')
    .option('--answer <text>', 'an answer passed to the agent (alone: the decision is "answer")')
    .option('--extend <budgets>', 'raise budgets, e.g. steps=20,cost_usd=1.5,runtime=10m')
    .option('--by <name>', 'who decided (default: your user name)')
    .option('--json', 'print the resolved item as JSON')
    .action((itemId: string, options: ResolveOptions) => runCommand(() => resolve(itemId, options)));
}

async function resolve(itemId: string, options: ResolveOptions): Promise<number> {
  const outcome = await resolveItem(homeOf(options), itemId, {
    decision: decisionOf(options),
    ...(options.answer !== undefined ? { answer: options.answer } : {}),
    ...(options.extend !== undefined ? { extend: options.extend } : {}),
    by: options.by ?? defaultActor(),
  });
  if (outcome.kind === 'already_resolved') return reportResolved(outcome.item);
  const { item } = outcome;
  if (options.json) printJson(item);
  else process.stdout.write(`resolved ${item.id} (${item.agent}, ${item.kind}): ${describeResolution(item.resolution!)}\n`);
  return EXIT.ok;
}

function reportResolved(item: OutboxItem): number {
  const r = item.resolution;
  process.stderr.write(`agentd: outbox item ${item.id} is already resolved (${r?.decision ?? '?'} by ${r?.by ?? '?'} at ${r?.at ?? '?'})\n`);
  return EXIT.checkFailed;
}

export function decisionOf(options: ResolveOptions): Decision {
  const chosen = DECISION_FLAGS.filter((flag) => options[flag]);
  if (chosen.length > 1) throw new UsageError(`choose one decision, not ${chosen.map((f) => `--${f}`).join(' and ')}`);
  if (chosen.length === 1) return chosen[0]!;
  if (options.answer !== undefined) return 'answer';
  throw new UsageError('a decision is required: --continue, --approve, --deny, --cancel, --retry or --answer TEXT');
}
