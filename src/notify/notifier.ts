import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import type { NotifyHook } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { appendJsonLine, readJsonLines } from '../store/durable.js';
import { onOutboxWritten, readAllOutboxes } from '../store/outbox.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../store/paths.js';
import { backoffMs, emptyLedger, isDue, owedDeliveries, record, type Delivery, type Ledger, type NotifyLogLine } from './plan.js';
import { send } from './send.js';

/** How often outbox.json files are checked for changes made by other processes (the CLI, a person's editor), ms. */
export const NOTIFY_SCAN_MS = 1000;
/** Attempts in flight per hook: a slow hook delays its own deliveries, never another hook's. */
const PER_HOOK_IN_FLIGHT = 4;

/**
 * Delivers outbox items to the `notify:` hooks (README "Notifications").
 * What is owed comes from outbox.json against state/notify.jsonl, read at
 * start, so nothing depends on memory that a kill -9 loses. Runs beside the
 * scheduler: nothing here is awaited by a run.
 */
export class Notifier {
  private ledger: Ledger = emptyLedger();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  /** Outbox mtimes at the last scan: a scan with nothing changed and nothing due reads no file. */
  private lastFingerprint = '';
  private nextDueAt = Infinity;
  private scanning = false;
  private rescan = false;

  constructor(
    private readonly paths: HomePaths,
    private hooks: NotifyHook[],
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly scanMs = NOTIFY_SCAN_MS,
  ) {}

  /** Read the log, note new hooks, and deliver what is owed. */
  async start(): Promise<void> {
    for (const line of await readJsonLines<NotifyLogLine>(this.paths.notifyLog())) record(this.ledger, line);
    await this.addNewHooks();
    this.unsubscribe = onOutboxWritten(() => this.poke());
    this.timer = setInterval(() => this.poke(), this.scanMs);
    this.timer.unref();
    this.poke();
  }

  /** agentd.yaml reloaded: new hooks start from now. */
  async setHooks(hooks: NotifyHook[]): Promise<void> {
    this.hooks = hooks;
    await this.addNewHooks();
    this.lastFingerprint = '';
    this.poke();
  }

  /** Stop scanning and abandon attempts in flight (they are made again after a restart). Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.abort.abort();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Scan soon; never blocks the caller, never throws. */
  poke(): void {
    if (this.abort.signal.aborted) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    this.scan()
      .catch((err: unknown) => this.log.warn({ err }, 'notification scan failed'))
      .finally(() => {
        this.scanning = false;
        if (this.rescan) {
          this.rescan = false;
          this.poke();
        }
      });
  }

  private async addNewHooks(): Promise<void> {
    for (const hook of this.hooks) {
      if (this.ledger.hookSince.has(hook.name)) continue;
      const line: NotifyLogLine = { v: 1, type: 'hook_added', hook: hook.name, at: new Date(this.clock.now()).toISOString() };
      await appendJsonLine(this.paths.notifyLog(), line);
      record(this.ledger, line);
    }
  }

  private async scan(): Promise<void> {
    if (this.hooks.length === 0) return;
    const now = this.clock.now();
    const fingerprint = await this.outboxFingerprint();
    if (fingerprint === this.lastFingerprint && now < this.nextDueAt) return;
    this.lastFingerprint = fingerprint;
    const { items } = await readAllOutboxes(this.paths);
    this.nextDueAt = Infinity;
    for (const delivery of owedDeliveries(items, this.hooks, this.ledger)) {
      if (this.inFlight.has(delivery.id)) continue;
      if (!isDue(this.ledger, delivery.id, now)) {
        this.nextDueAt = Math.min(this.nextDueAt, this.ledger.failed.get(delivery.id)!.nextAt);
        continue;
      }
      if (this.inFlightFor(delivery.hook.name) >= PER_HOOK_IN_FLIGHT) {
        this.nextDueAt = now; // the rest waits for a free slot: look again at the next tick
        continue;
      }
      const attempt = this.attempt(delivery).finally(() => {
        this.inFlight.delete(delivery.id);
        this.poke(); // a freed slot or a failure's next attempt
      });
      this.inFlight.set(delivery.id, attempt);
    }
  }

  private inFlightFor(hook: string): number {
    let n = 0;
    for (const id of this.inFlight.keys()) if (id.endsWith(`/${hook}`)) n++;
    return n;
  }

  /** One attempt, recorded in state/notify.jsonl whatever happens (unless the daemon is stopping). */
  private async attempt(delivery: Delivery): Promise<void> {
    const started = this.clock.now();
    const outcome = await send(delivery, { cwd: this.paths.root, timeoutMs: delivery.hook.timeoutMs, signal: this.abort.signal });
    if (this.abort.signal.aborted) return;
    const at = this.clock.now();
    const attempt = (this.ledger.failed.get(delivery.id)?.attempts ?? 0) + 1;
    const base = {
      v: 1 as const,
      type: 'attempt' as const,
      at: new Date(at).toISOString(),
      delivery_id: delivery.id,
      hook: delivery.hook.name,
      event: delivery.event,
      item_id: delivery.item.id,
      agent: delivery.item.agent,
      kind: delivery.item.kind,
      attempt,
      duration_ms: at - started,
      ...(outcome.httpStatus !== undefined ? { http_status: outcome.httpStatus } : {}),
    };
    const line: NotifyLogLine = outcome.ok
      ? { ...base, outcome: 'delivered' }
      : { ...base, outcome: 'failed', error: outcome.error, next_attempt_at: new Date(at + backoffMs(attempt, delivery.hook.retry)).toISOString() };
    try {
      await appendJsonLine(this.paths.notifyLog(), line);
    } catch (err) {
      // Not recorded: the delivery stays owed and is made again (the receiver drops the duplicate by its id).
      this.log.error({ err, delivery_id: delivery.id }, 'could not record a notification');
      return;
    }
    record(this.ledger, line);
    if (line.next_attempt_at) this.nextDueAt = Math.min(this.nextDueAt, Date.parse(line.next_attempt_at));
    if (outcome.ok) this.log.info({ delivery_id: delivery.id, hook: delivery.hook.name, attempt }, 'notification delivered');
    else this.log.warn({ delivery_id: delivery.id, hook: delivery.hook.name, attempt, problem: outcome.error, next_attempt_at: line.next_attempt_at }, 'notification failed, will retry');
  }

  /** The mtime of every outbox.json: cheap to take, and any write changes it. */
  private async outboxFingerprint(): Promise<string> {
    const root = this.paths.outboxRoot();
    const agents = await fs.readdir(root).catch(() => [] as string[]);
    const parts: string[] = [];
    for (const agent of agents.sort()) {
      if (agent.startsWith('.') || !isValidName(agent) || isReservedAgentName(agent)) continue;
      const stat = await fs.stat(this.paths.outboxFile(agent)).catch(() => null);
      if (stat) parts.push(`${agent}:${stat.mtimeMs}:${stat.size}`);
    }
    return parts.join('|');
  }
}
