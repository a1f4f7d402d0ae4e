/**
 * The order an agent's inbox is promoted in (README "The home folder"), pure
 * so that it is tested without a disk: higher priority first, then older,
 * then by id, so that two tasks never tie and every host picks the same one.
 */
export interface OrderedTask {
  id: string;
  created_at: string;
  priority?: number;
}

export function compareForPromotion(a: OrderedTask, b: OrderedTask): number {
  const byPriority = (b.priority ?? 0) - (a.priority ?? 0);
  if (byPriority !== 0) return byPriority;
  const byAge = Date.parse(a.created_at) - Date.parse(b.created_at);
  if (byAge !== 0) return byAge;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Deep equality of two tasks as JSON whatever their key order, for telling a leftover copy from a new task. */
export function sameTask(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}
