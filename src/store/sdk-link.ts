import fs from 'node:fs/promises';
import { lstatOrNull } from './durable.js';
import path from 'node:path';
import { PACKAGE_ROOT } from '../config/installation.js';
import type { Logger } from 'pino';
import type { HomePaths } from './paths.js';

/**
 * `import { runAgent } from 'agentd/sdk'` in any home: the package is called
 * agentd-supervisor on the registry (README "Install"), and ESM ignores
 * NODE_PATH, so the home gets `node_modules/agentd`, a symlink to this
 * installation. Node resolves an import from the nearest node_modules above
 * the importing file, so every agent folder of the home finds it.
 */

export type SdkLinkResult =
  | { kind: 'linked' }
  /** Something is there already: a link made earlier, or the person's own dependency, which is left alone. */
  | { kind: 'present' }
  | { kind: 'failed'; problem: string };

/** `<modulesDir>/agentd` → this installation, unless the name is taken. */
export async function linkSdk(modulesDir: string, target: string = PACKAGE_ROOT): Promise<SdkLinkResult> {
  const at = path.join(modulesDir, 'agentd');
  // One lstat before every process agent's run (run/runner.ts); absent (or unreadable): make it.
  if (await lstatOrNull(at)) return { kind: 'present' };
  try {
    await fs.mkdir(modulesDir, { recursive: true });
    await fs.symlink(target, at, 'dir');
    return { kind: 'linked' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return { kind: 'present' }; // another daemon or command made it meanwhile
    return { kind: 'failed', problem: `${(err as Error).message}` };
  }
}

/** The home's link (daemon start, `agentd init`, `agentd run`, `agentd eval`). */
export function ensureHomeSdkLink(paths: HomePaths): Promise<SdkLinkResult> {
  return linkSdk(path.dirname(paths.sdkLink()));
}

/**
 * Before a process agent's run: `npm install` of anything in the home prunes
 * the link (npm removes what the home's package.json does not list), which
 * would leave every Node agent of a running daemon failing on its import.
 * One lstat when the link is there.
 */
export async function relinkSdkBeforeRun(paths: HomePaths, log: Logger): Promise<void> {
  const linked = await ensureHomeSdkLink(paths);
  if (linked.kind === 'linked') log.warn({ link: paths.sdkLink() }, 'linked the SDK into the home again');
  else if (linked.kind === 'failed' && !relinkFailureLogged.has(paths.root)) {
    // Once per home: a home where the link cannot be made (node_modules not writable) would say it at every run.
    relinkFailureLogged.add(paths.root);
    log.warn({ problem: linked.problem, link: paths.sdkLink() }, 'could not link the SDK into the home; agents importing agentd/sdk will fail');
  }
}

const relinkFailureLogged = new Set<string>();
