import type { DaemonMessage, StopReason, ToolCallMessage } from '../protocol/messages.js';
import { requestHash, type EffectiveCall } from '../store/journal.js';
import { approvalCause, approvalStanding } from '../tools/approval.js';
import { idempotencyKey } from '../tools/idempotency.js';
import { toolArgsProblem } from '../tools/tool-args.js';
import type { ToolDefinition } from '../config/types.js';
import { decideToolCall, type Spent } from './budget.js';
import type { ReplayCursor } from './replay.js';
import type { RunHostInput, RunOutcome } from './run-types.js';
import type { RunTaint } from './taint.js';

/**
 * One `tool` message of a run, in the order of README "Tools": allowed for
 * this agent, arguments valid against input_schema, then replay, budget,
 * approval, and the call itself. A call refused before it runs (not allowed,
 * invalid arguments, an open circuit) takes no place in the journal and does
 * not count toward max_tool_calls; a person is never asked to approve a call
 * that could not run anyway.
 */

/** What a tool call needs of its run: a narrow port onto the run host. */
export interface ToolCallHost {
  readonly input: RunHostInput;
  readonly replay: ReplayCursor;
  readonly taint: RunTaint;
  /** A stop or an outcome is under way: calls are refused with `stopping`. */
  ending(): boolean;
  send(message: DaemonMessage): void;
  finish(outcome: RunOutcome): void;
  /** Refuse with budget_exhausted and stop the run for `reason`. */
  refuse(id: string, reason: StopReason): void;
  replayed(seq: number, kind: 'tool', hash: string): Promise<EffectiveCall | null>;
  journalFailed(seq: number, kind: 'tool', name: string, hash: string, error: { code: string; message: string }): Promise<void>;
  spentNow(): Spent;
  /** One more tool call that ran, for the task and the run. */
  countToolCall(): void;
  afterSpend(): void;
  iso(): string;
  /** Aborted when the run stops: a tool still running is killed. */
  readonly signal: AbortSignal;
}

type Span = ReturnType<NonNullable<RunHostInput['trace']>['tool']> | undefined;

export async function handleToolCall(host: ToolCallHost, message: ToolCallMessage): Promise<void> {
  const tool = admit(host, message);
  if (!tool) return;
  const hash = requestHash('tool', message.name, message.args);
  const seq = host.replay.next('tool', hash);
  const span = host.input.trace?.tool(seq, message.name, tool.effect, message.args);
  if (await answeredFromJournal(host, message, tool, seq, hash, span)) return;
  const refusal = decideToolCall(host.input.limits, host.spentNow());
  if (refusal) return host.refuse(message.id, refusal);
  if (await heldForApproval(host, message, tool, seq, hash, span)) return;
  await runTool(host, message, tool, seq, hash, span);
}

/** The agent's own tool with valid arguments, or null after telling the agent why not. */
function admit(host: ToolCallHost, message: ToolCallMessage): ToolDefinition | null {
  if (host.ending()) {
    host.send({ type: 'error', id: message.id, code: 'stopping', message: 'the run is stopping' });
    return null;
  }
  const tool = Object.hasOwn(host.input.agent.tools, message.name) ? host.input.agent.tools[message.name] : undefined;
  if (!tool) {
    host.send({ type: 'error', id: message.id, code: 'not_allowed', message: `tool ${JSON.stringify(message.name)} is not in this agent's tools` });
    return null;
  }
  const problem = toolArgsProblem(tool, message.args);
  if (problem) {
    host.input.log.info({ tool: message.name, problem }, 'tool call refused: invalid arguments');
    host.send({ type: 'error', id: message.id, code: 'invalid_args', message: problem });
    return null;
  }
  return tool;
}

/** A call the journal answers: a person's word on an unsure side effect, or a recorded result. True when answered. */
async function answeredFromJournal(host: ToolCallHost, message: ToolCallMessage, tool: ToolDefinition, seq: number, hash: string, span: Span): Promise<boolean> {
  const decision = host.input.sideEffectDecisions.get(seq);
  const unfinished = host.replay.unfinishedSideEffect(seq, hash, tool, decision);
  if (unfinished === 'ask') {
    host.send({ type: 'error', id: message.id, code: 'stopping', message: 'a person must say whether this call already happened' });
    host.finish({ kind: 'unsure_side_effect', seq, tool: message.name, args: message.args, idempotencyKey: idempotencyKey(host.input.agent.name, host.input.taskId, seq, tool.name) });
    return true;
  }
  if (unfinished === 'assume_done') {
    const result = { assumed_done: true, by_person: true, ...(decision?.answer !== undefined ? { answer: decision.answer } : {}) };
    await host.input.records.journal({ v: 1, seq, run_id: host.input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'completed', result, at: host.iso() });
    host.replay.goLive();
    span?.replayed(result);
    host.send({ type: 'tool_result', id: message.id, ok: true, result, replayed: true });
    return true;
  }
  const recorded = unfinished === 'rerun' ? null : await host.replayed(seq, 'tool', hash);
  if (unfinished === 'rerun') host.replay.goLive(); // the journal ends at this call: everything after it is live
  if (!recorded) return false;
  span?.replayed(recorded.result);
  await host.taint.inspect(recorded.result, `tool result of ${message.name} (call ${seq})`);
  host.send({ type: 'tool_result', id: message.id, ok: true, result: recorded.result, replayed: true });
  return true;
}

/** A call that waits for a person's approval (or was denied by one). True when it does not run now. */
async function heldForApproval(host: ToolCallHost, message: ToolCallMessage, tool: ToolDefinition, seq: number, hash: string, span: Span): Promise<boolean> {
  const cause = approvalCause(tool, host.taint.tainted);
  if (!cause) return false;
  // The approval is bound to this exact call: its place in the task and a hash of tool and arguments.
  const standing = approvalStanding(host.input.approvals.get(`${seq}:${hash}`), tool.approvalTtlMs, host.input.clock.now());
  if (standing.kind === 'none' || standing.kind === 'expired') {
    const expired = standing.kind === 'expired' ? standing.record : null;
    if (expired) host.input.log.info({ tool: message.name, seq, approved_at: new Date(expired.at).toISOString() }, 'approval older than approval_ttl; asking again');
    host.input.trace?.approvalWait(seq, message.name, 'pending');
    host.send({ type: 'error', id: message.id, code: 'stopping', message: "this call waits for a person's approval" });
    host.finish({ kind: 'approval', seq, tool: message.name, args: message.args, callHash: hash, cause, expired });
    return true;
  }
  if (standing.kind === 'denied') {
    span?.failed('denied', 'a person denied this call');
    await host.journalFailed(seq, 'tool', message.name, hash, { code: 'denied', message: 'a person denied this call' });
    host.send({ type: 'error', id: message.id, code: 'denied', message: `a person denied this call of ${message.name}: do not retry it, handle the refusal` });
    return true;
  }
  return false;
}

/** Run the tool: audit and journal it the moment the tools layer admits it, then record its outcome. */
async function runTool(host: ToolCallHost, message: ToolCallMessage, tool: ToolDefinition, seq: number, hash: string, span: Span): Promise<void> {
  const { input } = host;
  const sideEffect = tool.effect !== 'read';
  const auditCall = (phase: string, extra: object = {}) =>
    input.audit({ event: 'tool_call', agent: input.agent.name, task_id: input.taskId, run_id: input.runId, details: { tool: message.name, seq, effect: tool.effect, phase, call_hash: hash, ...extra } });
  let started = false;
  // The audit line goes first and the journal's record of the outcome right after the call:
  // nothing slower may stand between a side effect and the record that it happened.
  const onStart = async () => {
    if (sideEffect) await auditCall('started', { args: message.args });
    await input.records.journal({ v: 1, seq, run_id: input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'started', at: host.iso() });
    started = true;
    host.countToolCall();
  };
  const answer = await input.tools.call({ agent: input.agent, taskId: input.taskId, runId: input.runId, seq, name: message.name, args: message.args, onStart, signal: host.signal });
  if (!answer.ok) {
    span?.failed(answer.code, answer.message);
    if (answer.code === 'stopped') {
      // Killed by the stop: the journal keeps only `started`, so a resume treats it as the call in flight.
      host.send({ type: 'error', id: message.id, code: 'tool_failed', message: answer.message });
      return;
    }
    // Journaled even when it never ran (an open circuit): the call holds its seq, and replay reads the journal by seq.
    await host.journalFailed(seq, 'tool', message.name, hash, { code: answer.code, message: answer.message });
    if (started && sideEffect) await auditCall('failed');
    // A failing tool's message carries its stderr, which the agent reads like a result.
    await host.taint.inspect(answer.message, `tool error of ${message.name} (call ${seq})`);
    host.send({ type: 'error', id: message.id, code: answer.code, message: answer.message, ...('retryAfterMs' in answer ? { retry_after_ms: answer.retryAfterMs } : {}) });
    return;
  }
  span?.completed(answer.result);
  await input.records.journal({ v: 1, seq, run_id: input.runId, kind: 'tool', name: message.name, request_hash: hash, phase: 'completed', result: answer.result, at: host.iso() });
  if (sideEffect) await auditCall('completed');
  await host.taint.inspect(answer.result, `tool result of ${message.name} (call ${seq})`);
  host.send({ type: 'tool_result', id: message.id, ok: true, result: answer.result, replayed: false });
  host.afterSpend();
}
