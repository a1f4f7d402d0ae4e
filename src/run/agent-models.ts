import type { RetryPolicy } from '../config/types.js';
import type { ModelCaller } from './run-types.js';

/**
 * The model caller one run uses: every call carries the agent's own `retry:`
 * (README "Agent definitions"; already merged over `defaults.retry` when the
 * definition loaded), so the gateway never falls back to the daemon-wide
 * policy for an agent that set its own.
 */
export function withAgentRetry(models: ModelCaller, retry: RetryPolicy): ModelCaller {
  const caller: ModelCaller = { call: (call) => models.call({ ...call, retry: call.retry ?? retry }) };
  if (models.circuitState) caller.circuitState = (model) => models.circuitState!(model);
  return caller;
}
