import type { Command } from 'commander';
import { loadAgentDefinition } from '../../config/agent-definition.js';
import { loadDaemonConfig } from '../../config/daemon-config.js';
import { formatDuration } from '../../config/duration.js';
import type { ToolDefinition } from '../../config/types.js';
import { ConfigError, errorMessage, NotFoundError } from '../../errors.js';
import { listDir } from '../../store/durable.js';
import { assertName, isReservedAgentName, isValidName } from '../../store/paths.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';

interface ToolsOptions {
  home?: string;
  agent?: string;
  json?: boolean;
}

/** One tool of one agent, as `agentd tools --json` prints it. */
export interface ToolView {
  name: string;
  description: string;
  /** agentd.yaml (shared by agents) or the agent's own definition. */
  declared_in: 'agentd.yaml' | 'agent';
  effect: ToolDefinition['effect'];
  idempotent: boolean;
  approval: ToolDefinition['approval'];
  approval_ttl_ms: number;
  timeout_ms: number;
  circuit: { failures: number; window_ms: number; cooldown_ms: number };
}

export function registerTools(program: Command): void {
  withHome(program.command('tools'))
    .description("each agent's tools: effect, idempotent, approval policy, approval_ttl, timeout, circuit")
    .option('--agent <agent>', "only this agent's tools")
    .option('--json', 'print [{agent, tools: [...]}] as JSON')
    .action((options: ToolsOptions) => runCommand(() => listTools(options)));
}

async function listTools(options: ToolsOptions): Promise<number> {
  const paths = homeOf(options);
  const config = await loadDaemonConfig(paths);
  const names =
    options.agent !== undefined
      ? [assertName(options.agent, 'agent name')]
      : (await listDir(paths.agentsDir())).filter((n) => !n.startsWith('.') && isValidName(n) && !isReservedAgentName(n)).sort();
  const agents: { agent: string; tools: ToolView[] }[] = [];
  const problems: string[] = [];
  for (const name of names) {
    try {
      const definition = await loadAgentDefinition(paths, config, name);
      if (!definition) {
        if (options.agent !== undefined) throw new NotFoundError(`agents/${name} has no agent.yaml or agent.json`);
        continue;
      }
      agents.push({ agent: name, tools: Object.values(definition.tools).sort((a, b) => a.name.localeCompare(b.name)).map(viewOf) });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(errorMessage(err)); // a broken definition does not hide the other agents' tools
    }
  }
  for (const line of problems.flatMap((p) => p.split('\n'))) process.stderr.write(`agentd: ${line}\n`);
  if (options.json) printJson(agents);
  else if (agents.length === 0) process.stdout.write('no agents\n');
  else {
    const rows = agents.flatMap(({ agent, tools }) =>
      tools.length === 0
        ? [[agent, '(no tools)', null, null, null, null, null, null]]
        : tools.map((t) => [
            agent,
            t.declared_in === 'agentd.yaml' ? t.name : `${t.name} (own)`,
            t.effect,
            t.idempotent ? 'yes' : 'no',
            t.approval,
            formatDuration(t.approval_ttl_ms),
            formatDuration(t.timeout_ms),
            `${t.circuit.failures} in ${formatDuration(t.circuit.window_ms)}, ${formatDuration(t.circuit.cooldown_ms)} open`,
          ]),
    );
    process.stdout.write(formatTable(['AGENT', 'TOOL', 'EFFECT', 'IDEMPOTENT', 'APPROVAL', 'APPROVAL_TTL', 'TIMEOUT', 'CIRCUIT'], rows));
  }
  return problems.length > 0 ? EXIT.checkFailed : EXIT.ok;
}

function viewOf(tool: ToolDefinition): ToolView {
  return {
    name: tool.name,
    description: tool.description,
    declared_in: tool.shared ? 'agentd.yaml' : 'agent',
    effect: tool.effect,
    idempotent: tool.idempotent,
    approval: tool.approval,
    approval_ttl_ms: tool.approvalTtlMs,
    timeout_ms: tool.timeoutMs,
    circuit: { failures: tool.circuit.failures, window_ms: tool.circuit.windowMs, cooldown_ms: tool.circuit.cooldownMs },
  };
}
