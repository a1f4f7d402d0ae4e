import type { AgentDefinition } from '../config/types.js';
import type { Logger } from '../observe/logger.js';
import type { CircuitInfo } from '../model/circuit-breaker.js';
import { readOutbox, updateOutbox, type OutboxItem } from '../store/outbox.js';
import { raise, type ItemDraft } from '../core/effects.js';
import { raiseOutboxItem } from '../store/effects.js';
import type { HomePaths } from '../store/paths.js';

/**
 * The outage alert (README.md, "Models"): when a model's circuit has stayed
 * open longer than `outage_alert`, one `provider_unavailable` item per model
 * (not per task) tells a person, in the outbox of the first agent, by name,
 * that uses the model. The daemon resolves it itself (`by: agentd`,
 * `continue`) once the circuit closes after a successful probe. The item has
 * no task: it holds no task back; the work already waits for the circuit.
 */

/** What is known of one model that is down: since when (first seen not closed), and whether its item is open. */
export interface OutageTrack {
  sinceMs: number;
  alerted: boolean;
}

export type OutageAlertAction = { kind: 'open'; model: string; sinceMs: number } | { kind: 'close'; model: string; sinceMs: number };

/**
 * Pure: the next tracks and what to write, from the circuits as they are now.
 * A failed probe re-opens a circuit (its `opened_at` moves on): the outage
 * counts from when it was first seen down, not from the last re-opening.
 */
export function outageAlertStep(
  tracks: ReadonlyMap<string, OutageTrack>,
  circuits: readonly CircuitInfo[],
  nowMs: number,
  alertMs: number,
): { tracks: Map<string, OutageTrack>; actions: OutageAlertAction[] } {
  const next = new Map<string, OutageTrack>();
  const actions: OutageAlertAction[] = [];
  const down = new Map(circuits.filter((c) => c.state !== 'closed').map((c) => [c.model, c]));
  for (const [model, track] of tracks) {
    if (!down.has(model) && track.alerted) actions.push({ kind: 'close', model, sinceMs: track.sinceMs });
  }
  for (const [model, circuit] of down) {
    const track = tracks.get(model) ?? { sinceMs: Math.min(circuit.opened_at ?? nowMs, nowMs), alerted: false };
    if (!track.alerted && nowMs - track.sinceMs >= alertMs) {
      actions.push({ kind: 'open', model, sinceMs: track.sinceMs });
      next.set(model, { ...track, alerted: true });
    } else next.set(model, track);
  }
  return { tracks: next, actions };
}

/** Pure: whose outbox gets a model's item: the first agent, by name, whose models include it. */
export function alertAgent(model: string, agents: readonly AgentDefinition[]): string | null {
  const users = agents.filter((a) => a.model === model || a.fallbackModels.includes(model) || a.models.includes(model));
  return users.map((a) => a.name).sort()[0] ?? null;
}

/** Pure: the item itself. */
export function outageItem(agent: string, model: string, sinceMs: number, nowMs: number): ItemDraft {
  const minutes = Math.max(1, Math.round((nowMs - sinceMs) / 60_000));
  return {
    kind: 'provider_unavailable',
    agent,
    task_id: null,
    run_id: null,
    created_at: new Date(nowMs).toISOString(),
    reason: `model ${model} has been unavailable since ${new Date(sinceMs).toISOString()} (about ${minutes} min); its circuit is open`,
    question: `Tasks that use ${model} wait for it and go on by themselves when it answers again; this item is resolved then. Check the provider, or its key and quota.`,
    details: { model, since: new Date(sinceMs).toISOString() },
  };
}

const isOutageItem = (i: OutboxItem, model: string) =>
  i.kind === 'provider_unavailable' && i.task_id === null && i.status === 'open' && (i.details as { model?: string } | undefined)?.model === model;

export interface OutageAlertDeps {
  paths: HomePaths;
  log: Logger;
  now: () => number;
  alertMs: () => number;
  circuits: () => CircuitInfo[];
  agents: () => AgentDefinition[];
}

/** The daemon's hook: looks at the circuits every `pollMs`, writes and closes the items. */
export class OutageAlerts {
  private tracks = new Map<string, OutageTrack>();
  private timer: NodeJS.Timeout | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly deps: OutageAlertDeps) {}

  start(): void {
    // A tenth of outage_alert, between 100 ms and 10 s: the circuits are in memory, a look costs nothing.
    const pollMs = Math.min(10_000, Math.max(100, Math.floor(this.deps.alertMs() / 10)));
    this.timer = setInterval(() => this.tick(), pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.writes;
  }

  tick(): void {
    const now = this.deps.now();
    const { tracks, actions } = outageAlertStep(this.tracks, this.deps.circuits(), now, this.deps.alertMs());
    this.tracks = tracks;
    for (const action of actions) {
      this.writes = this.writes
        .then(() => (action.kind === 'open' ? this.open(action.model, action.sinceMs, now) : this.close(action.model, now)))
        .catch((err: unknown) => this.deps.log.error({ err, model: action.model }, 'could not write the outage alert'));
    }
  }

  private async open(model: string, sinceMs: number, nowMs: number): Promise<void> {
    const agent = alertAgent(model, this.deps.agents());
    if (!agent) {
      this.deps.log.warn({ model }, 'model unavailable past outage_alert, and no agent names it: no outbox item');
      return;
    }
    const log = { msg: 'model unavailable past outage_alert; outbox item opened', fields: { model, agent, since: new Date(sinceMs).toISOString() } };
    // One per model, even across a restart; a notice, not a decision: no audit line.
    await raiseOutboxItem(this.deps, raise(outageItem(agent, model, sinceMs, nowMs), log, null), (items) => items.some((i) => isOutageItem(i, model)));
  }

  /** Every open item of the model is closed, wherever it is (one a restart left behind too). */
  private async close(model: string, nowMs: number): Promise<void> {
    for (const agent of this.deps.agents().map((a) => a.name)) {
      const outbox = await readOutbox(this.deps.paths, agent).catch(() => null);
      if (!outbox?.items.some((i) => isOutageItem(i, model))) continue;
      await updateOutbox(this.deps.paths, agent, (file) => {
        for (const item of file.items.filter((i) => isOutageItem(i, model))) {
          item.status = 'resolved';
          item.resolution = { decision: 'continue', by: 'agentd', at: new Date(nowMs).toISOString() };
        }
      });
      this.deps.log.info({ model, agent }, 'model available again; outage item resolved');
    }
  }
}
