import type { AgentDefinition } from '../config/types.js';
import type { ToolCall, ToolSpec } from '../protocol/messages.js';
import type { Validator } from '../schema/validate.js';
import { AgentdError, type AgentContext } from '../sdk/index.js';
import {
  ESCALATE_TOOL,
  assistantMessage,
  escalateArgs,
  finalAnswer,
  initialState,
  parseToolArgs,
  pendingToolCalls,
  resolutionMessages,
  restoreState,
  toolError,
  toolMessage,
  toolSpecs,
  type EscalateArgs,
  type LoopState,
} from './conversation.js';
import { checkAnswer, repairPrompt } from './final-answer.js';

/**
 * The built-in tool-calling loop (README "The built-in model agent") over the SDK. The state is the
 * conversation itself: each step looks at its end and does the one thing that
 * comes next (run a pending tool call, judge a final answer, or ask the
 * model), then checkpoints. So a run resumed from any checkpoint continues
 * exactly where the last one stopped.
 */

/** Repair turns allowed on an answer that fails output_schema. */
const MAX_REPAIRS = 1;

/** Codes that mean the run is ending: the SDK turns them into a quiet stop and a handoff, not a message to the model. */
const STOPPING = new Set(['budget_exhausted', 'stopping']);

export interface LoopOptions {
  definition: AgentDefinition;
  /** The compiled output_schema, or null when the definition has none. */
  validate: Validator<unknown> | null;
  /** Sent with every model request (builtin/response-format.ts); null: none. */
  responseFormat?: Record<string, unknown> | null;
}

type Step = { kind: 'next' } | { kind: 'done'; output: unknown } | { kind: 'escalate'; call: ToolCall; escalation: EscalateArgs };

export async function runToolLoop(ctx: AgentContext, options: LoopOptions): Promise<unknown> {
  const { definition } = options;
  const state = restoreState(ctx.resume.checkpoint) ?? initialState(definition.systemPrompt, definition.outputSchema, ctx.task);
  const tools = toolSpecs(definition.tools);
  ctx.onStop((reason) => ({
    summary: `the built-in model agent stopped (${reason}) after ${state.messages.length} messages; a resumed run continues the conversation from its checkpoint`,
  }));

  // Calls left unanswered by a stopped run come first: providers refuse a conversation with a gap after tool_calls.
  let step: Step = { kind: 'next' };
  while (step.kind === 'next' && pendingToolCalls(state.messages).length > 0) step = await runPendingTool(ctx, state);
  if (step.kind === 'next') {
    const answers = resolutionMessages(ctx.resume.resolutions);
    if (answers.length > 0) {
      state.messages.push(...answers);
      await ctx.checkpoint(state);
    }
  }
  const extra = options.responseFormat ? { response_format: options.responseFormat } : {};
  while (step.kind === 'next') step = await nextStep(ctx, state, tools, options.validate, extra);
  if (step.kind === 'done') return step.output;
  return escalate(ctx, state, step.call, step.escalation);
}

async function nextStep(ctx: AgentContext, state: LoopState, tools: ToolSpec[], validate: Validator<unknown> | null, extra: Record<string, unknown>): Promise<Step> {
  if (pendingToolCalls(state.messages).length > 0) return runPendingTool(ctx, state);
  const answer = finalAnswer(state.messages);
  if (answer) return judgeAnswer(ctx, state, answer.content ?? '', validate);
  // Temperature 0: an extraction agent should answer the same input the same way (and the gateway may cache it).
  const reply = await ctx.model({ messages: state.messages, tools, temperature: 0, ...extra });
  state.messages.push(assistantMessage(reply.content, reply.tool_calls));
  await ctx.checkpoint(state);
  return { kind: 'next' };
}

/** Run the next unanswered call of the last assistant message and record its result (or its error) for the model. */
async function runPendingTool(ctx: AgentContext, state: LoopState): Promise<Step> {
  const call = pendingToolCalls(state.messages)[0]!;
  const parsed = parseToolArgs(call.function.arguments);
  let content: string;
  if (!parsed.ok) {
    content = toolError('invalid_args', parsed.message);
  } else if (call.function.name === ESCALATE_TOOL) {
    const checked = escalateArgs(parsed.args);
    if (checked.ok) return { kind: 'escalate', call, escalation: checked.escalation };
    content = toolError('invalid_args', checked.message);
  } else {
    try {
      const result = await ctx.tool(call.function.name, parsed.args);
      content = JSON.stringify(result ?? null);
    } catch (err) {
      if (!(err instanceof AgentdError) || STOPPING.has(err.code)) throw err;
      content = toolError(err.code, err.message);
    }
  }
  state.messages.push(toolMessage(call, content));
  await ctx.checkpoint(state);
  return { kind: 'next' };
}

async function judgeAnswer(ctx: AgentContext, state: LoopState, text: string, validate: Validator<unknown> | null): Promise<Step> {
  if (!validate) return { kind: 'done', output: { answer: text } };
  const check = checkAnswer(text, validate);
  if (check.kind === 'valid') return { kind: 'done', output: check.output };
  if (state.repairs < MAX_REPAIRS) {
    state.answer_at ??= state.messages.length - 1;
    state.repairs++;
    state.messages.push({ role: 'user', content: repairPrompt(check.problems) });
    await ctx.checkpoint(state);
    return { kind: 'next' };
  }
  // The daemon's own output_schema check fails this run (invalid_output). A retry of the task should ask the
  // model afresh, not re-send this same answer from the checkpoint, so the checkpoint goes back to before it.
  const before = state.answer_at ?? state.messages.length - 1;
  await ctx.checkpoint({ v: 1, messages: state.messages.slice(0, before), repairs: 0, answer_at: null } satisfies LoopState);
  ctx.log('warn', `final answer still fails output_schema after ${MAX_REPAIRS} repair turn(s): ${check.problems.join('; ')}`);
  return { kind: 'done', output: check.output };
}

/**
 * escalate → `uncertain`. Every call of that assistant message gets a tool reply first, so the
 * checkpointed conversation is one a provider accepts when the run resumes with the person's answer.
 */
async function escalate(ctx: AgentContext, state: LoopState, call: ToolCall, escalation: EscalateArgs): Promise<unknown> {
  for (const pending of pendingToolCalls(state.messages)) {
    const content = pending.id === call.id ? 'Escalated to a person. Their answer, if any, follows as a message.' : toolError('not_run', 'the run escalated to a person before this call');
    state.messages.push(toolMessage(pending, content));
  }
  await ctx.checkpoint(state);
  return ctx.uncertain(escalation);
}
