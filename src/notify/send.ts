import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { NotifyTarget } from '../config/types.js';
import { killGroup, resolveExecutable, scrubbedEnv } from '../run/agent-process.js';
import type { Delivery } from './plan.js';

/**
 * One attempt at one delivery (README "Notifications"): a command gets the
 * item as JSON on stdin, a webhook a POST of it (or `{text}` for Slack). Both
 * carry the delivery id. Never throws: every failure is an outcome.
 */

export type SendOutcome = { ok: true; httpStatus?: number } | { ok: false; error: string; httpStatus?: number };

export interface SendOptions {
  /** The home: a command's working directory. */
  cwd: string;
  timeoutMs: number;
  /** Aborted when the daemon stops: the attempt is dropped, not recorded, and made again after a restart. */
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export function send(delivery: Delivery, options: SendOptions): Promise<SendOutcome> {
  const target = delivery.hook.target;
  return target.kind === 'command' ? sendCommand(target, delivery, options) : sendWebhook(target, delivery, options);
}

async function sendCommand(target: Extract<NotifyTarget, { kind: 'command' }>, delivery: Delivery, options: SendOptions): Promise<SendOutcome> {
  const [cmd, ...rest] = target.command;
  const env = scrubbedEnv(target.env, { AGENTD_DELIVERY_ID: delivery.id, AGENTD_EVENT: delivery.event, AGENTD_HOOK: delivery.hook.name }, options.env);
  let child;
  try {
    child = spawn(resolveExecutable(cmd!, options.cwd), rest, { cwd: options.cwd, env, detached: true, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    return { ok: false, error: `could not start ${cmd}: ${(err as Error).message}` };
  }
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 2000) stderr += chunk;
  });
  child.stdin.on('error', () => undefined); // a hook that does not read its stdin is fine
  child.stdin.end(JSON.stringify(delivery.item) + '\n');
  let stopped: string | null = null;
  const kill = (why: string) => {
    stopped ??= why;
    if (child.pid) killGroup(child.pid, 'SIGKILL');
  };
  const timer = setTimeout(() => kill(`timed out after ${options.timeoutMs}ms`), options.timeoutMs);
  const onAbort = () => kill('aborted');
  options.signal.addEventListener('abort', onAbort);
  const code = await new Promise<number | string>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('close', (c, signal) => resolve(c ?? `killed by ${signal}`));
  });
  clearTimeout(timer);
  options.signal.removeEventListener('abort', onAbort);
  if (child.pid) killGroup(child.pid, 'SIGKILL'); // nothing it started outlives it
  if (stopped) return { ok: false, error: stopped };
  if (code === 0) return { ok: true };
  const why = typeof code === 'number' ? `exited with code ${code}` : code;
  return { ok: false, error: `${why}${stderr.trim() ? `: ${stderr.trim().slice(0, 300)}` : ''}` };
}

/** The Slack incoming-webhook body: one line a person reads in a channel. */
export function slackText(delivery: Delivery): string {
  const { item, event } = delivery;
  const head = event === 'opened' ? `agentd: ${item.kind} item for ${item.agent}` : `agentd: ${item.kind} item for ${item.agent} resolved`;
  const what = item.question ?? item.reason;
  const decided = event === 'resolved' && item.resolution ? ` — ${item.resolution.decision} by ${item.resolution.by ?? '?'}` : '';
  return `${head} (${item.id}): ${what}${decided}`;
}

function sendWebhook(target: Extract<NotifyTarget, { kind: 'webhook' }>, delivery: Delivery, options: SendOptions): Promise<SendOutcome> {
  const body = JSON.stringify(target.format === 'slack' ? { text: slackText(delivery) } : delivery.item);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'idempotency-key': delivery.id,
    'x-agentd-delivery': delivery.id,
    'x-agentd-event': delivery.event,
  };
  const env = options.env ?? process.env;
  for (const [name, variable] of Object.entries(target.headers)) {
    const value = env[variable];
    if (value === undefined) return Promise.resolve({ ok: false, error: `header ${name}: environment variable ${variable} is not set` });
    headers[name.toLowerCase()] = value;
  }
  return new Promise<SendOutcome>((resolve) => {
    const client = target.url.startsWith('https:') ? https : http;
    const req = client.request(target.url, { method: 'POST', headers, timeout: options.timeoutMs, signal: options.signal }, (res) => {
      res.resume(); // the body does not matter, only the status
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 300 ? { ok: true, httpStatus: status } : { ok: false, error: `HTTP ${status}`, httpStatus: status });
      });
      res.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${options.timeoutMs}ms`)));
    req.on('error', (err) => resolve({ ok: false, error: options.signal.aborted ? 'aborted' : err.message }));
    req.end(body);
  });
}
