import type { Logger } from 'pino';
import type { AgentDefinition, DaemonConfig } from '../config/types.js';
import { RunTrace, type Attributes, type SpanStatus } from '../observe/trace.js';
import type { RunTrigger } from '../store/checkpoint.js';
import type { OutboxItem } from '../store/outbox.js';
import type { HomePaths } from '../store/paths.js';
import type { Clock } from './clock.js';
import type { RunOutcome, RunReport } from './run-host.js';

/**
 * The run's side of tracing: what the run span says about the run (identity
 * when it starts, outcome and totals when it ends), the waits for a person
 * that led to it, and the escalation it ended in. The spans of single calls
 * are opened by the run host.
 */

export interface OpenRunTrace {
  paths: HomePaths;
  config: Pick<DaemonConfig, 'traceCapture'>;
  clock: Clock;
  log: Logger;
  agent: AgentDefinition;
  taskId: string;
  runId: string;
  trigger: RunTrigger;
  attempt: number;
  /** The task resumes under a definition other than the one its last run had. */
  definitionChanged: boolean;
  /** Resolutions handed to this run: each approval becomes a span of the person's wait. */
  resolutions: OutboxItem[];
}

export function openRunTrace(input: OpenRunTrace): RunTrace {
  const { agent } = input;
  const trace = new RunTrace({
    file: input.paths.trace(agent.name, input.runId),
    capture: input.config.traceCapture,
    clock: input.clock,
    attributes: {
      'agentd.agent': agent.name,
      'agentd.task_id': input.taskId,
      'agentd.run_id': input.runId,
      'agentd.trigger': input.trigger,
      'agentd.attempt': input.attempt,
      'agentd.agent_version': agent.version,
      'agentd.definition_hash': agent.hash,
      'agentd.definition_changed': input.definitionChanged,
    },
    onError: (err) => input.log.warn({ err }, 'trace span not written'),
  });
  for (const item of input.resolutions) {
    if (item.kind !== 'approval' && item.kind !== 'unsure_side_effect') continue;
    const details = (item.details ?? {}) as { seq?: unknown; tool?: unknown };
    const resolvedAt = item.resolution?.at ? Date.parse(item.resolution.at) : NaN;
    const createdAt = Date.parse(item.created_at);
    trace.approvalWait(
      typeof details.seq === 'number' ? details.seq : 0,
      typeof details.tool === 'string' ? details.tool : '?',
      item.resolution?.decision ?? 'unknown',
      Number.isFinite(createdAt) && Number.isFinite(resolvedAt) ? { startMs: createdAt, endMs: resolvedAt } : {},
      { 'agentd.outbox.item_id': item.id, 'agentd.outbox.kind': item.kind, 'agentd.approval.by': item.resolution?.by },
    );
  }
  return trace;
}

/** The outbox kind a run's outcome escalates as, or null when it does not escalate. */
function escalationOf(outcome: RunOutcome): { kind: string; reason: unknown } | null {
  switch (outcome.kind) {
    case 'escalated':
      return { kind: 'uncertain', reason: { reason: outcome.message.reason, question: outcome.message.question } };
    case 'limit':
      return { kind: 'limit', reason: `budget reached: ${outcome.reason}` };
    case 'approval':
      return { kind: 'approval', reason: `${outcome.tool} needs approval before it runs` };
    case 'unsure_side_effect':
      return { kind: 'unsure_side_effect', reason: `the daemon stopped during ${outcome.tool} (call ${outcome.seq})` };
    case 'provider_unavailable':
      return { kind: 'provider_unavailable', reason: outcome.message };
    default:
      return null;
  }
}

/** The error category a run's outcome records in history, or null. */
function errorCategoryOf(outcome: RunOutcome): string | null {
  if (outcome.kind === 'failed') return outcome.category;
  if (outcome.kind === 'limit') return 'budget';
  if (outcome.kind === 'provider_unavailable') return 'provider_error';
  return null;
}

/** Writes the escalation span (if the run escalated), then the run span with the outcome and totals. */
export async function closeRunTrace(trace: RunTrace, report: RunReport): Promise<void> {
  const { outcome, spend } = report;
  const escalation = escalationOf(outcome);
  if (escalation) {
    const reason = trace.payload(escalation.reason);
    trace.emit('escalation', `escalate ${escalation.kind}`, {
      'agentd.escalation.kind': escalation.kind,
      ...(reason !== undefined ? { 'agentd.escalation.reason': reason } : {}),
      ...('seq' in outcome ? { 'agentd.seq': outcome.seq, 'agentd.tool.name': outcome.tool } : {}),
    });
  }
  const category = errorCategoryOf(outcome);
  const status: SpanStatus = category ? 'error' : 'ok';
  const attributes: Attributes = {
    'agentd.outcome': outcome.kind,
    ...(outcome.kind === 'limit' || outcome.kind === 'interrupted' ? { 'agentd.stop_reason': outcome.reason } : {}),
    ...(category ? { 'error.type': category } : {}),
    ...(outcome.kind === 'failed' ? { 'agentd.error': outcome.message } : {}),
    'agentd.steps': spend.steps,
    'agentd.tool_calls': spend.toolCalls,
    'gen_ai.usage.input_tokens': spend.inputTokens,
    'gen_ai.usage.output_tokens': spend.outputTokens,
    'agentd.cost_usd': spend.costUsd,
    'agentd.models': report.models,
    'agentd.degraded': report.degraded,
  };
  await trace.finish(status, attributes);
}
