import type { AgentDefinition } from '../config/types.js';
import { planDelivery } from '../core/boot-plan.js';
import { toStored, addSpend } from '../core/spend.js';
import type { CheckpointOwner } from '../store/checkpoint.js';
import { applyEffects, type EffectPorts } from '../store/effects.js';
import type { JournalSpend, TaskJournal } from '../store/journal.js';
import type { OutboxItem } from '../store/outbox.js';
import { registerGroup } from '../store/process-registry.js';
import type { RunTrigger } from '../store/checkpoint.js';
import { writeContext } from './context.js';
import type { RunRecords } from './run-types.js';

/**
 * The records port of one run (run-types.ts `RunRecords`), onto the store:
 * the task's journal, its checkpoint (through its one owner), the context
 * snapshot, and the hand-over of a person's resolutions. Each write is fenced
 * with the agent's lease, as every write of a run is.
 */

export interface RunRecordsOf {
  ports: EffectPorts;
  agent: AgentDefinition;
  taskId: string;
  runId: string;
  trigger: RunTrigger;
  journal: TaskJournal;
  checkpoint: CheckpointOwner;
  /** The task's spend before this run: the floor a checkpoint adds this run's spend to. */
  spentBefore: JournalSpend;
  /** Resolutions handed to the agent in its start message. */
  delivered: OutboxItem[];
  now: () => number;
}

export function runRecords(of: RunRecordsOf): RunRecords {
  const { ports, agent, checkpoint } = of;
  return {
    journal: (record, sync) => of.journal.append(record, sync),
    totals: () => of.journal.totals(),
    close: () => of.journal.close(),
    started: async (pid) => {
      await ports.fence?.();
      if (pid) await registerGroup(ports.paths, agent.name, pid, 'agent', of.runId);
      // Not a write of its own: after a crash the claim kills the group from the registry (pids.jsonl),
      // so the pid goes into checkpoint.json with the run's next write (README.md, Benchmark: P3).
      checkpoint.hold((c) => ({ ...c, active_run: { ...c.active_run!, pid } }));
      // Audited once the agent has its start message: the claim's disk work stays off the pick-up path.
      await applyEffects(ports, planDelivery({ ...of, agent: agent.name, definitionHash: agent.hash }, checkpoint.current.attempts + 1, of.now()));
    },
    checkpoint: async ({ state, context, hasContext, seq, runSpend }) => {
      await ports.fence?.();
      const at = new Date(of.now());
      await checkpoint.update((c) => ({ ...c, state, checkpoint_at: at.toISOString(), checkpoint_seq: seq, spend: toStored(addSpend(of.spentBefore, runSpend)) }));
      if (hasContext) await writeContext(ports.paths, agent.name, context, at);
    },
  };
}
