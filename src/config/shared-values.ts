/**
 * One copy of each plain value that many definitions hold alike: most agents'
 * budget, freshness, retry and confinement are agentd.yaml's defaults, and
 * their lists (env, models, schedule) are empty or the same. With 10,000
 * agents a copy each was tens of megabytes (README.md, Benchmark: P4).
 * A definition's values are never changed after it is resolved (a task's
 * lower budget is a new object), so sharing them is safe.
 */

/** How many distinct values are remembered; past it, values are kept as they are. */
const MAX_SHARED = 1024;

const byText = new Map<string, unknown>();

/** Tells apart what JSON would not: Infinity and null, undefined and a missing key. */
function keyOf(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v === undefined ? '\u0000undefined' : typeof v === 'number' && !Number.isFinite(v) ? `\u0000${String(v)}` : v));
}

/** `value`, or an equal one handed out before. Only for plain data (no functions, no class instances). */
export function shared<T>(value: T): T {
  const key = keyOf(value);
  if (byText.has(key)) return byText.get(key) as T;
  if (byText.size < MAX_SHARED) byText.set(key, value);
  return value;
}
