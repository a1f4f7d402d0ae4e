import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findDefinitionFile } from '../config/agent-definition.js';
import { parseDocument } from '../config/document.js';
import type { AgentDefinition, DaemonConfig } from '../config/types.js';
import { readIfExists } from '../store/durable.js';
import { HomePaths } from '../store/paths.js';
import { linkSdk } from '../store/sdk-link.js';

/**
 * Throw-away homes for eval cases. One temp folder per `agentd eval`; each
 * case run gets a home inside it with a copy of the agent, the daemon config
 * and the files they name, and nothing of the real home's state or outbox.
 */

/** What a case home copies of the agent folder: not its queue, its current task, its saved context or its golden sets. */
function leftOut(home: HomePaths, agent: string): Set<string> {
  return new Set([home.inboxDir(agent), home.currentTask(agent), home.contextSnapshot(agent), home.evalsDir(agent)].map((p) => path.basename(p)));
}

export interface EvalSandbox {
  /** The temp folder holding every case home. */
  root: string;
  /** Files of the real home (absolute) that the agent names outside its folder, copied into every case home. */
  referenced: string[];
  /** The nearest package.json scope above the agent folder declares ESM (`"type": "module"`). */
  packageType: string | null;
}

/**
 * The temp folder, with `node_modules` linking what the agent folder can import
 * in the real home: the packages of every node_modules above it, and the
 * package the real home itself is (so `import 'agentd/sdk'` in the bundled
 * examples resolves in a home under /tmp as it does in the repository).
 */
export async function createSandbox(real: HomePaths, config: DaemonConfig, agent: AgentDefinition): Promise<EvalSandbox> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `agentd-eval-${agent.name}-`));
  const modules = path.join(root, 'node_modules');
  await fs.mkdir(modules);
  let packageType: string | null = null;
  let scopeFound = false;
  for (const dir of ancestors(agent.dir)) {
    if (!scopeFound) {
      const pkg = await readPackageJson(dir);
      if (pkg) {
        scopeFound = true;
        // The agent folder's own package.json is copied with it; one above it is stood in for by its "type".
        if (dir !== agent.dir) packageType = typeof pkg.type === 'string' ? pkg.type : null;
        if (dir !== agent.dir && typeof pkg.name === 'string' && pkg.exports !== undefined) await link(modules, pkg.name, dir);
      }
    }
    const nodeModules = path.join(dir, 'node_modules');
    for (const entry of await fs.readdir(nodeModules).catch(() => [])) {
      if (entry.startsWith('.')) continue;
      if (!entry.startsWith('@')) await link(modules, entry, path.join(nodeModules, entry));
      else for (const scoped of await fs.readdir(path.join(nodeModules, entry)).catch(() => [])) await link(modules, `${entry}/${scoped}`, path.join(nodeModules, entry, scoped));
    }
  }
  // The home's own node_modules may be gone (a fresh `npm ci` in the clone): the SDK is linked regardless.
  await linkSdk(modules);
  return { root, referenced: await referencedFiles(real, config, agent), packageType };
}

/** A new case home in the sandbox, ready for its task. */
export async function createCaseHome(sandbox: EvalSandbox, real: HomePaths, agent: AgentDefinition, label: string): Promise<HomePaths> {
  const home = new HomePaths(path.join(sandbox.root, label));
  await fs.mkdir(home.agentsDir(), { recursive: true });
  const configs = home.daemonConfigCandidates();
  for (const [i, candidate] of real.daemonConfigCandidates().entries()) {
    const bytes = await readIfExists(candidate);
    if (bytes) await fs.writeFile(configs[i]!, bytes);
  }
  const target = home.agentDir(agent.name);
  await fs.mkdir(target);
  const skipped = leftOut(real, agent.name);
  for (const entry of await fs.readdir(agent.dir)) {
    if (skipped.has(entry)) continue;
    const from = path.join(agent.dir, entry);
    // An agent's own dependencies are linked, not copied: they are code, not state.
    if (entry === 'node_modules') await fs.symlink(from, path.join(target, entry));
    else await fs.cp(from, path.join(target, entry), { recursive: true, verbatimSymlinks: true });
  }
  for (const file of sandbox.referenced) {
    const copy = home.inside(home.root, real.relative(file));
    await fs.mkdir(path.dirname(copy), { recursive: true });
    await fs.copyFile(file, copy);
  }
  if (sandbox.packageType) await fs.writeFile(home.packageManifest(), JSON.stringify({ private: true, type: sandbox.packageType }) + '\n');
  return home;
}

/**
 * Files inside the real home but outside the agent folder that the agent
 * depends on: its output_schema file, the scripts its command, tools and
 * context_refresh name (relative to the agent folder, where they run), and
 * the mock providers' script files.
 */
async function referencedFiles(real: HomePaths, config: DaemonConfig, agent: AgentDefinition): Promise<string[]> {
  const candidates: string[] = [];
  const fromAgentDir = (arg: string) => {
    if (!arg.startsWith('-') && !path.isAbsolute(arg)) candidates.push(path.resolve(agent.dir, arg));
  };
  for (const arg of agent.command ?? []) fromAgentDir(arg);
  for (const arg of agent.freshness.contextRefresh ?? []) fromAgentDir(arg);
  for (const tool of Object.values(agent.tools)) for (const arg of tool.command) fromAgentDir(arg);
  const found = await findDefinitionFile(real, agent.name);
  if (found) {
    const raw = parseDocument(real.relative(found.file), found.bytes.toString('utf8')) as { output_schema?: unknown };
    if (typeof raw.output_schema === 'string') fromAgentDir(raw.output_schema);
  }
  for (const provider of Object.values(config.providers)) if (provider.script) candidates.push(provider.script);

  const files = new Set<string>();
  for (const file of candidates) {
    const inHome = !real.relative(file).startsWith('..') && !path.isAbsolute(real.relative(file));
    const inAgent = !path.relative(agent.dir, file).startsWith('..');
    if (!inHome || inAgent) continue;
    const stat = await fs.stat(file).catch(() => null);
    if (stat?.isFile()) files.add(file);
  }
  return [...files];
}

function* ancestors(dir: string): Generator<string> {
  let current = path.resolve(dir);
  for (;;) {
    yield current;
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

async function readPackageJson(dir: string): Promise<Record<string, unknown> | null> {
  const bytes = await readIfExists(path.join(dir, 'package.json'));
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * node_modules/<name> → target, unless a nearer one already took the name.
 * A scope (`@x/`) is a folder of our own, so no link is ever made inside the real tree.
 */
async function link(modules: string, name: string, target: string): Promise<void> {
  const at = path.join(modules, name);
  if (name.startsWith('@')) await fs.mkdir(path.dirname(at), { recursive: true });
  await fs.symlink(target, at).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/** Remove the sandbox and every case home in it. */
export async function removeSandbox(sandbox: EvalSandbox): Promise<void> {
  await fs.rm(sandbox.root, { recursive: true, force: true });
}
