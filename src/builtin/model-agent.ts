import { loadAgentDefinition } from '../config/agent-definition.js';
import { loadDaemonConfig } from '../config/daemon-config.js';
import type { AgentDefinition } from '../config/types.js';
import { compile } from '../schema/validate.js';
import { runAgent } from '../sdk/index.js';
import { HomePaths } from '../store/paths.js';
import { responseFormatFor } from './response-format.js';
import { runToolLoop } from './tool-loop.js';

/**
 * The built-in model agent (README "The built-in model agent"): what the daemon runs, as
 * `node dist/src/builtin/model-agent.js` in the agent folder, for a definition
 * with `model` and no `command`. It is an ordinary process agent on the SDK,
 * so budgets, the journal and the gateway treat it like any other.
 *
 * It reads its own definition (AGENTD_HOME, AGENTD_AGENT) because the protocol's
 * start message carries the task, not the definition. The daemon loaded the same
 * files just before spawning it; the daemon's copy is still the one enforced
 * (tools allowed, output_schema checked on the result).
 */

async function loadDefinition(): Promise<{ definition: AgentDefinition; responseFormat: Record<string, unknown> | null }> {
  const home = process.env.AGENTD_HOME;
  const agent = process.env.AGENTD_AGENT;
  if (!home || !agent) throw new Error('the built-in model agent needs AGENTD_HOME and AGENTD_AGENT (the daemon sets both)');
  const paths = new HomePaths(home);
  const config = await loadDaemonConfig(paths);
  const definition = await loadAgentDefinition(paths, config, agent);
  if (!definition) throw new Error(`agents/${agent} has no agent.yaml or agent.json`);
  return { definition, responseFormat: responseFormatFor(definition, config) };
}

runAgent(async (ctx) => {
  const { definition, responseFormat } = await loadDefinition();
  const validate = definition.outputSchema ? compile<unknown>(definition.outputSchema, { own: false }) : null;
  return runToolLoop(ctx, { definition, validate, responseFormat });
});
