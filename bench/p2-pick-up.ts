import os from 'node:os';
import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, agentNames, bareRun, fmt, fmtSpread, inBatches, seededRandom, sleep, spread, watchFloorMs } from './support.js';

/**
 * P2 — pick-up latency with many agents and many finished tasks on disk.
 * Tasks are written one at a time to random agents (temp file renamed into the
 * inbox), and each run is awaited before the next task, so this is latency,
 * not queueing.
 *  (a) task file written → 'run started' (the daemon's log `time`), the moment
 *      it starts the agent process. Goal: p99 ≤ 50 ms. Shown beside the
 *      machine's floor for noticing a file: fs.watch on a folder, rename → event.
 *  (b) task file written → the agent's first protocol message (the agent's own
 *      clock right before its first stdout line), against a bare spawn of the
 *      same command handed the same start message, until its first stdout line.
 *      Goal: ≤ 1.5× (p50 and p99).
 * Bare spawns are interleaved with the daemon's samples, so both see the same machine.
 */
export async function pickUp(sizes: Sizes): Promise<FigureResult> {
  const home = await BenchHome.create({ max_parallel_runs: os.cpus().length });
  let daemon: DaemonChild | null = null;
  try {
    const names = agentNames('a', sizes.p2Agents);
    await home.agents(names);
    await inBatches(names, 50, (name) => home.doneRecords(name, sizes.p2DonePerAgent));
    const floor = await watchFloorMs(home.path('watch-floor'), Math.min(sizes.p2Samples, 200));

    daemon = new DaemonChild(home);
    const started = await daemon.started();
    const quiet = await daemon.settled(500, 120_000);
    const random = seededRandom(7);
    const toStart: number[] = [];
    const toFirst: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < sizes.p2Samples; i++) {
      const agent = names[Math.floor(random() * names.length)]!;
      const id = `pick-${i}`;
      const t0 = await home.writeTask(agent, { id, input: { mode: 'result' } });
      const isRun = (msg: string) => (l: { msg: string; task_id?: string; agent?: string }) => l.msg === msg && l.task_id === id && l.agent === agent;
      const runStarted = await daemon.waitFor(isRun('run started'), `run of ${id} to start`, 30_000);
      const runEnded = await daemon.waitFor(isRun('run ended'), `run of ${id} to end`, 30_000);
      if (runEnded.outcome !== 'done') throw new Error(`P2: the run of ${id} ended ${String(runEnded.outcome)}`);
      const done = await home.readJson<{ output: { first_at: number } }>('state', agent, 'done', `${id}.json`);
      toStart.push(runStarted.time - t0);
      toFirst.push(done.output.first_at - t0);
      await sleep(20); // the claim after a run (is there another task?) ends before the next sample
      bare.push(await bareRun(home.path('agents', agent)));
      if (i % 100 === 99) daemon.dropLogs();
    }
    const a = spread(toStart);
    const b = spread(toFirst);
    const s = spread(bare);
    const ratio50 = b.p50 / s.p50;
    const ratio99 = b.p99 / s.p99;
    const label = `${sizes.p2Agents.toLocaleString('en')} agents, ${(sizes.p2Agents * sizes.p2DonePerAgent).toLocaleString('en')} done`;
    return {
      rows: [
        {
          figure: `P2a pick-up → run started p99 (${label})`,
          measured: `${fmt(a.p99)} ms`,
          limit: `${fmt(floor.p99, 3)} ms (fs.watch event p99)`,
          ratio: `${fmt(a.p99 / floor.p99, 0)}×`,
          goal: '≤ 50 ms (absolute)',
          verdict: verdict(a.p99 <= 50),
          values: { p50_ms: a.p50, p95_ms: a.p95, p99_ms: a.p99, watch_floor_p99_ms: floor.p99 },
        },
        {
          figure: 'P2b task → first agent message p50',
          measured: `${fmt(b.p50)} ms`,
          limit: `${fmt(s.p50)} ms (bare spawn p50)`,
          ratio: `${fmt(ratio50)}×`,
          goal: '≤ 1.5×',
          verdict: verdict(ratio50 <= 1.5),
          values: { p50_ms: b.p50, bare_p50_ms: s.p50, ratio: ratio50 },
        },
        {
          figure: 'P2b task → first agent message p99',
          measured: `${fmt(b.p99)} ms`,
          limit: `${fmt(s.p99)} ms (bare spawn p99)`,
          ratio: `${fmt(ratio99)}×`,
          goal: '≤ 1.5×',
          verdict: verdict(ratio99 <= 1.5),
          values: { p99_ms: b.p99, bare_p99_ms: s.p99, ratio: ratio99 },
        },
      ],
      details: [
        `P2  ${label} tasks on disk; daemon up in ${fmt(started.time - daemon.spawnedAt, 0)} ms, settled: ${quiet ? 'yes' : 'no (still busy after 120 s)'}; ${sizes.p2Samples} tasks, one at a time, to random agents.`,
        `    (a) task → 'run started':      ${fmtSpread(a)}`,
        `    (b) task → first agent line:   ${fmtSpread(b)}`,
        `        bare spawn → first line:   ${fmtSpread(s)}`,
        `        fs.watch rename → event:   ${fmtSpread(floor)}`,
        `    (log times are whole ms: (a) is ±1 ms)`,
      ],
    };
  } finally {
    await daemon?.stop();
    await home.remove();
  }
}
