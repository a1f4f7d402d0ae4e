import type { AgentDefinition, ToolDefinition } from '../config/types.js';
import type { ToolCaller } from '../run/run-host.js';
import { toolArgsProblem } from '../tools/tool-args.js';

/**
 * Side-effecting tools under eval: a call of a `write` or `irreversible` tool
 * is checked like a real one (allowed, arguments valid), recorded, and
 * answered `{recorded: true}` without running anything. `read` tools run.
 */

export interface RecordedCall {
  name: string;
  args: Record<string, unknown>;
  seq: number;
}

/** The reply every recorded call gets. */
export const RECORDED_RESULT = { recorded: true } as const;

export function hasSideEffect(tool: ToolDefinition): boolean {
  return tool.effect !== 'read';
}

export class RecordingToolCaller implements ToolCaller {
  readonly calls: RecordedCall[] = [];

  constructor(private readonly live: ToolCaller) {}

  async call(request: Parameters<ToolCaller['call']>[0]): ReturnType<ToolCaller['call']> {
    const tool = Object.hasOwn(request.agent.tools, request.name) ? request.agent.tools[request.name] : undefined;
    if (!tool || !hasSideEffect(tool)) return this.live.call(request);
    const problem = toolArgsProblem(tool, request.args);
    if (problem) return { ok: false, code: 'invalid_args', message: problem, ran: false };
    await request.onStart?.();
    this.calls.push({ name: request.name, args: request.args, seq: request.seq });
    return { ok: true, result: { ...RECORDED_RESULT } };
  }
}

/**
 * The definition a case runs under. With recorders, a side-effecting tool
 * that needs approval is not held for a person: nothing would run anyway, so
 * the call goes straight to the recorder and counts as called.
 */
export function evalDefinition(agent: AgentDefinition, liveTools: boolean): AgentDefinition {
  if (liveTools) return agent;
  const tools: Record<string, ToolDefinition> = {};
  for (const [name, tool] of Object.entries(agent.tools)) tools[name] = hasSideEffect(tool) ? { ...tool, approval: 'never' } : tool;
  return { ...agent, tools };
}
