import type { HandoffMessage, StopReason } from '../protocol/messages.js';
import type { ErrorCategory } from '../errors.js';
import { stderrCause } from './agent-process.js';
import type { RunOutcome } from './run-types.js';

/**
 * What a run's outcome is when its agent exited without one (no result, no
 * escalation): stopped by the daemon, failed because the model was
 * unavailable, or crashed. Pure.
 */
export interface ExitFacts {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the daemon stopped the agent, if it did. */
  stopReason: StopReason | null;
  /** The run's interrupt reason (`lock_lost` when the lease was lost). */
  interruptReason: unknown;
  handoff: HandoffMessage | null;
  /** Set when the model was unavailable or refused for good. */
  unavailable: { category: ErrorCategory; message: string } | null;
  stderrTail: string[];
  /** Why the process could not be started at all (AgentProcess.startFailure), if so. */
  startFailure?: string | null;
}

export function exitOutcome(facts: ExitFacts): RunOutcome {
  const { code, signal, stopReason, handoff, unavailable } = facts;
  if (stopReason === 'shutdown') {
    const reason = facts.interruptReason === 'lock_lost' ? 'lock_lost' : 'shutdown';
    return { kind: 'interrupted', reason, handoff };
  }
  if (stopReason) return { kind: 'limit', reason: stopReason, handoff };
  // An agent that gave up after the model was unavailable failed for that reason.
  if (unavailable) return { kind: 'failed', category: unavailable.category, message: unavailable.message };
  if (facts.startFailure) return { kind: 'failed', category: 'crash', message: `agent could not start: ${facts.startFailure}` };
  const stderrTail = facts.stderrTail;
  const tail = stderrTail.length > 0 ? { stderrTail } : {};
  if (code === 0) return { kind: 'failed', category: 'crash', message: 'agent exited without a result', ...tail };
  const cause = stderrCause(stderrTail);
  return { kind: 'failed', category: 'crash', message: `agent exited with ${signal ? `signal ${signal}` : `code ${code}`}${cause ? `; stderr: ${cause.trim()}` : ''}`, ...tail };
}
