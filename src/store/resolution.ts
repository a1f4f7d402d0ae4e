import type { BudgetLimits } from '../config/types.js';
import { parseDuration } from '../config/duration.js';
import { AlreadyResolvedError, NotFoundError, UsageError } from '../errors.js';
import { extendKey } from '../run/budget.js';
import { agentOfItemId, readAllOutboxes, resolveOutboxItem, type Decision, type OutboxItem, type OutboxKind, type Resolution } from './outbox.js';
import { assertName, type HomePaths } from './paths.js';

/**
 * Deciding an outbox item (README "The outbox"): the one code path behind
 * `agentd resolve` and the console's buttons, so both write exactly the same
 * resolution `{decision, answer?, extend?, by, at}`.
 */

/** What a person asked for, before it is checked. */
export interface ResolveRequest {
  decision: Decision;
  answer?: string;
  /** `steps=20,cost_usd=1.5,runtime=10m`, as `--extend` takes it. */
  extend?: string;
  by: string;
}

export type ResolveOutcome = { kind: 'resolved'; item: OutboxItem } | { kind: 'already_resolved'; item: OutboxItem };

/** The keys a resolution stores, as the protocol's budget names them. */
const STORED_KEY: Partial<Record<keyof BudgetLimits, string>> = {
  steps: 'steps',
  toolCalls: 'tool_calls',
  tokens: 'tokens',
  costUsd: 'cost_usd',
  runtimeMs: 'runtime_ms',
};

/**
 * The decisions that mean something for each kind, in the order a person
 * would consider them (README "The outbox"). `answer` passes text to the agent.
 */
const DECISIONS: Record<OutboxKind, Decision[]> = {
  uncertain: ['answer', 'continue', 'cancel'],
  approval: ['approve', 'deny', 'cancel'],
  limit: ['continue', 'cancel'],
  stale_task: ['continue', 'cancel'],
  stale_context: ['continue', 'retry', 'cancel'],
  unsure_side_effect: ['approve', 'retry', 'cancel'],
  provider_unavailable: ['retry', 'cancel'],
  journal_lost: ['continue'],
  config_error: ['continue', 'cancel'],
  budget_alert: ['continue', 'cancel'],
  suspected_injection: ['continue', 'cancel'],
};

export function decisionsFor(kind: OutboxKind): Decision[] {
  return DECISIONS[kind] ?? ['continue', 'cancel'];
}

/** A checked resolution with `by` and `at`. Pure apart from `now`. Throws UsageError. */
export function buildResolution(request: ResolveRequest, now: Date): Resolution {
  const resolution: Resolution = { decision: request.decision };
  if (request.answer !== undefined) resolution.answer = request.answer;
  if (request.extend !== undefined) resolution.extend = parseExtend(request.extend);
  const by = request.by.trim();
  if (by === '' || by.length > 200) throw new UsageError('"by" must name who decided, in 1 to 200 characters');
  resolution.by = by;
  resolution.at = now.toISOString();
  return resolution;
}

/**
 * Resolve an open item. An item someone else resolved first (before or
 * during our write) is reported as already resolved, not overwritten.
 * Throws NotFoundError, UsageError, BadNameError or ConfigError.
 */
export async function resolveItem(paths: HomePaths, itemId: string, request: ResolveRequest, now = new Date()): Promise<ResolveOutcome> {
  // `<agent>:<hex>`: the agent part names a folder, so it must be a name, never a path.
  const owner = agentOfItemId(itemId);
  if (owner !== null) assertName(owner, 'agent name');
  const resolution = buildResolution(request, now);
  const { items, problems } = await readAllOutboxes(paths);
  const found = items.find((i) => i.id === itemId);
  if (!found) throw new NotFoundError([`no outbox item ${itemId} (agentd outbox --all lists them)`, ...problems].join('\n'));
  if (found.status !== 'open') return { kind: 'already_resolved', item: found };
  try {
    return { kind: 'resolved', item: await resolveOutboxItem(paths, itemId, resolution) };
  } catch (err) {
    // Someone resolved it between our read and our write: report who, from the file.
    if (!(err instanceof AlreadyResolvedError)) throw err;
    const resolved = await resolvedMeanwhile(paths, itemId);
    if (!resolved) throw err;
    return { kind: 'already_resolved', item: resolved };
  }
}

/** The item someone resolved meanwhile, read again for who and when. */
async function resolvedMeanwhile(paths: HomePaths, itemId: string): Promise<OutboxItem | null> {
  const { items } = await readAllOutboxes(paths);
  const item = items.find((i) => i.id === itemId);
  return item && item.status !== 'open' ? item : null;
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

/** `answer "use 120", extend steps+20 by alice`: one line for a terminal or a log. */
export function describeResolution(r: Resolution): string {
  const parts: string[] = [r.decision];
  if (r.answer !== undefined && r.decision !== 'answer') parts.push(`answer ${JSON.stringify(r.answer)}`);
  else if (r.answer !== undefined) parts.push(JSON.stringify(r.answer));
  if (r.extend) parts.push(`extend ${Object.entries(r.extend).map(([k, v]) => `${k}+${v}`).join(', ')}`);
  return `${parts.join(', ')} by ${r.by ?? '?'}`;
}
