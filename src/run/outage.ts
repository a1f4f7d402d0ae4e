/**
 * An outage is not the task's fault (README.md, "Model outages"): a run that
 * ended because its model was unavailable counts no attempt and never
 * dead-letters; the agent's work waits for the model's circuit, and once the
 * cooldown has passed one claim per model makes the half-open probe while
 * the others wait for its answer, so recovery comes without a burst.
 */

/** When a task that met an outage may be claimed again: when the circuit lets a probe through, and not before `minDelayMs`. Pure. */
export function outageRetryAt(readyAtMs: number | null, nowMs: number, minDelayMs: number): number {
  return Math.max(readyAtMs ?? 0, nowMs + minDelayMs);
}

export type ModelGate = { kind: 'go'; probe: string | null } | { kind: 'wait'; untilMs: number };

export interface CircuitView {
  /** closed, open or half_open, as the gateway reports it now. */
  state(model: string): string;
  /** When an open circuit lets a probe through; null otherwise. */
  readyAt(model: string): number | null;
  /** A claim of this daemon holds the model's half-open probe. */
  probing(model: string): boolean;
}

/**
 * Pure: may a run of an agent whose models are `chain` (model, then
 * fallbacks) start now? The first model that can take a call decides; a
 * half-open one is taken as this claim's probe.
 */
export function gateModels(chain: string[], circuits: CircuitView, nowMs: number, pollMs: number): ModelGate {
  if (chain.length === 0) return { kind: 'go', probe: null };
  let untilMs = Infinity;
  for (const model of chain) {
    const state = circuits.state(model);
    if (state === 'closed') return { kind: 'go', probe: null };
    if (state === 'half_open' && !circuits.probing(model)) return { kind: 'go', probe: model };
    const readyAt = state === 'open' ? circuits.readyAt(model) : null;
    untilMs = Math.min(untilMs, readyAt ?? nowMs + pollMs); // a probe in flight: look again soon
  }
  return { kind: 'wait', untilMs: Math.max(untilMs, nowMs + 1) };
}
