import type { ToolCircuitPolicy, ToolDefinition } from '../config/types.js';
import { formatDuration } from '../config/duration.js';
import { CircuitBreaker, type CircuitInfo } from './circuit-breaker.js';

/**
 * One circuit per tool, shared by every agent of the daemon (a tool from
 * agentd.yaml is one circuit for all; an agent's own tool is its own): the
 * model gateway's CircuitBreaker, keyed by tool. Pure over an injected clock.
 */

/** A shared tool is the same circuit for every agent; an agent's own tool is `<agent>/<tool>`. */
export function toolCircuitKey(agent: string, tool: Pick<ToolDefinition, 'name' | 'shared'>): string {
  return tool.shared ? tool.name : `${agent}/${tool.name}`;
}

export class ToolCircuits {
  private readonly breakers = new Map<string, { policy: ToolCircuitPolicy; breaker: CircuitBreaker }>();

  constructor(private readonly now: () => number) {}

  /** The breaker of `key`; a changed policy (a reloaded definition) starts a fresh one. */
  get(key: string, policy: ToolCircuitPolicy): CircuitBreaker {
    const known = this.breakers.get(key);
    if (known && samePolicy(known.policy, policy)) return known.breaker;
    const breaker = new CircuitBreaker(key, { failureThreshold: policy.failures, windowMs: policy.windowMs, cooldownMs: policy.cooldownMs }, this.now);
    this.breakers.set(key, { policy, breaker });
    return breaker;
  }

  /** Every tool circuit that has seen a call, sorted by key. */
  list(): CircuitInfo[] {
    return [...this.breakers.values()].map((b) => b.breaker.info()).sort((a, b) => a.model.localeCompare(b.model));
  }
}

function samePolicy(a: ToolCircuitPolicy, b: ToolCircuitPolicy): boolean {
  return a.failures === b.failures && a.windowMs === b.windowMs && a.cooldownMs === b.cooldownMs;
}

/** What the agent is told when the circuit refuses its call. */
/** How long until an open circuit lets a call through again, ms. */
export function circuitRetryInMs(info: CircuitInfo, policy: ToolCircuitPolicy, now: number): number {
  return info.opened_at === null ? policy.cooldownMs : Math.max(0, info.opened_at + policy.cooldownMs - now);
}

export function circuitOpenMessage(tool: string, info: CircuitInfo, policy: ToolCircuitPolicy, now: number): string {
  const retryInMs = circuitRetryInMs(info, policy, now);
  return (
    `circuit open for tool ${tool}: it failed ${policy.failures} times within ${formatDuration(policy.windowMs)}, ` +
    `so calls are refused for ${formatDuration(policy.cooldownMs)} (about ${formatDuration(retryInMs)} from now); it did not run`
  );
}
