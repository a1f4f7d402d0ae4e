import type { NotifyHook } from '../config/types.js';
import type { OutboxItem } from '../store/outbox.js';

/**
 * Which notifications are owed, decided from outbox.json and state/notify.jsonl
 * alone (README "Notifications"), so a daemon killed between writing an item
 * and delivering it owes the same deliveries after a restart. Pure.
 */

export type NotifyEvent = 'opened' | 'resolved';

/** One line of state/notify.jsonl. */
export type NotifyLogLine =
  /** A hook seen for the first time: items from before it are not its business. */
  | { v: 1; type: 'hook_added'; hook: string; at: string }
  | {
      v: 1;
      type: 'attempt';
      at: string;
      delivery_id: string;
      hook: string;
      event: NotifyEvent;
      item_id: string;
      agent: string;
      kind: string;
      attempt: number;
      outcome: 'delivered' | 'failed';
      duration_ms: number;
      error?: string;
      http_status?: number;
      /** When the next attempt is due (failed only). */
      next_attempt_at?: string;
    };

export interface Delivery {
  /** `<item id>/<event>/<hook>`: the same for every attempt, so a receiver can drop duplicates. */
  id: string;
  hook: NotifyHook;
  event: NotifyEvent;
  item: OutboxItem;
}

/** What the log says so far about each delivery and hook. */
export interface Ledger {
  delivered: Set<string>;
  /** Failed attempts so far and when the next one is due (epoch ms). */
  failed: Map<string, { attempts: number; nextAt: number }>;
  /** Epoch ms each hook was first seen. */
  hookSince: Map<string, number>;
}

export function deliveryId(itemId: string, event: NotifyEvent, hook: string): string {
  return `${itemId}/${event}/${hook}`;
}

export function emptyLedger(): Ledger {
  return { delivered: new Set(), failed: new Map(), hookSince: new Map() };
}

/** Fold one log line into the ledger (the notifier does the same with each line it writes). */
export function record(ledger: Ledger, line: NotifyLogLine): void {
  if (line.type === 'hook_added') {
    if (!ledger.hookSince.has(line.hook)) ledger.hookSince.set(line.hook, Date.parse(line.at));
    return;
  }
  if (line.outcome === 'delivered') {
    ledger.delivered.add(line.delivery_id);
    ledger.failed.delete(line.delivery_id);
    return;
  }
  const nextAt = line.next_attempt_at ? Date.parse(line.next_attempt_at) : Date.parse(line.at);
  ledger.failed.set(line.delivery_id, { attempts: line.attempt, nextAt });
}

/** When an event happened; an item without a resolution time counts from its creation. */
function eventAt(item: OutboxItem, event: NotifyEvent): number {
  return Date.parse(event === 'opened' ? item.created_at : (item.resolution?.at ?? item.created_at));
}

/** Every delivery not yet made, oldest event first. */
export function owedDeliveries(items: OutboxItem[], hooks: NotifyHook[], ledger: Ledger): Delivery[] {
  const owed: { at: number; delivery: Delivery }[] = [];
  for (const hook of hooks) {
    const since = ledger.hookSince.get(hook.name) ?? Infinity;
    for (const item of items) {
      if (hook.kinds && !hook.kinds.includes(item.kind)) continue;
      for (const event of hook.on) {
        if (event === 'resolved' && item.status !== 'resolved') continue;
        const at = eventAt(item, event);
        if (!(at >= since)) continue; // before the hook existed (or a date nobody can read)
        const id = deliveryId(item.id, event, hook.name);
        if (!ledger.delivered.has(id)) owed.push({ at, delivery: { id, hook, event, item } });
      }
    }
  }
  return owed.sort((a, b) => a.at - b.at).map((o) => o.delivery);
}

/** The wait after `attempts` failed attempts: doubling from base, capped at max. */
export function backoffMs(attempts: number, retry: NotifyHook['retry']): number {
  const exp = Math.min(30, Math.max(0, attempts - 1));
  return Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** exp);
}

/** Due now: never tried, or its backoff has passed. */
export function isDue(ledger: Ledger, id: string, now: number): boolean {
  const failed = ledger.failed.get(id);
  return !failed || failed.nextAt <= now;
}
