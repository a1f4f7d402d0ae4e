import fs from 'node:fs/promises';
import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, agentNames, fmt, sleep, type LogLine } from './support.js';

/**
 * P5 — recovery after kill -9 with runs in flight: `runs` agents, as many
 * parallel runs, each task asleep after a checkpoint. The daemon is killed with
 * SIGKILL, started again, and timed from that spawn until every task is running
 * again ('run started' with trigger resume). The machine's limit is the lock
 * stale time (lock_stale in agentd.yaml): how long a lock of a dead holder may
 * stand in the way. Goal ≤ stale time + 2 s.
 */
export async function restartAfterKill(sizes: Sizes): Promise<FigureResult> {
  const runs = sizes.p5Runs;
  const staleMs = sizes.p5LockStaleMs;
  const home = await BenchHome.create({ max_parallel_runs: runs, lock_stale: `${staleMs / 1000}s`, defaults: { stop_grace: '1s' } });
  const daemons: DaemonChild[] = [];
  try {
    const names = agentNames('k', runs);
    await home.agents(names);
    for (const name of names) await home.writeTask(name, { id: `sleep-${name}`, input: { mode: 'checkpoint_sleep', sleep_ms: 600_000 } });

    const first = new DaemonChild(home);
    daemons.push(first);
    await first.started();
    await first.waitCount((l) => l.msg === 'run started', runs, 'run started', 60_000 + runs * 500);
    await allCheckpointed(home, names, 60_000);
    first.kill9();
    await first.exited;

    const second = new DaemonChild(home);
    daemons.push(second);
    const up = await second.started();
    const isResume = (l: LogLine) => l.msg === 'run started' && l.trigger === 'resume';
    const resumed = await second.waitCount(isResume, runs, 'resumed run', staleMs + 60_000 + runs * 500);
    const times = resumed.map((l) => l.time);
    const elapsedMs = Math.max(...times) - second.spawnedAt;
    const ratio = elapsedMs / staleMs;

    // What-if, for the analysis only: the same crash again, but the dead daemon's
    // lock folders removed before the restart (what a same-host takeover of a
    // dead holder's lock should amount to), so only the daemon's own recovery work is timed.
    await allCheckpointed(home, names, 60_000);
    second.kill9();
    await second.exited;
    for (const name of names) await fs.rm(home.path('state', `${name}.lock`), { recursive: true, force: true });
    const third = new DaemonChild(home);
    daemons.push(third);
    await third.started();
    const again = await third.waitCount(isResume, runs, 'resumed run', staleMs + 60_000 + runs * 500);
    const unlockedMs = Math.max(...again.map((l) => l.time)) - third.spawnedAt;
    return {
      rows: [
        {
          figure: `P5 restart after kill -9, ${runs} runs in flight → all resumed`,
          measured: `${fmt(elapsedMs / 1000, 3)} s`,
          limit: `${fmt(staleMs / 1000, 0)} s (lock_stale)`,
          ratio: `${fmt(ratio)}×`,
          goal: `≤ stale + 2 s (${fmt((staleMs + 2000) / staleMs, 1)}×)`,
          verdict: verdict(elapsedMs <= staleMs + 2000),
          values: { elapsed_ms: elapsedMs, without_locks_ms: unlockedMs, lock_stale_ms: staleMs, ratio, daemon_started_ms: up.time - second.spawnedAt, first_resume_ms: Math.min(...times) - second.spawnedAt },
        },
      ],
      details: [
        `P5  ${runs} agents, max_parallel_runs ${runs}, every task checkpointed and asleep, daemon killed with SIGKILL; after the restart:`,
        `    'daemon started' ${fmt(up.time - second.spawnedAt, 0)} ms, first resumed run ${fmt(Math.min(...times) - second.spawnedAt, 0)} ms, last ${fmt(elapsedMs, 0)} ms (lock_stale ${staleMs} ms).`,
        `    what-if: the same crash with the dead daemon's state/<agent>.lock folders removed before the restart: all ${runs} resumed after ${fmt(unlockedMs, 0)} ms.`,
      ],
    };
  } finally {
    for (const daemon of daemons) await daemon.stop(30_000);
    await home.remove();
  }
}

/** Every agent's checkpoint.json holds the state its agent sent. */
async function allCheckpointed(home: BenchHome, names: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(names);
  while (pending.size > 0) {
    for (const name of [...pending]) {
      const checkpoint = await home.readJson<{ state: unknown }>('state', name, 'checkpoint.json').catch(() => null);
      if (checkpoint?.state) pending.delete(name);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) throw new Error(`P5: ${pending.size} agents never checkpointed`);
    await sleep(100);
  }
}
