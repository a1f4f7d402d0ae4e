import type { Logger } from 'pino';
import type { DaemonConfig } from '../config/types.js';
import { setDefaultFileMode, setPeopleFileMode } from '../store/durable.js';
import { ConfigError } from '../errors.js';
import { setQuietPeriod } from '../store/quiet-period.js';
import { fileKeyValues, keyPaths, providerKeyProblems } from './provider-keys.js';
import { capabilitiesToDrop } from './run-as.js';
import { hostProcWrapper } from './proc-view.js';
import { setUpRunCgroups } from './run-cgroup.js';
import { findBwrap, setSandboxHost } from './sandbox.js';
import { MIN_MASKED_LENGTH, secretCensor, secretNames } from './secrets.js';

/**
 * Make agentd.yaml's security settings take effect in this process: which
 * variables are secrets (kept out of children, masked in logs and files) and
 * the modes of the files the daemon writes. Called when the daemon loads or
 * reloads its config, and by `agentd run`.
 */
export function applySecuritySettings(config: DaemonConfig, log: Logger, home: string, env: NodeJS.ProcessEnv = process.env): void {
  // A key file others can read is refused before anything else takes effect (a reload keeps the last good config).
  const keyProblems = providerKeyProblems(config, env);
  if (keyProblems.length > 0) throw new ConfigError(config.file ?? 'agentd.yaml', keyProblems);
  const names = secretNames(config);
  secretCensor.set(names, env, fileKeyValues(config, env));
  setSandboxHost({ bwrap: findBwrap(env), hidden: keyPaths(config, env), dropCaps: capabilitiesToDrop(env), procWrapper: hostProcWrapper(env) });
  setUpRunCgroups(log, home);
  setDefaultFileMode(config.fileMode.state);
  setPeopleFileMode(config.fileMode.outbox);
  setQuietPeriod(config.quietPeriodMs);
  const short = names.filter((name) => env[name] !== undefined && env[name]!.length < MIN_MASKED_LENGTH);
  if (short.length > 0) {
    log.warn({ secrets: short, min_length: MIN_MASKED_LENGTH }, 'secret values this short are kept from agents and tools but not masked in logs');
  }
}
