import { verdict, type FigureResult, type Row, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, agentNames, bareNode, cpuMs, fmt, median, pageFaults, procStatusKb } from './support.js';

/**
 * P4 — start time and resident memory with many idle agents (agent folders
 * with agent.yaml and no task): from spawning `agentd start` to its 'daemon
 * started' log line (the line's own `time`), and VmRSS from /proc/<pid>/status
 * when that line arrives; and VmRSS once the daemon has used no CPU for a
 * second (its watcher's initial scan runs after 'daemon started', and memory
 * grows with it), held to the same goal. Beside them, the
 * machine's floor: a bare `node` printing a line, and its VmRSS. Each size is
 * started `p4Starts` times, each on a fresh home, and each figure is the
 * median, as the bare node's is: one start on this machine ranged from 0.74 to
 * 1.28 s for the same build (README.md, Benchmark: P4).
 * Goals (issue 15): 1,000 agents ≤ 1 s and ≤ 100 MB; 10,000 agents ≤ 3 s and ≤ 250 MB.
 */
export async function startAndMemory(sizes: Sizes): Promise<FigureResult> {
  const bare = [await bareNode(), await bareNode(), await bareNode()];
  const bareStart = median(bare.map((b) => b.startMs));
  const bareRss = median(bare.map((b) => b.rssMb));
  const rows: Row[] = [];
  const details: string[] = [`P4  bare node: first line after ${fmt(bareStart, 1)} ms, VmRSS ${fmt(bareRss, 1)} MB (median of 3).`];
  for (const [count, goals] of [
    [sizes.p4Small, { startS: 1, rssMb: 100 }],
    [sizes.p4Large, { startS: 3, rssMb: 250 }],
  ] as [number, { startS: number | null; rssMb: number }][]) {
    const samples: Measured[] = [];
    for (let i = 0; i < sizes.p4Starts; i++) samples.push(await measure(count));
    const m = medianOf(samples);
    const label = `${count.toLocaleString('en')} idle agents`;
    rows.push({
      figure: `P4 start time, ${label}`,
      measured: `${fmt(m.startMs / 1000, 3)} s`,
      limit: `${fmt(bareStart / 1000, 3)} s (bare node)`,
      ratio: `${fmt(m.startMs / bareStart, 1)}×`,
      goal: goals.startS === null ? '— (reported)' : `≤ ${goals.startS} s (absolute)`,
      verdict: goals.startS === null ? 'INFO' : verdict(m.startMs <= goals.startS * 1000),
      values: { agents: count, start_ms: m.startMs, bare_start_ms: bareStart, starts: samples.length, start_ms_min: Math.min(...samples.map((x) => x.startMs)), start_ms_max: Math.max(...samples.map((x) => x.startMs)) },
    });
    rows.push({
      figure: `P4 resident memory, ${label}`,
      measured: `${fmt(m.rssMb, 1)} MB`,
      limit: `${fmt(bareRss, 1)} MB (bare node)`,
      ratio: `${fmt(m.rssMb / bareRss, 1)}×`,
      goal: `≤ ${goals.rssMb} MB (absolute)`,
      verdict: verdict(m.rssMb <= goals.rssMb),
      values: { agents: count, rss_mb: m.rssMb, settled_rss_mb: m.settledRssMb, bare_rss_mb: bareRss },
    });
    rows.push({
      figure: `P4 resident memory once quiet, ${label}`,
      measured: `${fmt(m.settledRssMb, 1)} MB`,
      limit: `${fmt(bareRss, 1)} MB (bare node)`,
      ratio: `${fmt(m.settledRssMb / bareRss, 1)}×`,
      goal: `≤ ${goals.rssMb} MB (absolute)`,
      verdict: verdict(m.settledRssMb <= goals.rssMb),
      values: { agents: count, settled_rss_mb: m.settledRssMb, quiet_after_ms: m.quietAfterMs, bare_rss_mb: bareRss },
    });
    details.push(`    ${label}, ${samples.length === 1 ? 'one start' : `${samples.length} starts (each figure is their median)`}:`);
    for (const s of samples) {
      details.push(
        `      'daemon started' ${fmt(s.startMs, 0)} ms after spawn (CPU of all its threads by then ${fmt(s.cpuAtStartMs, 0)} ms, ${s.majorFaults} major page faults), VmRSS ${fmt(s.rssMb, 1)} MB then; ` +
          `quiet ${s.quiet ? `after ${fmt(s.quietAfterMs / 1000, 1)} s` : 'never (60 s)'}: VmRSS ${fmt(s.settledRssMb, 1)} MB, VmHWM ${fmt(s.hwmMb, 1)} MB.`,
      );
    }
  }
  return { rows, details };
}

interface Measured {
  startMs: number;
  rssMb: number;
  quiet: boolean;
  quietAfterMs: number;
  settledRssMb: number;
  hwmMb: number;
  /** The daemon's CPU time (user + system) and major page faults when 'daemon started' came. */
  cpuAtStartMs: number;
  majorFaults: number;
}

/** Each number the median of the samples' (so one figure may come from another start than the next). */
function medianOf(samples: Measured[]): Measured {
  const of = (k: Exclude<keyof Measured, 'quiet'>) => median(samples.map((s) => s[k]));
  return {
    startMs: of('startMs'),
    rssMb: of('rssMb'),
    quiet: samples.every((s) => s.quiet),
    quietAfterMs: of('quietAfterMs'),
    settledRssMb: of('settledRssMb'),
    hwmMb: of('hwmMb'),
    cpuAtStartMs: of('cpuAtStartMs'),
    majorFaults: of('majorFaults'),
  };
}

async function measure(count: number): Promise<Measured> {
  const home = await BenchHome.create({});
  let daemon: DaemonChild | null = null;
  try {
    await home.agents(agentNames('idle', count), {}, { inbox: false });
    // P4_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile the daemons of this figure (one profile per size).
    const nodeArgs = process.env.P4_DAEMON_NODE_ARGS?.split(' ').filter(Boolean);
    daemon = new DaemonChild(home, nodeArgs ? { nodeArgs } : {});
    const started = await daemon.started(300_000);
    const rssMb = daemon.rssMb();
    // Where a slow start went: CPU (its own) or waiting (the disk: major faults, reads).
    const cpuAtStartMs = cpuMs(daemon.pid).self;
    const majorFaults = pageFaults(daemon.pid).major;
    const quiet = await daemon.settled(1000, 60_000);
    const quietAfterMs = Date.now() - started.time;
    const settledRssMb = daemon.rssMb();
    const hwmMb = procStatusKb(daemon.pid, 'VmHWM') / 1024;
    return { startMs: started.time - daemon.spawnedAt, rssMb, quiet, quietAfterMs, settledRssMb, hwmMb, cpuAtStartMs, majorFaults };
  } finally {
    await daemon?.stop(60_000);
    await home.remove();
  }
}
