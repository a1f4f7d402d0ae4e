import fs from 'node:fs/promises';
import type { HomePaths } from '../store/paths.js';

/**
 * 'daemon started' is logged once every definition is loaded, before
 * chokidar's first scan of the home (README.md, The home folder; Benchmark:
 * P4): with thousands of agents that scan was the larger half of start-up.
 * Until the scan is done a file written raises no event, so once the watcher
 * is ready the daemon looks again: it loads each agent folder that came or
 * went since the load listed agents/, and each one whose definition is not
 * the file the load read (one stat per agent); agentd.yaml is read again if
 * it changed; the inbox sweep that follows (daemon.ts pokeAgentsWithWork)
 * finds a task written meanwhile.
 */

/**
 * A change this close before the load began may be one the load did not see:
 * file times come from the kernel's coarse clock, a few milliseconds behind
 * the wall clock (a second write within that tick keeps the same mtime).
 */
export const CLOCK_TICK_MS = 50;

/** Stats made at once while looking again. */
const STAT_BATCH = 64;

/** Which definition file an agent had and its mtime and size: `agents/a/agent.yaml:1700000000000.5:61`; null: none. */
export type DefinitionIdentity = string | null;

/** Whole milliseconds, rounded: the load knows the mtime as the Date node made of it, which is rounded so. */
export function definitionIdentity(file: string, mtimeMs: number, size: number): string {
  return `${file}:${Math.round(mtimeMs)}:${size}`;
}

/** An agent's definition as it is now, and when it last changed (null when there is none). */
export interface DefinitionNow {
  identity: DefinitionIdentity;
  mtimeMs: number | null;
}

/**
 * The agents to load again: a folder listed now that the load did not read,
 * one it read that is gone, and one whose definition is another file, or
 * another mtime or size, than the load read, or changed within a clock tick
 * of the load's start (`sinceMs`). Pure.
 */
export function agentsToLoadAgain(listed: readonly string[], read: ReadonlyMap<string, DefinitionIdentity>, now: ReadonlyMap<string, DefinitionNow>, sinceMs: number): string[] {
  const again: string[] = [];
  const listedNow = new Set(listed);
  for (const name of listed) {
    const current = now.get(name);
    const changed = !read.has(name) || current === undefined || current.identity !== read.get(name) || (current.mtimeMs !== null && current.mtimeMs >= sinceMs - CLOCK_TICK_MS);
    if (changed) again.push(name);
  }
  for (const name of read.keys()) if (!listedNow.has(name)) again.push(name);
  return again;
}

async function definitionNow(paths: HomePaths, agent: string): Promise<DefinitionNow> {
  for (const candidate of paths.definitionCandidates(agent)) {
    const stat = await fs.stat(candidate).catch(() => null);
    if (stat) return { identity: definitionIdentity(paths.relative(candidate), stat.mtimeMs, stat.size), mtimeMs: stat.mtimeMs };
  }
  return { identity: null, mtimeMs: null };
}

/** Each agent's definition as it is now: one stat per agent (more when it has no agent.yaml), STAT_BATCH at once. */
export async function definitionsNow(paths: HomePaths, agents: readonly string[]): Promise<Map<string, DefinitionNow>> {
  const now = new Map<string, DefinitionNow>();
  for (let i = 0; i < agents.length; i += STAT_BATCH) {
    const batch = agents.slice(i, i + STAT_BATCH);
    const found = await Promise.all(batch.map((agent) => definitionNow(paths, agent)));
    batch.forEach((agent, j) => now.set(agent, found[j]!));
  }
  return now;
}

/** What identifies one version of a file without reading it; null when there is none. */
export type FileIdentity = string | null;

/**
 * agentd.yaml's candidates (agentd.yaml, .yml, .json), as they are now: taken
 * before the config is read, and compared once the watcher is ready. No time
 * slack here: a reload of the config is a full reload, and a test or a person
 * starting the daemon right after writing agentd.yaml must not get one.
 */
export async function daemonConfigIdentity(paths: HomePaths): Promise<FileIdentity[]> {
  return Promise.all(
    paths.daemonConfigCandidates().map(async (candidate) => {
      const stat = await fs.stat(candidate).catch(() => null);
      return stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}` : null;
    }),
  );
}

/** Pure: whether any candidate differs. */
export function sameFiles(before: readonly FileIdentity[], now: readonly FileIdentity[]): boolean {
  return before.length === now.length && before.every((identity, i) => identity === now[i]);
}
