import { parseDuration } from './duration.js';
import type { NotifyHook } from './types.js';

/** One `notify:` entry of agentd.yaml as written (validated by the schema first). */
export interface RawNotifyHook {
  command?: string[];
  webhook?: string;
  headers?: Record<string, string>;
  format?: 'json' | 'slack';
  env?: string[];
  kinds?: string[];
  on?: ('opened' | 'resolved')[];
  timeout?: string | number;
  retry?: { base_delay?: string | number; max_delay?: string | number };
}

/** Resolve `notify:` into hooks sorted by name, with every default filled; a hook with neither or both targets is a problem. */
export function resolveNotifyHooks(raw: Record<string, RawNotifyHook>, problems: string[] = []): NotifyHook[] {
  const entries = Object.entries(raw).filter(([name, h]) => {
    if (h.command && h.webhook) problems.push(`notify.${name} has both command and webhook: a hook is one or the other`);
    else if (!h.command && !h.webhook) problems.push(`notify.${name} needs a command or a webhook`);
    else return true;
    return false;
  });
  return entries
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, h]) => ({
      name,
      target: h.command
        ? { kind: 'command' as const, command: h.command, env: h.env ?? [] }
        : { kind: 'webhook' as const, url: h.webhook!, headers: h.headers ?? {}, format: h.format ?? 'json' },
      kinds: h.kinds ?? null,
      on: h.on ?? ['opened'],
      timeoutMs: h.timeout !== undefined ? parseDuration(h.timeout) : 10_000,
      retry: {
        baseDelayMs: h.retry?.base_delay !== undefined ? parseDuration(h.retry.base_delay) : 1000,
        maxDelayMs: h.retry?.max_delay !== undefined ? parseDuration(h.retry.max_delay) : 300_000,
      },
    }));
}

/** The env variables webhook headers are read from. */
export function notifyHeaderEnvs(hooks: NotifyHook[]): string[] {
  return hooks.flatMap((h) => (h.target.kind === 'webhook' ? Object.values(h.target.headers) : []));
}
