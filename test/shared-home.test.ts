import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { DaemonProcess, SCRIPTED_AGENT, TestHome, type LogLine } from './helpers/home.js';
import { untilTrue } from './helpers/byo.js';
import { mountShared, sshfsUnavailable } from './helpers/sshfs.js';
import { FAST_CONFIG, inHome, isAlive } from './helpers/support.js';

/**
 * Several daemons on one home (README "Shared homes"): each due time of a
 * schedule is written once, a task runs once, and over a real network
 * filesystem (sshfs) tasks from another host are found and a dead host's
 * runs are taken over.
 */

const SHARED_CONFIG = `${FAST_CONFIG}sweep_interval: 1s\n`;

/**
 * How long a step over sshfs may take before the test gives up. Only a bound:
 * what is proven is the condition awaited. On a quiet machine each step takes a
 * few seconds, but with both cores busy (README, Development) every file
 * operation is a round trip through ssh and sftp-server, a scripted run takes
 * 5 to 15 s, and a daemon's start up to 20 s.
 */
const SSHFS_STEP_MS = 180_000;

async function writeAgents(home: TestHome): Promise<void> {
  await home.write('agents/sched/agent.json', {
    version: '1',
    command: ['node', SCRIPTED_AGENT],
    model: 'mock/echo',
    schedule: [{ cron: '* * * * * *', task: { goal: 'tick', input: { script: [{ result: 'tick' }] } } }],
  });
  await home.scriptedAgent('w');
}

/** Per due time, which daemons wrote its task (log lines of 'schedule fired' with outcome written). */
function writtenByDue(daemons: DaemonProcess[]): Map<string, number> {
  const count = new Map<string, number>();
  for (const d of daemons) for (const l of d.logs) if (l.msg === 'schedule fired' && l.outcome === 'written') count.set(String(l.due), (count.get(String(l.due)) ?? 0) + 1);
  return count;
}

/** Per task, how many runs finished it (a run a stopping daemon interrupted resumes elsewhere and is not counted). */
function runsPerTask(daemons: DaemonProcess[], agent: string): Map<string, number> {
  const count = new Map<string, number>();
  for (const d of daemons) for (const l of d.logs) if (l.msg === 'run ended' && l.agent === agent && l.outcome !== 'interrupted') count.set(String(l.task_id), (count.get(String(l.task_id)) ?? 0) + 1);
  return count;
}

async function bothFired(daemons: DaemonProcess[], n: number, timeoutMs = 60_000): Promise<void> {
  await Promise.all(daemons.map((d) => d.waitForCount((l: LogLine) => l.msg === 'schedule fired' && l.agent === 'sched', n, `${n} fires`, timeoutMs)));
}

function assertOnce(daemons: DaemonProcess[]): void {
  for (const [due, n] of writtenByDue(daemons)) assert.equal(n, 1, `due time ${due} was written ${n} times`);
  for (const [task, n] of runsPerTask(daemons, 'sched')) {
    const about = daemons.flatMap((d, i) => d.logs.filter((l) => l.task_id === task || JSON.stringify(l).includes(task)).map((l) => `daemon ${i}: ${JSON.stringify(l)}`));
    assert.equal(n, 1, `${task} ran ${n} times:\n${about.join('\n')}`);
  }
}

describe('two daemons on one home', () => {
  it('write each scheduled due time once, and each scheduled task runs once', async () => {
    await inHome(SHARED_CONFIG, async (home) => {
      await writeAgents(home);
      const daemons = [home.startDaemon({ AGENTD_HOST_ID: 'host-a' }), home.startDaemon({ AGENTD_HOST_ID: 'host-b' })];
      try {
        await bothFired(daemons, 6);
      } finally {
        await Promise.all(daemons.map((d) => d.stop()));
      }
      assert.ok(writtenByDue(daemons).size >= 1);
      assertOnce(daemons);
    });
  });
});

const unavailable = sshfsUnavailable();

describe('a home shared over sshfs (FUSE) by two hosts', { skip: unavailable ?? false }, () => {
  it('finds a task written on the other host by the sweep, hands a killed host’s run over after lock_stale, runs nothing twice and writes each fire once', async () => {
    const shared = await mountShared(2);
    const [mountA, mountB] = shared.mounts as [string, string];
    const homeA = new TestHome(mountA);
    const homeB = new TestHome(mountB);
    const daemons: DaemonProcess[] = [];
    let orphan: number | null = null;
    try {
      await fs.mkdir(homeA.path('agents'));
      await homeA.write('agentd.yaml', SHARED_CONFIG);
      await writeAgents(homeA);

      // 1. Only B runs; a task written through A's mount sends B no event: the sweep finds it.
      const b = new DaemonProcess(mountB, { AGENTD_HOST_ID: 'host-b' }, []);
      daemons.push(b);
      await b.waitForLog((l) => l.msg === 'daemon started', 'B to start', SSHFS_STEP_MS);
      await homeA.inbox('w', 'from-a', { goal: 'x', input: { script: [{ result: 'seen on b' }] } });
      await b.waitForLog((l) => l.msg === 'run ended' && l.task_id === 'from-a', 'B to run the task written through A', SSHFS_STEP_MS);
      assert.equal((await homeA.readJson<{ output: unknown }>('state/w/done/from-a.json')).output, 'seen on b');

      // 2. A starts and takes a long task; a kill -9 of A hands it to B after lock_stale.
      const a = new DaemonProcess(mountA, { AGENTD_HOST_ID: 'host-a' }, []);
      daemons.push(a);
      await a.waitForLog((l) => l.msg === 'daemon started', 'A to start', SSHFS_STEP_MS);
      await b.stop();
      const b2 = new DaemonProcess(mountB, { AGENTD_HOST_ID: 'host-b' }, []);
      await homeA.inbox('w', 'long', { goal: 'y', input: { script: [{ checkpoint: { step: 1 } }, { sleep: 120_000 }, { result: 'not here' }], after_checkpoint: [{ result: 'resumed on b' }] } });
      await a.waitForLog((l) => l.msg === 'run started' && l.task_id === 'long', 'A to start the long task', SSHFS_STEP_MS);
      // Killed only once its checkpoint is durable: a kill before it (seen under a CPU hog) rightly
      // makes B run the task from the start, into its two-minute sleep, which proves no takeover from it.
      type Checkpoint = { state: unknown; active_run: { pid: number } | null };
      const seen: { checkpoint: Checkpoint | null } = { checkpoint: null };
      await untilTrue(async () => {
        seen.checkpoint = await homeA.readJson<Checkpoint>('state/w/checkpoint.json').catch(() => null);
        return JSON.stringify(seen.checkpoint?.state) === JSON.stringify({ step: 1 });
      }, 'A to write the long task’s checkpoint', SSHFS_STEP_MS);
      orphan = seen.checkpoint?.active_run?.pid ?? null;
      daemons.push(b2);
      await b2.waitForLog((l) => l.msg === 'daemon started', 'B to start again', SSHFS_STEP_MS);
      a.child.kill('SIGKILL');
      await a.exited;
      await b2.waitForLog((l) => l.msg === 'run ended' && l.task_id === 'long', 'B to take the long task over', SSHFS_STEP_MS);
      assert.equal((await homeB.readJson<{ output: unknown }>('state/w/done/long.json')).output, 'resumed on b');

      // 3. A restarts beside B: every scheduled due time is written once by the two.
      const a2 = new DaemonProcess(mountA, { AGENTD_HOST_ID: 'host-a' }, []);
      daemons.push(a2);
      await a2.waitForLog((l) => l.msg === 'daemon started', 'A to start again', SSHFS_STEP_MS);
      // A due time's task is written only once the last one's is done: four fires by each wait on eight runs.
      await bothFired([a2, b2], 4, SSHFS_STEP_MS);
    } catch (err) {
      // A wait's error shows one daemon's last lines; a takeover is between daemons: print them all.
      console.error(daemons.map((d, i) => `--- daemon ${i}\n${d.logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${d.stderrText}`).join('\n'));
      throw err;
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      if (orphan !== null && isAlive(orphan)) process.kill(-orphan, 'SIGKILL');
      await shared.close();
    }
    assertOnce(daemons);
    const runsOfW = runsPerTask(daemons, 'w');
    assert.equal(runsOfW.get('from-a'), 1);
    assert.equal(runsOfW.get('long'), 1, 'the long task finished once (on B); the killed host never finished it');
  });
});
