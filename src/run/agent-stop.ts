import type { AgentProcess } from './agent-process.js';

/**
 * How a run's agent process is brought down: given a grace to exit on its
 * own (or to send its handoff after `stop`), then SIGTERM, then SIGKILL
 * (docs/protocol.md, `stop`).
 */

export const DEFAULT_KILL_GRACE_MS = 2000;

/** Waits `graceMs` for the process to exit, then SIGTERM, then after `killGraceMs` SIGKILL. */
export async function killAfter(agent: AgentProcess, graceMs: number, killGraceMs: number): Promise<void> {
  const exited = await raceTimeout(agent.exited, graceMs);
  if (exited) return;
  agent.kill('SIGTERM');
  if (await raceTimeout(agent.exited, killGraceMs)) return;
  agent.kill('SIGKILL');
}

/** After `stop`: waits the grace for a handoff (then briefly for the exit), then SIGTERM, then SIGKILL. */
export async function stopAfterHandoff(agent: AgentProcess, handoff: Promise<void>, hasHandoff: () => boolean, graceMs: number, killGraceMs: number): Promise<void> {
  const gotHandoff = await raceTimeout(Promise.race([handoff, agent.exited]), graceMs);
  if (gotHandoff && hasHandoff()) await raceTimeout(agent.exited, Math.min(graceMs, 1000));
  if (!agent.alive) return;
  agent.kill('SIGTERM');
  if (await raceTimeout(agent.exited, killGraceMs)) return;
  agent.kill('SIGKILL');
}

/** True when `promise` settled within `ms`. */
export async function raceTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
