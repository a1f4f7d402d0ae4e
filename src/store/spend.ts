import type { HomePaths } from './paths.js';
import { readIfExists } from './durable.js';
import { replaceStateJson } from './state-file.js';

/** An agent's spend on one UTC day, for `daily_cost_usd`. */
export interface DailySpend {
  v: 1;
  day: string;
  cost_usd: number;
}

export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export async function readDailySpend(paths: HomePaths, agent: string, now: Date): Promise<number> {
  const bytes = await readIfExists(paths.dailySpend(agent));
  if (!bytes) return 0;
  try {
    const spend = JSON.parse(bytes.toString('utf8')) as DailySpend;
    return spend.day === utcDay(now) ? spend.cost_usd : 0;
  } catch {
    return 0;
  }
}

export async function addDailySpend(paths: HomePaths, agent: string, now: Date, costUsd: number): Promise<number> {
  if (costUsd <= 0) return readDailySpend(paths, agent, now);
  const total = (await readDailySpend(paths, agent, now)) + costUsd;
  await replaceStateJson(paths.dailySpend(agent), { v: 1, day: utcDay(now), cost_usd: total } satisfies DailySpend);
  return total;
}
