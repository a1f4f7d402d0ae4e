import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HistoryLine } from '../src/store/history.js';

/**
 * `node dist/bench/stats-history.js [lines] [agents]`: how long `agentd stats`
 * takes over a long history. Writes `lines` history lines (default 100,000)
 * spread over `agents` agents (default 10) and the last 7 days into a temporary
 * home, then times the built CLI as a user runs it (wall time, node start
 * included; `agentd --version` is the baseline for that start). KEEP=1 keeps
 * the home for a closer look.
 */

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const lines = Number(process.argv[2] ?? 100_000);
const agents = Number(process.argv[3] ?? 10);
const SPAN_MS = 7 * 86_400_000;
const STATUSES: HistoryLine['status'][] = ['done', 'done', 'done', 'done', 'done', 'done', 'failed', 'escalated', 'limit', 'interrupted'];
const CATEGORIES: Record<string, string | null> = { done: null, failed: 'rate_limit', escalated: null, limit: 'budget', interrupted: 'crash' };

/** A small deterministic generator, so two runs write the same history. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

async function writeHistory(root: string): Promise<void> {
  const rnd = random(42);
  const now = Date.now();
  const perAgent = Math.ceil(lines / agents);
  for (let a = 0; a < agents; a++) {
    const agent = `agent-${a}`;
    const out: string[] = [];
    for (let i = 0; i < perAgent && a * perAgent + i < lines; i++) {
      const started = now - SPAN_MS + Math.floor((i / perAgent) * SPAN_MS);
      const duration = Math.floor(200 + rnd() * 20_000);
      const status = STATUSES[Math.floor(rnd() * STATUSES.length)]!;
      const calls = 1 + Math.floor(rnd() * 5);
      const line: HistoryLine = {
        v: 1,
        run_id: `r-${a}-${i}`,
        task_id: `t-${i}`,
        agent,
        trigger: 'inbox',
        started_at: new Date(started).toISOString(),
        ended_at: new Date(started + duration).toISOString(),
        duration_ms: duration,
        status,
        steps: calls,
        tool_calls: Math.floor(rnd() * 4),
        tokens: { input: Math.floor(rnd() * 4000), output: Math.floor(rnd() * 800) },
        cost_usd: rnd() * 0.01,
        error_category: CATEGORIES[status] ?? null,
        error: CATEGORIES[status] ? 'something failed' : null,
        models: ['openai/gpt-4o-mini'],
        agent_version: '1',
        definition_hash: 'f'.repeat(64),
        definition_changed: false,
        degraded: false,
        model_latency_ms: Array.from({ length: calls }, () => Math.floor(100 + rnd() * 3000)),
      };
      out.push(JSON.stringify(line));
    }
    await fs.mkdir(path.join(root, 'state', agent), { recursive: true });
    await fs.writeFile(path.join(root, 'state', agent, 'history.jsonl'), out.join('\n') + '\n');
  }
}

function time(args: string[], root: string): { ms: number; out: string } {
  const best: number[] = [];
  let out = '';
  for (let i = 0; i < 3; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [CLI, ...args, '--home', root], { encoding: 'utf8' });
    best.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`agentd ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    out = r.stdout;
  }
  return { ms: Math.min(...best), out };
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-stats-bench-'));
try {
  await writeHistory(root);
  let bytes = 0;
  for (const agent of await fs.readdir(path.join(root, 'state'))) bytes += (await fs.stat(path.join(root, 'state', agent, 'history.jsonl'))).size;
  process.stdout.write(`${lines} history lines over ${agents} agents, ${(bytes / 1e6).toFixed(1)} MB\n`);
  const baseline = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
  if (baseline.status !== 0) throw new Error('agentd --version failed');
  const rows: [string, string[]][] = [
    ['agentd --version (node start)', ['--version']],
    ['agentd stats --json', ['stats', '--json']],
    ['agentd stats', ['stats']],
    ['agentd stats --since 1h --json', ['stats', '--since', '1h', '--json']],
    ['agentd stats --since 1d --json', ['stats', '--since', '1d', '--json']],
    ['agentd stats --agent agent-0 --json', ['stats', '--agent', 'agent-0', '--json']],
  ];
  for (const [label, args] of rows) {
    const { ms, out } = args[0] === '--version' ? { ms: time(['--version'], root).ms, out: '' } : time(args, root);
    const runs = args.includes('--json') ? (JSON.parse(out) as { total: { runs: number } }).total.runs : null;
    process.stdout.write(`${label.padEnd(40)} ${ms.toFixed(0).padStart(6)} ms (best of 3)${runs !== null ? `  ${runs} runs counted` : ''}\n`);
  }
} finally {
  if (!process.env.KEEP) await fs.rm(root, { recursive: true, force: true });
  else process.stdout.write(`kept ${root}\n`);
}
