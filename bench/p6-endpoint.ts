import { verdict, type FigureResult, type Sizes } from './figure.js';
import { measureFloor } from './proxy-floor.js';
import { BenchHome, DaemonChild, appendMedianMs, cpuMs, cpuSplitMs, fmt, fmtSpread, median, percentile, spread, startStandIn } from './support.js';

/**
 * P6 — what a chat completion costs at the run's OpenAI-compatible endpoint
 * beyond the provider's own time (README "Bring your own agent"). One agent
 * sends `steps` chat completions to $OPENAI_BASE_URL, each next to the same
 * request sent straight to the same stand-in provider (order alternating).
 * Overhead at p50 and p99 = percentile(via endpoint) − percentile(direct), as a
 * ratio to one fdatasync'd 1 KB append at the same percentile: p50 to the
 * append's p50, p99 to the append's p99 (goal ≤ 4×, as P1). Also the overhead on
 * the time to the first streamed chunk: the endpoint journals the whole reply
 * before it sends a byte, so a streamed call's first chunk comes when the
 * provider's reply is complete; against the provider's own first byte.
 */
export async function endpointOverhead(sizes: Sizes): Promise<FigureResult> {
  const standIn = await startStandIn();
  const home = await BenchHome.create({ providers: { stand: { kind: 'openai', base_url: standIn.url } }, max_parallel_runs: 1 });
  let daemon: DaemonChild | null = null;
  try {
    const append = appendMedianMs(home.root, sizes.appendSamples);
    await home.agent('caller', { model: 'stand/echo', budget: { max_steps: 10_000, max_tokens: 50_000_000, max_runtime: '1h' } });
    // P6_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile the daemon of this figure alone.
    const nodeArgs = process.env.P6_DAEMON_NODE_ARGS?.split(' ').filter(Boolean);
    // P6_STRACE=FILE: the daemon under strace (fsync, fdatasync, connect), to count syncs and provider connections per call;
    // P6_STRACE_CALLS=all (or a comma list) traces those calls instead.
    const straceTo = process.env.P6_STRACE;
    const straceCalls = process.env.P6_STRACE_CALLS?.split(',').filter(Boolean) ?? ['fsync', 'fdatasync', 'connect'];
    daemon = new DaemonChild(home, { ...(nodeArgs ? { nodeArgs } : {}), ...(straceTo ? { straceTo, straceCalls } : {}) });
    await daemon.started();
    await daemon.settled(300, 10_000);
    const warmup = Math.max(2, Math.floor(sizes.p1Steps / 20));
    const cpuBefore = cpuMs(daemon.pid).self;
    const splitBefore = cpuSplitMs(daemon.pid);
    await home.writeTask('caller', { id: 'calls', input: { mode: 'endpoint', steps: sizes.p1Steps + warmup, url: standIn.url, model_name: 'echo' } });
    const ended = await daemon.waitFor((l) => l.msg === 'run ended' && l.task_id === 'calls', 'the endpoint run to end', 60_000 + sizes.p1Steps * 400);
    // Two calls a round reach the daemon (plain and streamed); the run's own start and end are spread over them.
    const calls = 2 * (sizes.p1Steps + warmup);
    const daemonCpuPerCall = (cpuMs(daemon.pid).self - cpuBefore) / calls;
    const splitAfter = cpuSplitMs(daemon.pid);
    const split = (k: keyof typeof splitAfter) => (splitAfter[k] - splitBefore[k]) / calls;
    await daemon.stop();
    if (ended.outcome !== 'done') throw new Error(`P6: the endpoint run ended ${String(ended.outcome)}`);
    const done = await home.readJson<{ output: Record<'direct' | 'directFirst' | 'via' | 'viaStreamFirst', number[]> }>('state', 'caller', 'done', 'calls.json');
    const [direct, directFirst, via, viaFirst] = (['direct', 'directFirst', 'via', 'viaStreamFirst'] as const).map((k) => done.output[k].slice(warmup)) as [number[], number[], number[], number[]];
    const p50 = median(via) - median(direct);
    const p99 = percentile(via, 99) - percentile(direct, 99);
    const ttfc = median(viaFirst) - median(directFirst);
    // The floor, in the same run: a bare node:http proxy doing only what the endpoint must (read, append, provider
    // call, append and fdatasync on the event loop as agentd does while the disk is fast, reply), called like P6's
    // agent calls the endpoint (README.md, Benchmark: P6). What agentd adds is the difference.
    const floor = await measureFloor('append+inline fdatasync', sizes.p1Steps, home.root);
    // Like with like: the overhead's p50 against the append's p50, its p99 against the append's p99
    // (README.md, Benchmark: P6). The p99 against the append's p50 is printed under the table too.
    const row = (figure: string, ms: number, floor: number, which: string) => ({
      figure,
      measured: `${fmt(ms, 3)} ms`,
      limit: `${fmt(floor, 3)} ms (1 KB append+fdatasync ${which})`,
      ratio: `${fmt(ms / floor)}×`,
      goal: '≤ 4×',
      verdict: verdict(ms / floor <= 4),
      values: { overhead_ms: ms, append_ms: floor, append_p50_ms: append.median, ratio: ms / floor, daemon_cpu_per_call_ms: daemonCpuPerCall, daemon_main_thread_cpu_per_call_ms: split('main') },
    });
    return {
      rows: [
        row('P6 endpoint call overhead p50 (via endpoint − direct)', p50, append.median, 'p50'),
        row('P6 endpoint call overhead p99 (via endpoint − direct)', p99, append.spread.p99, 'p99'),
        {
          figure: 'P6 streamed time to first chunk overhead (p50)',
          measured: `${fmt(ttfc, 3)} ms`,
          limit: `${fmt(median(directFirst), 3)} ms (provider's first byte)`,
          ratio: `${fmt(ttfc / append.median)}× append`,
          goal: 'reported',
          verdict: 'INFO',
          values: { ttfc_overhead_ms: ttfc, via_first_p50_ms: median(viaFirst), direct_first_p50_ms: median(directFirst) },
        },
        {
          figure: 'P6 floor: bare node:http proxy overhead p50',
          measured: `${fmt(floor.overheadP50, 3)} ms`,
          limit: `${fmt(append.median, 3)} ms (1 KB append+fdatasync p50)`,
          ratio: `${fmt(floor.overheadP50 / append.median)}×`,
          goal: 'reported',
          verdict: 'INFO',
          values: { floor_overhead_ms: floor.overheadP50, floor_overhead_p99_ms: floor.overheadP99, agentd_above_floor_ms: p50 - floor.overheadP50, floor_cpu_per_call_ms: floor.cpu.all },
        },
      ],
      details: [
        `P6  ${sizes.p1Steps} chat completions at the run's endpoint (fetch to $OPENAI_BASE_URL; after ${warmup} warm-up rounds), each next to the same request sent directly to the stand-in, and a streamed one.`,
        `    via endpoint:          ${fmtSpread(spread(via))}`,
        `    direct:                ${fmtSpread(spread(direct))}`,
        `    streamed, first chunk: ${fmtSpread(spread(viaFirst))}`,
        `    direct, first byte:    ${fmtSpread(spread(directFirst))}`,
        `    1 KB append + fdatasync: ${fmtSpread(append.spread)}`,
        `    overhead p99 ${fmt(p99, 3)} ms = ${fmt(p99 / append.spread.p99)}× the append's p99 (the table's ratio), ${fmt(p99 / append.median)}× its p50`,
        `    daemon CPU per endpoint call: ${fmt(daemonCpuPerCall, 2)} ms (the run's own start and end spread over its ${calls} calls): main thread ${fmt(split('main'), 2)} ms, other threads ${fmt(split('others'), 2)} ms; user ${fmt(split('user'), 2)} ms, system ${fmt(split('system'), 2)} ms`,
        `    floor (a bare node:http proxy that fdatasyncs before it replies, ${sizes.p1Steps} calls, same run): overhead p50 ${fmt(floor.overheadP50, 3)} ms, p99 ${fmt(floor.overheadP99, 3)} ms; proxy CPU per call ${fmt(floor.cpu.all, 2)} ms. agentd above it: p50 ${fmt(p50 - floor.overheadP50, 3)} ms, p99 ${fmt(p99 - floor.overheadP99, 3)} ms`,
        '    a streamed call is answered from the journaled reply: its first chunk waits for the whole provider reply (agentd calls the provider without streaming).',
      ],
    };
  } finally {
    await daemon?.stop();
    await standIn.close();
    await home.remove();
  }
}
