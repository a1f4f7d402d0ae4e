import { formatDuration } from '../config/duration.js';
import type { DaemonStatusCircuit, DaemonStatusFile } from '../store/daemon-status.js';

/**
 * One frame of `agentd top` (README "agentd top"), pure: what the daemon's
 * snapshot and the home say, as lines fitting `width` columns.
 */

export interface TopAgent {
  name: string;
  inbox: number;
  openItems: number;
  deadLetters: number;
}

export interface TopFacts {
  home: string;
  now: number;
  /** The running daemon's snapshot, or null when no daemon is running. */
  daemon: DaemonStatusFile | null;
  agents: TopAgent[];
}

const pad = (text: string | number, n: number) => String(text).slice(0, n).padEnd(n);
const rpad = (text: string | number, n: number) => String(text).slice(0, n).padStart(n);
const usd = (n: number) => `$${n.toFixed(n >= 1 ? 2 : 4)}`;

function bar(value: number, max: number, width: number): string {
  const filled = max > 0 ? Math.min(width, Math.round((width * value) / max)) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function renderTop(facts: TopFacts, width: number): string[] {
  const d = facts.daemon;
  const clock = new Date(facts.now).toISOString().slice(11, 19);
  const lines = [
    `agentd top  ${facts.home}  ${clock} UTC   (q to quit)`,
    d ? `daemon ${d.state}  pid ${d.pid}  up ${formatDuration(d.uptime_ms)}  spend today ${usd(d.spend_today_usd.total)}` : 'daemon not running: agentd start',
    '',
    'AGENTS',
    `  ${pad('AGENT', 20)} ${pad('STATE', 20)} ${rpad('INBOX', 5)} ${rpad('OPEN', 5)} ${rpad('DLQ', 4)} ${rpad('SPEND TODAY', 12)}`,
  ];
  for (const a of facts.agents) {
    const run = d?.runs.find((r) => r.agent === a.name);
    const state = run ? 'running' : a.openItems > 0 ? 'waiting for a person' : a.inbox > 0 ? 'queued' : 'idle';
    lines.push(`  ${pad(a.name, 20)} ${pad(state, 20)} ${rpad(a.inbox, 5)} ${rpad(a.openItems, 5)} ${rpad(a.deadLetters, 4)} ${rpad(usd(d?.spend_today_usd.agents[a.name] ?? 0), 12)}`);
  }
  if (facts.agents.length === 0) lines.push('  (no agents)');
  lines.push('', 'RUNS IN FLIGHT');
  const runs = d?.runs ?? [];
  if (runs.length === 0) lines.push('  (none)');
  for (const r of runs) {
    const elapsed = formatDuration(Math.max(0, facts.now - Date.parse(r.started_at)));
    lines.push(`  ${pad(r.agent, 16)} ${pad(r.task_id, 18)} ${rpad(elapsed, 7)}  steps ${bar(r.task_steps, r.max_steps, 12)} ${r.task_steps}/${r.max_steps}  tools ${r.tool_calls}  tokens ${r.input_tokens + r.output_tokens}  ${usd(r.task_cost_usd)}/${usd(r.max_cost_usd)}`);
  }
  lines.push('', 'CIRCUITS');
  const circuits: [string, string, DaemonStatusCircuit['state'], number][] = [
    ...(d?.circuits ?? []).map((c) => ['model', c.model, c.state, c.failures] as [string, string, DaemonStatusCircuit['state'], number]),
    ...(d?.tool_circuits ?? []).map((c) => ['tool', c.tool, c.state, c.failures] as [string, string, DaemonStatusCircuit['state'], number]),
  ];
  if (circuits.length === 0) lines.push('  (no model or tool called yet)');
  for (const [what, name, state, failures] of circuits) lines.push(`  ${pad(what, 6)} ${pad(name, 30)} ${pad(state, 10)} failures ${failures}`);
  return lines.map((l) => (l.length > width ? l.slice(0, Math.max(1, width - 1)) + '…' : l));
}
