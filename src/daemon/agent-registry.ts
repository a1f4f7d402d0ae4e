import { missingProviderKeys } from '../config/provider-auth.js';
import type { Logger } from 'pino';
import fs from 'node:fs/promises';
import { findDefinitionFile, loadAgentDefinition, type DefinitionFile } from '../config/agent-definition.js';
import { definitionIdentity, type DefinitionIdentity } from './start-catch-up.js';
import type { AgentDefinition, DaemonConfig } from '../config/types.js';
import { ConfigError, errorMessage } from '../errors.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../store/paths.js';
import { listDir } from '../store/durable.js';
import { newItemId, readOutbox, updateOutbox } from '../store/outbox.js';


/** Definitions read at once by loadAll. */
const LOAD_CONCURRENCY = 16;
/** How long after its last change a definition that fails to load is read again. */
const DEFINITION_QUIET_MS = 1000;

/** `openai/gpt-4o-latest`, `local/llama:latest`: ids whose meaning the provider changes over time. */
export function isModelAlias(model: string): boolean {
  const name = model.slice(model.indexOf('/') + 1).toLowerCase();
  return /(^|[-:_.])latest$/.test(name) || name === 'default';
}

/**
 * The agents the daemon knows: their last good definitions. A bad definition
 * never unloads a good one; it is logged with file and field and told to a
 * person through an outbox item `config_error`, which is closed again when
 * the definition is fixed.
 */
export class AgentRegistry {
  private readonly definitions = new Map<string, AgentDefinition>();

  /**
   * While loadAll runs: the agents that have an outbox folder, from one listing
   * of outbox/. Only they can hold a config_error item to close, so the others'
   * outbox.json is not read (a read per agent was 7% of start-up; README.md,
   * Benchmark: P4). Null otherwise: every load reads it.
   */
  private outboxFolders: Set<string> | null = null;

  /** From loadAll({ remember: true }) until takeReadAtLoad: agent → the definition file each load read. */
  private readAtLoad: Map<string, DefinitionIdentity> | null = null;

  /** One pending re-read per agent whose definition may have been read half-written. */
  private readonly rereads = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly paths: HomePaths,
    private config: DaemonConfig,
    private readonly log: Logger,
    private readonly now: () => Date,
    /** Told when a delayed re-read loaded a good definition. */
    private readonly onReloaded: (agent: string) => void = () => undefined,
  ) {}

  /** Cancel pending re-reads (daemon stop). */
  close(): void {
    for (const timer of this.rereads.values()) clearTimeout(timer);
    this.rereads.clear();
  }

  get(agent: string): AgentDefinition | undefined {
    return this.definitions.get(agent);
  }

  names(): string[] {
    return [...this.definitions.keys()];
  }

  get size(): number {
    return this.definitions.size;
  }

  setConfig(config: DaemonConfig): void {
    this.config = config;
  }

  /** Folder names under agents/ that may be agents. */
  async scanNames(): Promise<string[]> {
    const names: string[] = [];
    for (const name of await listDir(this.paths.agentsDir())) {
      if (name.startsWith('.')) continue;
      if (!isValidName(name) || isReservedAgentName(name)) {
        const problem = isValidName(name) ? 'is a name the daemon reserves in state/ (dead-letter, cache, *.json, *.jsonl, *.lock, *.owner, *.tmp)' : 'is not a valid agent name';
        this.log.error({ folder: `agents/${name}`, category: 'config_error', problem }, 'agent folder name is not allowed; skipped');
        continue;
      }
      names.push(name);
    }
    return names.sort();
  }

  /**
   * Load every agent folder; returns the names loaded. LOAD_CONCURRENCY at a
   * time: each load waits on a few file reads, and one at a time made start-up
   * with thousands of agents a queue of disk round trips (README.md, Benchmark: P4).
   */
  async loadAll(options: { remember?: boolean; sync?: boolean } = {}): Promise<string[]> {
    const present = new Set(await this.scanNames());
    const names = [...present];
    if (options.remember) this.readAtLoad = new Map();
    this.outboxFolders = new Set(await listDir(this.paths.outboxRoot()));
    let ok: boolean[];
    try {
      ok = await this.loadEach(names, { sync: options.sync === true });
    } finally {
      this.outboxFolders = null;
    }
    const loaded = names.filter((_, i) => ok[i]);
    for (const name of this.definitions.keys()) if (!present.has(name)) this.definitions.delete(name);
    return loaded;
  }

  /** (Re)load each of `names`, LOAD_CONCURRENCY at a time; whether each has a good definition afterwards. */
  async loadEach(names: readonly string[], options: { sync?: boolean; live?: boolean } = {}): Promise<boolean[]> {
    const ok = new Array<boolean>(names.length).fill(false);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        ok[i] = await this.load(names[i]!, options);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, names.length) }, worker));
    return ok;
  }

  /**
   * Each agent folder loadAll({ remember: true }) listed, and the definition
   * file read there since; once (daemon/start-catch-up.ts compares them with a
   * later look).
   */
  takeReadAtLoad(): ReadonlyMap<string, DefinitionIdentity> {
    const read = this.readAtLoad ?? new Map<string, DefinitionIdentity>();
    this.readAtLoad = null;
    return read;
  }

  /**
   * (Re)load one agent. True when a good definition is in place afterwards.
   * `live`: told by the watcher that the file changed. A definition that
   * then fails within a second of its change is read again once it settles
   * (rereadIfFresh) and only reported if it fails then: a file caught
   * mid-save (`cat > agent.yaml`, an editor's truncate) is not a mistake.
   */
  async load(agent: string, options: { sync?: boolean; live?: boolean } = {}): Promise<boolean> {
    try {
      const readAtLoad = this.readAtLoad;
      const onRead = readAtLoad ? (found: DefinitionFile | null) => readAtLoad.set(agent, found && definitionIdentity(this.paths.relative(found.file), found.mtimeMs, found.bytes.length)) : undefined;
      const definition = await loadAgentDefinition(this.paths, this.config, agent, { onRead, sync: options.sync === true });
      if (!definition) {
        this.definitions.delete(agent);
        return false;
      }
      const missingKeys = missingProviderKeys(this.config, definition);
      if (missingKeys.length > 0) throw new ConfigError(definition.file, missingKeys, { category: 'auth' });
      const previous = this.definitions.get(agent);
      this.definitions.set(agent, definition);
      if (!previous || previous.hash !== definition.hash) {
        this.log.info({ agent, version: definition.version, file: definition.file }, 'agent definition loaded');
        const aliases = [definition.model, ...definition.fallbackModels].filter((m): m is string => m !== null && isModelAlias(m));
        if (aliases.length > 0) this.log.warn({ agent, models: aliases }, 'model id is an alias that can change under you; pin a version');
      }
      await this.closeConfigErrors(agent);
      return true;
    } catch (err) {
      const message = errorMessage(err);
      const kept = this.definitions.has(agent);
      if ((await this.rereadIfFresh(agent)) && options.live) {
        this.log.info({ agent, problem: message, kept_previous: kept }, 'agent definition not loadable yet; read again once it settles');
        return kept;
      }
      const category = err instanceof ConfigError && err.category === 'auth' ? 'auth' : null;
      this.log.error({ agent, problem: message, kept_previous: kept, ...(category ? { category } : {}) }, 'agent definition rejected');
      if (err instanceof ConfigError) await this.reportConfigError(agent, message, kept, category);
      return kept;
    }
  }

  /**
   * An editor that truncates and then writes can be read in between, and the
   * second write's event may be folded into the first: a definition that fails
   * within a second of its last change is read once more after that second.
   */
  private async rereadIfFresh(agent: string): Promise<boolean> {
    if (this.rereads.has(agent)) return true; // a re-read is already due
    const found = await findDefinitionFile(this.paths, agent).catch(() => null);
    if (!found) return false;
    const { mtimeMs } = await fs.stat(found.file).catch(() => ({ mtimeMs: 0 }));
    const waitMs = Math.min(DEFINITION_QUIET_MS, mtimeMs + DEFINITION_QUIET_MS - this.now().getTime()); // a clock behind the file's waits no longer
    if (waitMs <= 0) return false;
    const timer = setTimeout(() => {
      this.rereads.delete(agent);
      this.load(agent)
        .then((ok) => ok && this.onReloaded(agent))
        .catch((err: unknown) => this.log.error({ agent, err }, 'definition re-read failed'));
    }, waitMs + 50);
    timer.unref();
    this.rereads.set(agent, timer);
    return true;
  }

  private async reportConfigError(agent: string, message: string, kept: boolean, category: 'auth' | null): Promise<void> {
    const reason = kept ? `${message}\n(the last good definition stays in use)` : message;
    try {
      await updateOutbox(this.paths, agent, (outbox) => {
        const open = outbox.items.find((i) => i.kind === 'config_error' && i.status === 'open');
        if (open?.reason === reason) return;
        if (open) {
          open.reason = reason; // one open config_error per agent, always the latest problem
          open.created_at = this.now().toISOString();
          return;
        }
        outbox.items.push({
          id: newItemId(agent),
          kind: 'config_error',
          agent,
          task_id: null,
          run_id: null,
          created_at: this.now().toISOString(),
          reason,
          question: category === 'auth' ? 'Set the key in the daemon\'s environment and restart it; this item closes itself when the agent loads.' : 'Fix the definition; this item closes itself when it loads.',
          ...(category ? { details: { category } } : {}),
          status: 'open',
        });
      });
    } catch (err) {
      this.log.error({ agent, err }, 'could not write the config_error outbox item');
    }
  }

  private async closeConfigErrors(agent: string): Promise<void> {
    if (this.outboxFolders && !this.outboxFolders.has(agent)) return;
    try {
      const { items } = await readOutbox(this.paths, agent);
      if (!items.some((i) => i.kind === 'config_error' && i.status === 'open')) return;
      await updateOutbox(this.paths, agent, (outbox) => {
        for (const item of outbox.items) {
          if (item.kind !== 'config_error' || item.status !== 'open') continue;
          item.status = 'resolved';
          item.resolution = { decision: 'continue', answer: 'the definition loads now', by: 'agentd', at: this.now().toISOString() };
          item.delivered_at = this.now().toISOString();
        }
      });
    } catch (err) {
      this.log.warn({ agent, err }, 'could not close config_error items');
    }
  }
}
