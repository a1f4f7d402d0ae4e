import path from 'node:path';
import { BadNameError } from '../errors.js';

/** Agent names and task ids: the only names ever joined into a path. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && name !== '.' && name !== '..';
}

/** Throws BadNameError unless `name` is a safe agent name or task id. */
export function assertName(name: string, what: 'agent name' | 'task id'): string {
  if (typeof name !== 'string' || !isValidName(name)) {
    throw new BadNameError(what, String(name));
  }
  if (what === 'agent name' && isReservedAgentName(name)) {
    throw new BadNameError(what, name, 'is reserved: state/ uses it');
  }
  return name;
}

/**
 * Names the daemon uses in state/ beside the agents' folders: dead-letter/,
 * cache/, daemon.json, audit.jsonl, audit.head.jsonl (audit.head.json in older homes), the lock folders
 * <agent>.lock and owner files <agent>.owner, and any file it may add there
 * (every name ending in .json or .jsonl), so an agent folder can never turn
 * one of those files into a folder.
 */
export function isReservedAgentName(name: string): boolean {
  return name === 'dead-letter' || name === 'cache' || /\.(json|jsonl|lock|owner|tmp)$/.test(name);
}

/**
 * The one place that knows the layout of a home folder (README "The home folder").
 * Every method that takes a name validates it, so nothing outside the home can
 * be reached through an agent name or a task id.
 */
export class HomePaths {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** A path relative to the home, for messages a person reads. */
  relative(p: string): string {
    return path.relative(this.root, p) || '.';
  }

  /** `<home>/node_modules/agentd`: where an agent's `import 'agentd/sdk'` resolves (README "Install"). */
  sdkLink(): string {
    return path.join(this.root, 'node_modules', 'agentd');
  }

  /** `<home>/package.json`: an eval case home declares its module type here (eval/sandbox.ts). */
  packageManifest(): string {
    return path.join(this.root, 'package.json');
  }

  daemonConfigCandidates(): string[] {
    return [path.join(this.root, 'agentd.yaml'), path.join(this.root, 'agentd.yml'), path.join(this.root, 'agentd.json')];
  }

  /**
   * A file named in a config (a schema, a mock script), resolved inside `base`:
   * a relative path without `..` segments, or BadNameError. (Symlinks along it
   * are checked when it is read: store/home-file.ts.)
   */
  inside(base: string, relativePath: string): string {
    if (path.isAbsolute(relativePath) || relativePath.split(/[\\/]/).includes('..')) {
      throw new BadNameError('path', relativePath, 'must be a relative path without ".." segments');
    }
    const resolved = path.resolve(base, relativePath);
    const rel = path.relative(this.root, resolved);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new BadNameError('path', relativePath);
    }
    return resolved;
  }

  // agents/ — written by people
  agentsDir(): string {
    return path.join(this.root, 'agents');
  }
  agentDir(agent: string): string {
    return path.join(this.root, 'agents', assertName(agent, 'agent name'));
  }
  definitionCandidates(agent: string): string[] {
    const dir = this.agentDir(agent);
    return [path.join(dir, 'agent.yaml'), path.join(dir, 'agent.yml'), path.join(dir, 'agent.json')];
  }
  currentTask(agent: string): string {
    return path.join(this.agentDir(agent), 'current-task.json');
  }
  contextSnapshot(agent: string): string {
    return path.join(this.agentDir(agent), 'context-snapshot.json');
  }
  inboxDir(agent: string): string {
    return path.join(this.agentDir(agent), 'inbox');
  }
  inboxTask(agent: string, taskId: string): string {
    return path.join(this.inboxDir(agent), `${assertName(taskId, 'task id')}.json`);
  }
  /** An entry of the inbox by its file name as listed (which a person chose, so not necessarily a task id). */
  inboxEntry(agent: string, fileName: string): string {
    if (fileName !== path.basename(fileName) || fileName === '..' || fileName === '.') throw new BadNameError('path', fileName, 'must be a file name in the inbox');
    return path.join(this.inboxDir(agent), fileName);
  }
  evalsDir(agent: string): string {
    return path.join(this.agentDir(agent), 'evals');
  }

  // outbox/ — written by the daemon for people
  outboxRoot(): string {
    return path.join(this.root, 'outbox');
  }
  outboxDir(agent: string): string {
    return path.join(this.root, 'outbox', assertName(agent, 'agent name'));
  }
  outboxFile(agent: string): string {
    return path.join(this.outboxDir(agent), 'outbox.json');
  }
  handoffFile(agent: string): string {
    return path.join(this.outboxDir(agent), 'handoff.json');
  }

  // state/ — the daemon's own
  stateRoot(): string {
    return path.join(this.root, 'state');
  }
  stateDir(agent: string): string {
    return path.join(this.root, 'state', assertName(agent, 'agent name'));
  }
  /** state/<agent>/pids/: one file per process group, as daemons before pids.jsonl wrote them (store/process-registry.ts). */
  pidsDir(agent: string): string {
    return path.join(this.stateDir(agent), 'pids');
  }
  /** state/<agent>/pids.jsonl: the process groups of runs in progress (store/process-registry.ts). */
  processRegistry(agent: string): string {
    return path.join(this.stateDir(agent), 'pids.jsonl');
  }
  checkpoint(agent: string): string {
    return path.join(this.stateDir(agent), 'checkpoint.json');
  }
  journalDir(agent: string): string {
    return path.join(this.stateDir(agent), 'journal');
  }
  journal(agent: string, taskId: string): string {
    return path.join(this.journalDir(agent), `${assertName(taskId, 'task id')}.jsonl`);
  }
  history(agent: string): string {
    return path.join(this.stateDir(agent), 'history.jsonl');
  }
  /** One line per `agentd eval` of the agent: pass rates, for the regression check. */
  evalsLog(agent: string): string {
    return path.join(this.stateDir(agent), 'evals.jsonl');
  }
  doneDir(agent: string): string {
    return path.join(this.stateDir(agent), 'done');
  }
  done(agent: string, taskId: string): string {
    return path.join(this.doneDir(agent), `${assertName(taskId, 'task id')}.json`);
  }
  tracesDir(agent: string): string {
    return path.join(this.stateDir(agent), 'traces');
  }
  trace(agent: string, runId: string): string {
    return path.join(this.tracesDir(agent), `${assertName(runId, 'task id')}.jsonl`);
  }
  scheduleState(agent: string): string {
    return path.join(this.stateDir(agent), 'schedule.json');
  }
  /** One file per scheduled fire, created exclusively: of several daemons on one home only one writes a due time's task. */
  fireRecord(agent: string, taskId: string): string {
    return path.join(this.stateDir(agent), 'fires', `${assertName(taskId, 'task id')}.json`);
  }
  firesDir(agent: string): string {
    return path.join(this.stateDir(agent), 'fires');
  }
  dailySpend(agent: string): string {
    return path.join(this.stateDir(agent), 'daily-spend.json');
  }
  deadLetterRoot(): string {
    return path.join(this.root, 'state', 'dead-letter');
  }
  deadLetterDir(agent: string): string {
    return path.join(this.deadLetterRoot(), assertName(agent, 'agent name'));
  }
  deadLetter(agent: string, taskId: string): string {
    return path.join(this.deadLetterDir(agent), `${assertName(taskId, 'task id')}.json`);
  }
  /** The malformed task file itself, kept beside its dead-letter record (store/dead-letter-raw.ts). */
  deadLetterRaw(agent: string, taskId: string): string {
    return path.join(this.deadLetterDir(agent), `${assertName(taskId, 'task id')}.raw`);
  }
  cacheDir(): string {
    return path.join(this.root, 'state', 'cache');
  }
  /** One cached model response, by its key (model/cache.ts). */
  cacheEntry(key: string): string {
    return path.join(this.cacheDir(), `${assertName(key, 'task id')}.json`);
  }
  /** The audit head log: one line per audit line, its seq and hash; the last is where the next line chains on (observe/audit.ts). */
  auditHeadLog(): string {
    return path.join(this.root, 'state', 'audit.head.jsonl');
  }
  /** The head as a replaced file, which homes written before the head log have; read only while no head log exists. */
  auditHead(): string {
    return path.join(this.root, 'state', 'audit.head.json');
  }
  audit(): string {
    return path.join(this.root, 'state', 'audit.jsonl');
  }
  /** Every notification attempt and delivery (README "Notifications"). */
  notifyLog(): string {
    return path.join(this.root, 'state', 'notify.jsonl');
  }
  /** The console's access token (README "Console"), mode 0600. */
  consoleToken(): string {
    return path.join(this.root, 'state', 'console.token');
  }
  /** The running daemon's status snapshot, for `agentd status`. */
  daemonStatus(): string {
    return path.join(this.root, 'state', 'daemon.json');
  }
  /** A scratch file /healthz writes and removes to prove the home is writable; a dot name no agent can have. */
  healthProbe(pid: number): string {
    return path.join(this.root, 'state', `.healthz-${pid}`);
  }
}

/**
 * What a path under the home is, in the layout above: the watcher asks this
 * rather than knowing the layout itself. `hidden`: some part of the path
 * starts with a dot (temp files, locks). Pure.
 */
export type HomePlace = { hidden: boolean } & (
  | { kind: 'home' }
  | { kind: 'daemon_config' }
  /** Anything else at the top level, in state/, or outside the home. */
  | { kind: 'other' }
  | { kind: 'agents_root' }
  | { kind: 'outbox_root' }
  /** agents/<agent>: where the agent's folder is. */
  | { kind: 'agent_folder'; agent: string }
  | { kind: 'definition'; agent: string }
  | { kind: 'current_task'; agent: string }
  | { kind: 'context_snapshot'; agent: string }
  | { kind: 'inbox_folder'; agent: string }
  /** Any other entry directly in the agent's folder. */
  | { kind: 'agent_entry'; agent: string }
  /** agents/<agent>/inbox/<name>, whatever the name. */
  | { kind: 'inbox_entry'; agent: string; name: string; task: boolean }
  /** Deeper than the inbox's entries, or under another entry of the agent folder. */
  | { kind: 'agent_deep'; agent: string }
  | { kind: 'outbox_folder'; agent: string }
  | { kind: 'outbox_file'; agent: string }
  /** Anything else in outbox/<agent>/ or deeper. */
  | { kind: 'outbox_other'; agent: string }
);

const DAEMON_CONFIG_NAME = /^agentd\.(ya?ml|json)$/;
const DEFINITION_NAME = /^agent\.(ya?ml|json)$/;

export function homePlace(paths: HomePaths, file: string): HomePlace {
  const rel = path.relative(paths.root, file).split(path.sep);
  const hidden = rel.some((part) => part.startsWith('.'));
  const [top, agent, name, entry] = rel as [string, string | undefined, string | undefined, string | undefined];
  if (top === '') return { hidden, kind: 'home' };
  if (rel.length === 1) {
    if (DAEMON_CONFIG_NAME.test(top)) return { hidden, kind: 'daemon_config' };
    if (top === 'agents') return { hidden, kind: 'agents_root' };
    if (top === 'outbox') return { hidden, kind: 'outbox_root' };
    return { hidden, kind: 'other' };
  }
  if (top === 'agents') {
    if (rel.length === 2) return { hidden, kind: 'agent_folder', agent: agent! };
    if (rel.length === 3) return { hidden, agent: agent!, ...agentEntry(name!) };
    if (rel.length === 4 && name === 'inbox') return { hidden, kind: 'inbox_entry', agent: agent!, name: entry!, task: entry!.endsWith('.json') };
    return { hidden, kind: 'agent_deep', agent: agent! };
  }
  if (top === 'outbox') {
    if (rel.length === 2) return { hidden, kind: 'outbox_folder', agent: agent! };
    if (rel.length === 3 && name === 'outbox.json') return { hidden, kind: 'outbox_file', agent: agent! };
    return { hidden, kind: 'outbox_other', agent: agent! };
  }
  return { hidden, kind: 'other' };
}

function agentEntry(name: string): { kind: 'definition' | 'current_task' | 'context_snapshot' | 'inbox_folder' | 'agent_entry' } {
  if (DEFINITION_NAME.test(name)) return { kind: 'definition' };
  if (name === 'current-task.json') return { kind: 'current_task' };
  if (name === 'context-snapshot.json') return { kind: 'context_snapshot' };
  if (name === 'inbox') return { kind: 'inbox_folder' };
  return { kind: 'agent_entry' };
}

