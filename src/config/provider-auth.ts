import { keySource } from '../security/provider-keys.js';
import type { AgentDefinition, DaemonConfig } from './types.js';

/**
 * A provider key that is not there, found before any run (README "Models"):
 * `agentd validate` and the daemon's load of a definition report it as a
 * config_error with category `auth`, instead of a run that starts and then
 * fails on its first model call. Pure over the environment it is given.
 */

/** One line per model of the agent whose provider's api_key_env is unset or empty in `env`. */
export function missingProviderKeys(config: Pick<DaemonConfig, 'providers'>, agent: Pick<AgentDefinition, 'model' | 'fallbackModels'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const model of [agent.model, ...agent.fallbackModels]) {
    if (!model) continue;
    const name = model.slice(0, model.indexOf('/'));
    const provider = config.providers[name];
    if (!provider || seen.has(name)) continue;
    seen.add(name);
    const source = keySource(provider, env);
    if (source.kind !== 'env' || env[source.name]) continue;
    problems.push(`model ${model}: the environment variable ${source.name} (providers.${name}.api_key_env) is not set, so every call would fail (category auth); set it where the daemon runs, then restart it`);
  }
  return problems;
}
