import { spawn } from 'node:child_process';
import path from 'node:path';
import { OpenAIProvider } from '../src/model/provider-openai.js';
import { appendHeld, closeHeld } from '../src/store/held-append.js';
import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, appendMedianMs, cpuMs, fmt, fmtSpread, median, nowMs, spread, startStandIn, trackChild } from './support.js';

/**
 * P1 — what a model call costs through the daemon beyond the provider's own
 * time. One agent makes `steps` model calls through agentd, each next to the
 * same request sent straight to the same stand-in provider from the agent
 * process (order alternating). Overhead = median(through agentd) − median(direct).
 * The machine's limit: one fdatasync'd 1 KB append (open 'a', write, fdatasync,
 * close), median of many. Goal: overhead ≤ 4 × the append.
 *
 * To say what the overhead is made of, the same run also times, in the bench
 * process: the journal's own appends as a step makes them (src/store/held-append.ts
 * on the file the run holds open: `started` written, `completed` written and
 * fdatasynced), a line's round trip through a child's stdin/stdout, and the
 * daemon's provider client against a bare fetch.
 */
export async function stepOverhead(sizes: Sizes): Promise<FigureResult> {
  const standIn = await startStandIn();
  const home = await BenchHome.create({
    providers: { stand: { kind: 'openai', base_url: standIn.url } },
    max_parallel_runs: 1,
  });
  let daemon: DaemonChild | null = null;
  try {
    const append = appendMedianMs(home.root, sizes.appendSamples);
    await home.agent('stepper', {
      model: 'stand/echo',
      budget: { max_steps: 10_000, max_tokens: 50_000_000, max_runtime: '1h' },
    });
    // P1_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile the daemon of this figure alone.
    const nodeArgs = process.env.P1_DAEMON_NODE_ARGS?.split(' ').filter(Boolean);
    daemon = new DaemonChild(home, nodeArgs ? { nodeArgs } : {});
    await daemon.started();
    await daemon.settled(300, 10_000);
    const warmup = Math.max(2, Math.floor(sizes.p1Steps / 20));
    const cpuBefore = cpuMs(daemon.pid).self;
    await home.writeTask('stepper', { id: 'steps', input: { mode: 'steps', steps: sizes.p1Steps + warmup, url: standIn.url, model_name: 'echo' } });
    const ended = await daemon.waitFor((l) => l.msg === 'run ended' && l.task_id === 'steps', 'the steps run to end', 60_000 + sizes.p1Steps * 200);
    const daemonCpuPerStep = (cpuMs(daemon.pid).self - cpuBefore) / (sizes.p1Steps + warmup);
    await daemon.stop();
    if (ended.outcome !== 'done') throw new Error(`P1: the steps run ended ${String(ended.outcome)}`);
    const done = await home.readJson<{ output: { direct: number[]; via: number[] } }>('state', 'stepper', 'done', 'steps.json');
    const direct = done.output.direct.slice(warmup);
    const via = done.output.via.slice(warmup);
    const overhead = median(via) - median(direct);
    const pairs = via.map((v, i) => v - direct[i]!);
    const ratio = overhead / append.median;
    const parts = await attribution(home.root, standIn.url, Math.min(sizes.appendSamples, 500));
    const residual = overhead - parts.journalAppend - parts.pipeRoundTrip - parts.clientExtra;
    return {
      rows: [
        {
          figure: 'P1 step overhead (model call via agentd − direct)',
          measured: `${fmt(overhead, 3)} ms`,
          limit: `${fmt(append.median, 3)} ms (1 KB append+fdatasync)`,
          ratio: `${fmt(ratio)}×`,
          goal: '≤ 4×',
          verdict: verdict(ratio <= 4),
          values: { daemon_cpu_per_step_ms: daemonCpuPerStep, fetch_cpu_ms: parts.fetchCpu, overhead_ms: overhead, append_ms: append.median, ratio, via_p50_ms: median(via), direct_p50_ms: median(direct), journal_append_ms: parts.journalAppend, pipe_rtt_ms: parts.pipeRoundTrip, client_extra_ms: parts.clientExtra, residual_ms: residual },
        },
      ],
      details: [
        `P1  ${sizes.p1Steps} model calls through agentd to a stand-in on 127.0.0.1 (after ${warmup} warm-up pairs), each paired with the same request sent directly (fetch) from the agent process.`,
        `    via agentd: ${fmtSpread(spread(via))}`,
        `    direct:     ${fmtSpread(spread(direct))}`,
        `    per-pair difference: ${fmtSpread(spread(pairs))}`,
        `    1 KB append + fdatasync: ${fmtSpread(append.spread)}`,
        `    what the ${fmt(overhead, 3)} ms are made of (medians, timed in the bench process):`,
        `      journal on the held file: started (write) + completed (write, fdatasync):      ${fmt(parts.journalAppend, 3)} ms`,
        `      1 × line round trip agent → daemon → agent (child stdin/stdout):               ${fmt(parts.pipeRoundTrip, 3)} ms`,
        `      provider client (OpenAIProvider.complete) beyond a bare fetch (< 0: faster):   ${fmt(parts.clientExtra, 3)} ms`,
        `      the rest (parse and validate the line, request hash, budget, gateway, JSON, GC): ${fmt(residual, 3)} ms`,
        `    daemon CPU per step: ${fmt(daemonCpuPerStep, 2)} ms (the run's own start and end spread over its ${sizes.p1Steps + warmup} steps), of which its HTTP client ≈ ${fmt(parts.fetchCpu, 2)} ms (a bare fetch's CPU in the bench process; the agent spends the same on its direct call)`,
      ],
    };
  } finally {
    await daemon?.stop();
    await standIn.close();
    await home.remove();
  }
}

async function attribution(dir: string, url: string, n: number): Promise<{ journalAppend: number; pipeRoundTrip: number; clientExtra: number; fetchCpu: number }> {
  const journal = path.join(dir, 'attribution.jsonl');
  const record = JSON.stringify({ v: 1, seq: 1, run_id: 'r-20260101000000-0123abcd', kind: 'model', name: 'stand/echo', request_hash: 'f'.repeat(64), phase: 'started', at: new Date().toISOString() });
  const completed = record.replace('"started"', '"completed"');
  const appends: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nowMs();
    await appendHeld(journal, record, false);
    await appendHeld(journal, completed, true);
    appends.push(nowMs() - t);
  }
  await closeHeld(journal);

  const echo = spawn(process.execPath, ['-e', "process.stdin.on('data', (d) => process.stdout.write(d))"], { stdio: ['pipe', 'pipe', 'ignore'] });
  trackChild(echo);
  const trips: number[] = [];
  let arrived: () => void = () => undefined;
  echo.stdout!.on('data', () => arrived());
  for (let i = 0; i < n; i++) {
    const back = new Promise<void>((resolve) => (arrived = resolve));
    const t = nowMs();
    echo.stdin!.write(record + '\n');
    await back;
    trips.push(nowMs() - t);
  }
  echo.kill('SIGKILL');

  const provider = new OpenAIProvider({ name: 'stand', kind: 'openai', baseUrl: url, apiKeyEnv: null, timeoutMs: 60_000, script: null });
  const messages = [{ role: 'user' as const, content: 'ping' }];
  const body = JSON.stringify({ model: 'echo', messages, max_tokens: 16 });
  const viaClient: number[] = [];
  const bare: number[] = [];
  let fetchCpuUs = 0;
  for (let i = 0; i < n; i++) {
    let t = nowMs();
    const cpu = process.cpuUsage();
    const res = await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body });
    await res.text();
    bare.push(nowMs() - t);
    const used = process.cpuUsage(cpu);
    fetchCpuUs += used.user + used.system;
    t = nowMs();
    await provider.complete('echo', { messages, max_tokens: 16 }, { signal: new AbortController().signal, timeoutMs: 60_000 });
    viaClient.push(nowMs() - t);
  }
  // The stand-in answers in this process too: its share is in fetchCpu, so this is an upper bound.
  return { journalAppend: median(appends), pipeRoundTrip: median(trips), clientExtra: median(viaClient) - median(bare), fetchCpu: fetchCpuUs / 1000 / n };
}
