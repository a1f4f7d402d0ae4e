import { findBwrap, BWRAP_ENV, type Confinement } from './sandbox.js';
import { readAccountFiles, resolveRunAs, switchProblem } from './run-as.js';

/**
 * Resolve a definition's `sandbox` and `run_as` against this machine: bwrap
 * must be installed for a sandbox, the account must exist, and the daemon
 * must be able to switch to it. Each failure is a problem line naming the
 * field, so the agent gets a config_error instead of a run with less
 * isolation than it asked for.
 */
export function confinementProblems(wanted: { sandbox: boolean; runAs: string | null; from: string; sandboxFrom: string }, env: NodeJS.ProcessEnv = process.env): {
  confinement: Confinement;
  problems: string[];
} {
  const problems: string[] = [];
  if (wanted.sandbox && findBwrap(env) === null) {
    const where = env[BWRAP_ENV] ? `${BWRAP_ENV}=${env[BWRAP_ENV]} is not an executable` : 'no bwrap on PATH';
    problems.push(`${wanted.sandboxFrom} is on but bubblewrap is not installed (${where}); install it (apt-get install bubblewrap) or set sandbox: false`);
  }
  let runAs: Confinement['runAs'] = null;
  if (wanted.runAs !== null) {
    const resolved = resolveRunAs(wanted.runAs, readAccountFiles(), wanted.from);
    if (typeof resolved === 'string') problems.push(resolved);
    else {
      const cannot = switchProblem(resolved, wanted.from);
      if (cannot) problems.push(cannot);
      runAs = resolved;
    }
  }
  return { confinement: { sandbox: wanted.sandbox, runAs }, problems };
}
