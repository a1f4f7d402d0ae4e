import { createHash } from 'node:crypto';

/**
 * The key a tool sees in AGENTD_IDEMPOTENCY_KEY: the same for the same call
 * (agent, task, position in the task's journal, tool), so a re-run after a
 * crash can be recognised by the tool or the service behind it.
 */
export function idempotencyKey(agent: string, taskId: string, seq: number, name: string): string {
  return createHash('sha256').update(`${agent}\0${taskId}\0${seq}\0${name}`).digest('hex').slice(0, 32);
}
