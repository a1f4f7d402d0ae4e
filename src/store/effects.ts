import type { Logger } from 'pino';
import type { AuditEntry } from '../observe/audit.js';
import { auditOfRaised, type Effect, type LogLine, type RaiseItem } from '../core/effects.js';
import type { HomePaths } from './paths.js';
import type { CheckpointOwner } from './checkpoint.js';
import { writeJsonAtomic } from './durable.js';
import { addOutboxItem, markDelivered, newItemId, updateOutbox, type OutboxItem } from './outbox.js';
import { completeTask, deadLetterTask } from './current-task.js';

/**
 * The one interpreter of a claim's effects (core/effects.ts): each is
 * written in the order the plan gives. Writes a person or another daemon
 * reads next (an outbox item, the handoff) are fenced with the agent's lease
 * first, so none happens after the lease is lost.
 */

export interface RecordPorts {
  paths: HomePaths;
  /** Appends to the audit trail (state/audit.jsonl). */
  audit(entry: AuditEntry): Promise<void>;
  log: Pick<Logger, LogLine['level']>;
  /** Throws LeaseLostError once the agent's lock is no longer this daemon's. */
  fence?: () => Promise<void>;
}

export interface EffectPorts extends RecordPorts {
  agent: string;
  /** The claimed task file's bytes, which completing or dead-lettering it checks. */
  claimed: Buffer;
  checkpoint: CheckpointOwner;
}

export async function applyEffects(ports: EffectPorts, effects: readonly Effect[]): Promise<void> {
  for (const effect of effects) await applyEffect(ports, effect);
}

async function applyEffect(ports: EffectPorts, effect: Effect): Promise<void> {
  const { paths, agent } = ports;
  switch (effect.type) {
    case 'checkpoint':
      return ports.checkpoint.write(effect.checkpoint);
    case 'raise':
      await ports.fence?.();
      await raiseOutboxItem(ports, effect);
      return;
    case 'complete':
      return completeTask(paths, agent, ports.claimed, effect.record);
    case 'dead_letter':
      return deadLetterTask(paths, agent, ports.claimed, effect.record);
    case 'handoff':
      await ports.fence?.();
      return writeJsonAtomic(paths.handoffFile(agent), effect.handoff);
    case 'deliver':
      return markDelivered(paths, agent, effect.itemIds, effect.at);
    case 'audit':
      return ports.audit(effect.entry);
    case 'log':
      return writeLog(ports.log, effect.line);
  }
}

/**
 * An outbox item, then its audit line and its log line (core/effects.ts `raise`).
 * `unless`: the item is not added when the outbox already says so (one alert
 * per day, one report per finding); then nothing is audited or logged and null comes back.
 */
export async function raiseOutboxItem(ports: Pick<RecordPorts, 'paths' | 'log'> & Partial<Pick<RecordPorts, 'audit'>>, effect: RaiseItem, unless?: (items: OutboxItem[]) => boolean): Promise<OutboxItem | null> {
  const item: OutboxItem = { id: newItemId(effect.item.agent), ...effect.item, status: 'open' };
  if (!unless) await addOutboxItem(ports.paths, item);
  else {
    const added = await updateOutbox(ports.paths, item.agent, (outbox) => {
      if (unless(outbox.items)) return false;
      outbox.items.push(item);
      return true;
    });
    if (!added) return null;
  }
  const audit = auditOfRaised(effect, item.id);
  if (audit) {
    if (!ports.audit) throw new Error(`an audited outbox item (${item.kind}) needs the audit trail`);
    await ports.audit(audit);
  }
  writeLog(ports.log, { ...effect.log, fields: { ...effect.log.fields, item_id: item.id } });
  return item;
}

function writeLog(log: RecordPorts['log'], line: LogLine): void {
  log[line.level](line.fields, line.msg);
}
