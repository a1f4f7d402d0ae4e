import type { Command } from 'commander';
import type { BudgetLimits } from '../../config/types.js';
import { parseDuration } from '../../config/duration.js';
import { AlreadyResolvedError, NotFoundError, UsageError } from '../../errors.js';
import { extendKey } from '../../run/budget.js';
import { agentOfItemId, readAllOutboxes, resolveOutboxItem, type Decision, type OutboxItem, type Resolution } from '../../store/outbox.js';
import { assertName, type HomePaths } from '../../store/paths.js';
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

/** The keys a resolution stores, as the protocol's budget names them. */
const STORED_KEY: Partial<Record<keyof BudgetLimits, string>> = {
  steps: 'steps',
  toolCalls: 'tool_calls',
  tokens: 'tokens',
  costUsd: 'cost_usd',
  runtimeMs: 'runtime_ms',
};

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
  const paths = homeOf(options);
  // `<agent>:<hex>`: the agent part names a folder, so it must be a name, never a path.
  const owner = agentOfItemId(itemId);
  if (owner !== null) assertName(owner, 'agent name');
  const resolution: Resolution = { decision: decisionOf(options) };
  if (options.answer !== undefined) resolution.answer = options.answer;
  if (options.extend !== undefined) resolution.extend = parseExtend(options.extend);
  resolution.by = options.by ?? defaultActor();
  resolution.at = new Date().toISOString();

  const { items, problems } = await readAllOutboxes(paths);
  const found = items.find((i) => i.id === itemId);
  if (!found) throw new NotFoundError([`no outbox item ${itemId} (agentd outbox --all lists them)`, ...problems].join('\n'));
  if (found.status !== 'open') return reportResolved(found);

  let item: OutboxItem;
  try {
    item = await resolveOutboxItem(paths, itemId, resolution);
  } catch (err) {
    // Someone resolved it between our read and our write: report who.
    if (!(err instanceof AlreadyResolvedError)) throw err;
    const resolved = await resolvedMeanwhile(paths, itemId);
    if (!resolved) throw err;
    return reportResolved(resolved);
  }
  if (options.json) printJson(item);
  else process.stdout.write(`resolved ${item.id} (${item.agent}, ${item.kind}): ${describe(resolution)}\n`);
  return EXIT.ok;
}

/** The item someone resolved meanwhile, read again for who and when. */
async function resolvedMeanwhile(paths: HomePaths, itemId: string): Promise<OutboxItem | null> {
  const { items } = await readAllOutboxes(paths);
  const item = items.find((i) => i.id === itemId);
  return item && item.status !== 'open' ? item : null;
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

/** `steps=20,cost_usd=1.5,runtime=10m` → `{ steps: 20, cost_usd: 1.5, runtime_ms: 600000 }`. */
export function parseExtend(text: string): Record<string, number> {
  const extend: Record<string, number> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--extend ${JSON.stringify(pair)} must be key=value`);
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    const budget = extendKey(key);
    const stored = budget && STORED_KEY[budget];
    if (!budget || !stored) throw new UsageError(`--extend ${key} is not a budget (use steps, tool_calls, tokens, cost_usd, runtime)`);
    const amount = budget === 'runtimeMs' ? durationMs(key, raw) : Number(raw);
    if (raw === '' || !Number.isFinite(amount) || amount < 0) throw new UsageError(`--extend ${key}=${raw} must be a number, 0 or more`);
    if (budget !== 'costUsd' && !Number.isInteger(amount)) throw new UsageError(`--extend ${key}=${raw} must be a whole number`);
    extend[stored] = (extend[stored] ?? 0) + amount;
  }
  if (Object.keys(extend).length === 0) throw new UsageError('--extend needs at least one key=value');
  return extend;
}

function durationMs(key: string, raw: string): number {
  if (/^[0-9]+$/.test(raw)) return Number(raw); // a bare number is milliseconds, as everywhere
  try {
    return parseDuration(raw);
  } catch {
    throw new UsageError(`--extend ${key}=${raw} must be a duration like 30s, 10m or 2h`);
  }
}

function describe(r: Resolution): string {
  const parts: string[] = [r.decision];
  if (r.answer !== undefined && r.decision !== 'answer') parts.push(`answer ${JSON.stringify(r.answer)}`);
  else if (r.answer !== undefined) parts.push(JSON.stringify(r.answer));
  if (r.extend) parts.push(`extend ${Object.entries(r.extend).map(([k, v]) => `${k}+${v}`).join(', ')}`);
  return `${parts.join(', ')} by ${r.by ?? '?'}`;
}
