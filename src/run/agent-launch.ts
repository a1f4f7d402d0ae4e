import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import { AgentProcess } from './agent-process.js';
import type { PlainOutput } from './plain-agent.js';
import type { RunHostInput } from './run-types.js';

/**
 * Which process runs the agent for this run: a warm one (run/warm-pool.ts)
 * adopted now, or one spawned now. Its stdout lines go to `onLine`, or, for a
 * plain agent (protocol: none), into its output.
 */
export function launchAgent(
  input: RunHostInput,
  plainOutput: PlainOutput | null,
  onLine: (line: string) => void,
  runEnv: Record<string, string> | undefined,
  filesEnv: Record<string, string> | undefined,
): AgentProcess {
  // Without a command, the built-in model agent runs over the same protocol.
  const command = input.agent.command ?? [process.execPath, BUILTIN_AGENT_SCRIPT];
  // A warm process (run/warm-pool.ts) is already started and waits for this start message. Not for
  // plain agents (their task comes as files and stdin); it has no run's endpoint variables (README "Warm agents").
  const warm = plainOutput ? null : (input.takeWarm?.() ?? null);
  warm?.adopt(input.log, (line: string) => onLine(line));
  return (
    warm ??
    new AgentProcess(
      { command, cwd: input.agent.dir, passEnv: input.agent.env, agentdEnv: { ...input.agentdEnv, ...filesEnv }, runEnv, confinement: input.agent.confinement },
      input.log,
      (line) => (plainOutput ? plainOutput.add(line) : onLine(line)),
    )
  );
}
