import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, bareRun, fmt, fmtSpread, sleep, spread } from './support.js';

/**
 * P2c — task file → the agent's first protocol message with a warm agent
 * (`warm: 1`, README.md "Warm agents"): the process is already started and
 * waiting for `start`. Against a bare spawn of the same command handed the
 * same start message, until its first line, interleaved. Goal: p50 ≤ 0.2×.
 * Between samples the bench gives the pool time to start the replacement
 * (a run takes the warm process; the next one is spawned after it).
 */
export async function warmPickUp(sizes: Sizes): Promise<FigureResult> {
  const home = await BenchHome.create({});
  let daemon: DaemonChild | null = null;
  try {
    await home.agent('warm', { warm: 1 });
    daemon = new DaemonChild(home);
    await daemon.started();
    await daemon.settled(300, 30_000);
    const samples = Math.max(10, Math.round(sizes.p2Samples / 4));
    const toFirst: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < samples; i++) {
      const id = `warm-${i}`;
      const t0 = await home.writeTask('warm', { id, input: { mode: 'result' } });
      const ended = await daemon.waitFor((l) => l.msg === 'run ended' && l.task_id === id, `run of ${id} to end`, 30_000);
      if (ended.outcome !== 'done') throw new Error(`P2c: the run of ${id} ended ${String(ended.outcome)}`);
      const done = await home.readJson<{ output: { first_at: number } }>('state', 'warm', 'done', `${id}.json`);
      toFirst.push(done.output.first_at - t0);
      bare.push(await bareRun(home.path('agents', 'warm')));
      await sleep(250); // the replacement warm process loads
      await daemon.settled(100, 10_000);
      if (i % 100 === 99) daemon.dropLogs();
    }
    const w = spread(toFirst);
    const s = spread(bare);
    const ratio = w.p50 / s.p50;
    return {
      rows: [
        {
          figure: 'P2c task → first agent message, warm agent, p50',
          measured: `${fmt(w.p50)} ms`,
          limit: `${fmt(s.p50)} ms (bare spawn p50)`,
          ratio: `${fmt(ratio)}×`,
          goal: '≤ 0.2×',
          verdict: verdict(ratio <= 0.2),
          values: { p50_ms: w.p50, p99_ms: w.p99, bare_p50_ms: s.p50, ratio },
        },
      ],
      details: [
        `P2c one agent with warm: 1, ${samples} tasks one at a time.`,
        `    task → first agent line (warm): ${fmtSpread(w)}`,
        `    bare spawn → first line:        ${fmtSpread(s)}`,
      ],
    };
  } finally {
    await daemon?.stop();
    await home.remove();
  }
}
