import type { Logger } from 'pino';
import type { DaemonConfig } from '../config/types.js';
import { setDefaultFileMode, setPeopleFileMode } from '../store/durable.js';
import { MIN_MASKED_LENGTH, secretCensor, secretNames } from './secrets.js';

/**
 * Make agentd.yaml's security settings take effect in this process: which
 * variables are secrets (kept out of children, masked in logs and files) and
 * the modes of the files the daemon writes. Called when the daemon loads or
 * reloads its config, and by `agentd run`.
 */
export function applySecuritySettings(config: DaemonConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const names = secretNames(config);
  secretCensor.set(names, env);
  setDefaultFileMode(config.fileMode.state);
  setPeopleFileMode(config.fileMode.outbox);
  const short = names.filter((name) => env[name] !== undefined && env[name]!.length < MIN_MASKED_LENGTH);
  if (short.length > 0) {
    log.warn({ secrets: short, min_length: MIN_MASKED_LENGTH }, 'secret values this short are kept from agents and tools but not masked in logs');
  }
}
