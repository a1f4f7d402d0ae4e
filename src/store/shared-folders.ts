import fs from 'node:fs/promises';
import path from 'node:path';
import { isReservedAgentName, isValidName, type HomePaths } from './paths.js';
import { listDir } from './durable.js';
import { plainBelowHome } from './plain-path.js';

/**
 * Two agents must not share an inbox (README.md, "The home folder"): each would
 * promote the same task files and some tasks would run twice. A symlink inside
 * the home can make agents/b/inbox (or all of agents/b) the same folder as
 * agents/a's. The agent whose folder is the real one keeps working; the one
 * that reaches it through a link is refused.
 */
export async function sharedInboxProblem(paths: HomePaths, agent: string): Promise<string | null> {
  if (await plainBelowHome(paths, paths.inboxDir(agent))) return null; // no link on the way (checked part by part, without realpath)
  const mine = await folderIds(paths, agent);
  if (!mine || isPlainFolder(mine, await real(paths.agentsDir()), agent)) return null; // no link on the way: nobody else can be this folder's owner
  for (const other of await listDir(paths.agentsDir())) {
    if (other === agent || !isValidName(other) || isReservedAgentName(other)) continue;
    const theirs = await folderIds(paths, other);
    if (!theirs) continue;
    if (theirs.agentDir === mine.agentDir) return `is the same folder as agents/${other} (through a symlink); two agents must not share a folder`;
    if (theirs.inbox !== null && theirs.inbox === mine.inbox) return `inbox is the same folder as agents/${other}/inbox (through a symlink); two agents must not share an inbox`;
  }
  return null;
}

interface FolderIds {
  agentDir: string;
  /** Null when the agent has no inbox folder yet. */
  inbox: string | null;
}

/** Pure: the agent's folder and inbox are where their names say, with no link on the way. */
export function isPlainFolder(ids: FolderIds, realAgentsDir: string | null, agent: string): boolean {
  if (realAgentsDir === null) return false;
  const agentDir = path.join(realAgentsDir, agent);
  return ids.agentDir === agentDir && (ids.inbox === null || ids.inbox === path.join(agentDir, 'inbox'));
}

async function folderIds(paths: HomePaths, agent: string): Promise<FolderIds | null> {
  const agentDir = await real(paths.agentDir(agent));
  if (agentDir === null) return null;
  return { agentDir, inbox: await real(paths.inboxDir(agent)) };
}

async function real(p: string): Promise<string | null> {
  return fs.realpath(p).catch(() => null);
}
