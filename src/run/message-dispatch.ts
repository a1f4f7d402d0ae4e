import type { AgentMessage, CheckpointMessage, DaemonMessage, HandoffMessage, ModelCallMessage, ToolCallMessage, UsageMessage } from '../protocol/messages.js';
import { compiledSchema } from '../schema/compiled.js';
import { formatErrors } from '../schema/validate.js';
import type { ModelCallOutcome } from './model-call.js';
import type { RunHostInput, RunOutcome } from './run-types.js';

/**
 * Dispatching an agent's protocol message (docs/protocol.md): which handler
 * of the run host a message goes to, the reply a model step gives the agent,
 * what a result means against the agent's output_schema, and how
 * non-protocol stdout lines are logged.
 */

/** What a run host does with each kind of message. */
export interface DispatchHost {
  model(message: ModelCallMessage): Promise<void>;
  tool(message: ToolCallMessage): Promise<void>;
  usage(message: UsageMessage): Promise<void>;
  checkpoint(message: CheckpointMessage): void;
  handoff(message: HandoffMessage): void;
  finish(outcome: RunOutcome): void;
  result(output: unknown): void;
  readonly log: RunHostInput['log'];
}

export async function dispatchMessage(host: DispatchHost, message: AgentMessage): Promise<void> {
  switch (message.type) {
    case 'model':
      return host.model(message);
    case 'tool':
      return host.tool(message);
    case 'checkpoint':
      host.checkpoint(message);
      return;
    case 'uncertain':
      host.finish({ kind: 'escalated', message });
      return;
    case 'handoff':
      host.handoff(message);
      return;
    case 'usage':
      return host.usage(message);
    case 'log':
      host.log[message.level ?? 'info']({ agent_msg: message.msg }, 'agent log');
      return;
    case 'result':
      return host.result(message.output);
  }
}

/** The protocol reply to a `model` message, from the model step's outcome. */
export function modelReply(id: string, outcome: ModelCallOutcome): DaemonMessage {
  switch (outcome.kind) {
    case 'answered':
      return { type: 'model_result', id, ok: true, response: outcome.reply.response, usage: outcome.usage, model: outcome.reply.model, replayed: outcome.replayed };
    case 'refused':
      return { type: 'error', id, code: 'budget_exhausted', message: `budget exhausted: ${outcome.reason}` };
    case 'stopping':
      return { type: 'error', id, code: 'stopping', message: 'the run is stopping' };
    case 'failed':
      return { type: 'error', id, code: outcome.code, message: outcome.message };
  }
}

/** A result is the run's output when it matches the agent's output_schema (if it has one). */
export function resultOutcome(schema: object | null, output: unknown): RunOutcome {
  if (schema) {
    const validate = compiledSchema(schema);
    if (!validate(output)) {
      const problems = formatErrors(validate.errors ?? []).join('; ');
      return { kind: 'failed', category: 'invalid_output', message: `output does not match output_schema: ${problems}` };
    }
  }
  return { kind: 'done', output };
}

/** Non-protocol stdout lines of one run that are logged; the rest are counted only. */
const NOISE_LOG_LINES = 100;

/** Non-protocol stdout lines seen; only the first NOISE_LOG_LINES are logged, so a flood cannot flood the log. */
export class NoiseLog {
  private lines = 0;

  constructor(private readonly log: RunHostInput['log']) {}

  note(line: string): void {
    this.lines++;
    if (this.lines <= NOISE_LOG_LINES) this.log.info({ stream: 'stdout', line: line.slice(0, 2000) }, 'agent printed a non-protocol line');
    else if (this.lines === NOISE_LOG_LINES + 1) this.log.warn({ logged: NOISE_LOG_LINES }, 'agent prints many non-protocol lines; further ones are dropped without logging');
  }
}
