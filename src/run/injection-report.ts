import type { AgentDefinition } from '../config/types.js';
import type { OutboxItem } from '../store/outbox.js';
import { raise } from '../core/effects.js';
import { raiseOutboxItem } from '../store/effects.js';
import type { RunnerDeps } from './runner.js';
import type { SuspectedInjection } from './taint.js';

/**
 * Tell a person that content which looks like an injected instruction
 * entered a run: an outbox item `suspected_injection` (it does not hold the
 * task back) and a line in the audit trail. The same content from the same
 * place is reported once per task, however often a resume replays it.
 */
export async function reportSuspectedInjection(
  deps: Pick<RunnerDeps, 'paths' | 'clock' | 'audit' | 'log'>,
  agent: AgentDefinition,
  taskId: string,
  runId: string,
  found: SuspectedInjection[],
): Promise<void> {
  const first = found[0];
  if (!first) return;
  const fingerprint = found.map((f) => f.fingerprint).join(',');
  const known = (items: OutboxItem[]) => items.some((i) => i.kind === 'suspected_injection' && i.task_id === taskId && (i.details as { fingerprint?: string } | undefined)?.fingerprint === fingerprint);
  const item = {
    kind: 'suspected_injection' as const,
    agent: agent.name,
    task_id: taskId,
    run_id: runId,
    created_at: new Date(deps.clock.now()).toISOString(),
    reason: `content from the ${first.source} looks like an injected instruction (${[...new Set(found.map((f) => f.rule))].join(', ')}): ${first.excerpt}`,
    question: "From now on this task's write and irreversible tool calls wait for your approval; read tools still run. Resolve this item to acknowledge it.",
    details: {
      source: first.source,
      findings: found.map((f) => ({ path: f.path, rule: f.rule, hidden_by: f.hiddenBy, excerpt: f.excerpt })),
      fingerprint,
    },
  };
  const log = { msg: 'suspected injection reported to the outbox', fields: { task_id: taskId, run_id: runId, source: first.source } };
  await raiseOutboxItem(deps, raise(item, log, { event: 'escalation', details: { kind: 'suspected_injection', source: first.source } }), known);
}
