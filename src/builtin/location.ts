import { fileURLToPath } from 'node:url';

/**
 * Where the built-in model agent's script is, for the daemon to spawn when a
 * definition has `model` and no `command` (README "The built-in model agent"). A module of its own
 * because importing model-agent.js would start the agent in the daemon.
 */
export const BUILTIN_AGENT_SCRIPT = fileURLToPath(new URL('./model-agent.js', import.meta.url));
