import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, fmt, median, type LogLine } from './support.js';

/**
 * P7 — a deep inbox: throughput of trivial tasks of one agent with
 * `p7Deep` tasks queued in its inbox, against the same agent with 10 queued.
 * Deep: every task is in the inbox before the start; the rate is taken in
 * the steady state, between the 10th and the (10 + p7Measured)th 'run ended'
 * (the first promotion reads every file once to build the index; its time is
 * reported beside). Shallow: rounds of 10 tasks written while the agent is
 * idle, rate between the 1st and the 10th 'run ended' of a round, median of
 * the rounds. Goal: deep ≥ 80% of shallow.
 */
export async function deepInbox(sizes: Sizes): Promise<FigureResult> {
  const shallow = await shallowRate(5);
  const deep = await deepRate(sizes.p7Deep, sizes.p7Measured);
  const ratio = deep.rate / shallow.rate;
  return {
    rows: [
      {
        figure: `P7 throughput, ${sizes.p7Deep.toLocaleString('en')} queued in one inbox`,
        measured: `${fmt(deep.rate, 1)} tasks/s`,
        limit: `${fmt(shallow.rate, 1)} tasks/s (10 queued)`,
        ratio: `${fmt(ratio * 100, 0)}%`,
        goal: '≥ 80%',
        verdict: verdict(ratio >= 0.8),
        values: { deep_per_s: deep.rate, shallow_per_s: shallow.rate, ratio, first_run_ms: deep.firstRunMs, queued: sizes.p7Deep },
      },
    ],
    details: [
      `P7  one agent, trivial tasks. 10 queued: ${shallow.rounds.map((r) => fmt(r, 1)).join(', ')} tasks/s over ${shallow.rounds.length} rounds (median ${fmt(shallow.rate, 1)}).`,
      `    ${sizes.p7Deep.toLocaleString('en')} queued: ${fmt(deep.rate, 1)} tasks/s between 'run ended' #10 and #${10 + sizes.p7Measured}; the first run ended ${fmt(deep.firstRunMs, 0)} ms after 'daemon started' (the index reads every inbox file once).`,
    ],
  };
}

const ended = (l: LogLine) => l.msg === 'run ended';

async function shallowRate(rounds: number): Promise<{ rate: number; rounds: number[] }> {
  const home = await BenchHome.create({ defaults: { stop_grace: '2s' } });
  await home.agent('shallow');
  const daemon = new DaemonChild(home);
  try {
    await daemon.started();
    const rates: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const before = daemon.lines(ended).length;
      for (let i = 0; i < 10; i++) await home.writeTask('shallow', { id: `s${round}-${i}`, input: { mode: 'result' } });
      const lines = (await daemon.waitCount(ended, before + 10, 'run ended', 60_000)).slice(before, before + 10);
      rates.push(9 / ((lines[9]!.time - lines[0]!.time) / 1000));
    }
    return { rate: median(rates), rounds: rates };
  } finally {
    await daemon.stop();
    await home.remove();
  }
}

async function deepRate(queued: number, measured: number): Promise<{ rate: number; firstRunMs: number }> {
  const home = await BenchHome.create({ defaults: { stop_grace: '2s' } });
  await home.agent('deep');
  const width = String(queued).length;
  for (let i = 0; i < queued; i++) await home.writeTask('deep', { id: `d${String(i).padStart(width, '0')}`, input: { mode: 'result' } });
  // P7_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile the deep run's daemon.
  const nodeArgs = process.env.P7_DAEMON_NODE_ARGS?.split(' ').filter(Boolean);
  const daemon = new DaemonChild(home, nodeArgs ? { nodeArgs } : {});
  try {
    const started = await daemon.started(300_000);
    const lines = await daemon.waitCount(ended, 10 + measured, 'run ended', 120_000 + measured * 1000);
    const from = lines[9]!.time;
    const to = lines[9 + measured]!.time;
    return { rate: measured / ((to - from) / 1000), firstRunMs: lines[0]!.time - started.time };
  } finally {
    await daemon.stop(60_000);
    await home.remove();
  }
}
