import type { AgentDefinition } from '../config/types.js';

/**
 * Which model a chat completion at the run's endpoint gets (README "Bring
 * your own agent"). Pure.
 */

type AgentModels = Pick<AgentDefinition, 'model' | 'fallbackModels' | 'models'>;

/** What the agent may name: its model, its fallbacks, its `models:` list, in that order. */
export function allowedModels(agent: AgentModels): string[] {
  return [...new Set([...(agent.model ? [agent.model] : []), ...agent.fallbackModels, ...agent.models])];
}

export type ModelChoice = { ok: true; model: string; fallbackModels: string[] } | { ok: false; message: string };

/**
 * `asked` is the request's `model`: absent, empty or `default` is the agent's
 * model; otherwise an allowed model named with or without its `provider/`.
 */
export function chooseModel(agent: AgentModels, asked: unknown): ModelChoice {
  const allowed = allowedModels(agent);
  const fallbackModels = (model: string) => agent.fallbackModels.filter((m) => m !== model);
  if (asked === undefined || asked === null || asked === '' || asked === 'default') {
    if (!agent.model) return { ok: false, message: 'the agent definition names no model; name one in the request or set model in agent.yaml' };
    return { ok: true, model: agent.model, fallbackModels: fallbackModels(agent.model) };
  }
  if (typeof asked !== 'string') return { ok: false, message: 'model must be a string' };
  const found = allowed.find((m) => m === asked) ?? allowed.find((m) => m.slice(m.indexOf('/') + 1) === asked);
  if (found) return { ok: true, model: found, fallbackModels: fallbackModels(found) };
  const list = allowed.length > 0 ? allowed.join(', ') : 'none';
  return { ok: false, message: `model ${JSON.stringify(asked)} is not allowed for this agent (allowed: ${list}; add it to models: in agent.yaml)` };
}
