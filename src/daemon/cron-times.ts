import { createTask, parse, validateDetailed } from 'node-cron';

/**
 * When a cron expression fires, computed from node-cron's own parser and
 * matcher so the times agree with the jobs node-cron runs. node-cron only
 * answers "what comes after now" from the real clock, so the walk over a span
 * of time is ours: it filters days, hours, minutes and seconds with the parsed
 * fields and lets node-cron's `match` have the last word (it knows `L`, `W`,
 * `#` and daylight-saving time). Times are in the daemon's local time zone
 * (`TZ`), as node-cron's jobs without a `timezone` option are.
 */

/** Null when node-cron accepts `cron`, else why not, in a person's words. */
export function cronProblem(cron: string): string | null {
  const detail = validateDetailed(cron);
  if (detail.valid) return null;
  return detail.errors.map((e) => e.message).join('; ') || 'is not a valid cron expression';
}

/**
 * The fire times of `cron` after `after` (exclusive) up to `until`
 * (inclusive), oldest first, at most `limit` of them. Pure apart from the
 * local time zone. Throws on an invalid expression (see `cronProblem`).
 */
export function fireTimes(cron: string, after: Date, until: Date, limit = 1000): Date[] {
  const fields = parse(cron);
  const seconds = [...fields.second].sort((a, b) => a - b);
  const minutes = [...fields.minute].sort((a, b) => a - b);
  const hours = [...fields.hour].sort((a, b) => a - b);
  const months = new Set(fields.month);
  // Day fields with L, W or # are left to node-cron's matcher, asked once per day.
  const numericDays = fields.dayOfMonth.every((d) => typeof d === 'number') && fields.dayOfWeek.every((d) => typeof d === 'number');
  const daysOfMonth = new Set(fields.dayOfMonth);
  const daysOfWeek = new Set(fields.dayOfWeek.map((d) => (d === 7 ? 0 : d)));
  const matcher = createTask(cron, () => undefined);
  try {
    const out: Date[] = [];
    let day = new Date(after.getFullYear(), after.getMonth(), after.getDate());
    while (day.getTime() <= until.getTime() && out.length < limit) {
      if (!months.has(day.getMonth() + 1)) {
        day = new Date(day.getFullYear(), day.getMonth() + 1, 1);
        continue;
      }
      const firstOfDay = new Date(day.getFullYear(), day.getMonth(), day.getDate(), hours[0] ?? 0, minutes[0] ?? 0, seconds[0] ?? 0);
      const dayMatches = numericDays ? daysOfMonth.has(day.getDate()) && daysOfWeek.has(day.getDay()) : matcher.match(firstOfDay);
      if (dayMatches) {
        for (const h of hours) {
          for (const m of minutes) {
            for (const s of seconds) {
              const at = new Date(day.getFullYear(), day.getMonth(), day.getDate(), h, m, s);
              if (at.getTime() > until.getTime() || out.length >= limit) return out;
              const last = out[out.length - 1];
              // A local time that does not exist (spring forward) shifts; never count a time twice.
              if (at.getTime() <= after.getTime() || (last && at.getTime() <= last.getTime())) continue;
              if (matcher.match(at)) out.push(at);
            }
          }
        }
      }
      day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1);
    }
    return out;
  } finally {
    void matcher.destroy(); // createTask registers the task with node-cron; never started, so nothing runs
  }
}
