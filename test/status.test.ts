import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { daemonRunning, readDaemonStatus, STATUS_FRESH_MS, type DaemonStatusFile } from '../src/store/daemon-status.js';
import { HomePaths } from '../src/store/paths.js';
import { REPO_ROOT } from './helpers/home.js';
import { FAST_CONFIG, inHome, untilInFolder } from './helpers/support.js';

/**
 * `agentd status` is the one screen for the person on call: with a daemon
 * running it adds what only the daemon knows (uptime, live step and cost
 * counters, circuits) from state/daemon.json; without one it says so and
 * shows what the files say.
 */

interface StatusJson {
  daemon: { running: true; pid: number; host: string; state: string; uptime_ms: number; snapshot_age_ms: number } | { running: false; last_seen: { pid: number; state: string } | null };
  agents: { agent: string; status: string; current_task: { id: string } | null; run: { task_id: string; run_id: string; steps: number; task_steps: number; max_steps: number; cost_usd: number } | null; last_error: unknown }[];
  runs: { agent: string; task_id: string; steps: number }[];
  circuits: { model: string; state: string; failures: number }[];
  spend_today_usd: number;
}

const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'v1', 'daemon-status.json');

/** A pid that was a process a moment ago and is no more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('the daemon status snapshot', () => {
  it('reads the v1 fixture', async () => {
    await inHome(undefined, async (home) => {
      await fs.mkdir(home.path('state'), { recursive: true });
      await fs.copyFile(FIXTURE, home.path('state/daemon.json'));
      const status = await readDaemonStatus(new HomePaths(home.root));
      assert.equal(status?.pid, 4242);
      assert.equal(status?.runs[0]?.task_steps, 7);
      assert.equal(status?.circuits[0]?.state, 'open');
      assert.equal(status?.last_errors.digest?.category, 'timeout');
    });
  });

  it('counts as running on this host while its pid lives, elsewhere while it is fresh, never once stopped', async () => {
    const status = JSON.parse(await fs.readFile(FIXTURE, 'utf8')) as DaemonStatusFile;
    const written = Date.parse(status.written_at);
    const facts = (over: Partial<{ now: number; host: string; alive: boolean }>) => ({
      now: over.now ?? written + 1000,
      host: over.host ?? status.host,
      pidAlive: () => over.alive ?? true,
    });
    assert.equal(daemonRunning(status, facts({})), true);
    assert.equal(daemonRunning(status, facts({ alive: false })), false, 'a dead pid on this host, however fresh the file');
    assert.equal(daemonRunning(status, facts({ alive: true, now: written + 3_600_000 })), true, 'a live pid on this host, however old the file');
    assert.equal(daemonRunning(status, facts({ host: 'other', alive: false })), true, 'another host: fresh');
    assert.equal(daemonRunning(status, facts({ host: 'other', now: written + STATUS_FRESH_MS })), false, 'another host: stale');
    assert.equal(daemonRunning({ ...status, state: 'stopped' }, facts({})), false);
  });
});

describe('agentd status', () => {
  it('while the daemon runs shows its uptime, the running task with its steps so far, and the circuits', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('slow');
      await home.inbox('slow', 't1', { goal: 'think', input: { script: [{ model: { messages: [{ role: 'user', content: 'hm' }] } }, { sleep: 60_000 }] } });
      const daemon = home.startDaemon();
      try {
        await daemon.started();
        const snapshot = await untilInFolder(
          home.path('state'),
          () => home.readJson<DaemonStatusFile>('state/daemon.json'),
          (s) => s.runs.some((r) => r.agent === 'slow' && r.steps === 1),
          'state/daemon.json to show the run after its first step',
        );
        assert.equal(snapshot.pid, daemon.child.pid);

        const r = await home.cli(['status', '--json']);
        assert.equal(r.code, 0, r.stderr);
        const status = JSON.parse(r.stdout) as StatusJson;
        assert.ok(status.daemon.running, 'the daemon is running');
        assert.equal(status.daemon.pid, daemon.child.pid);
        assert.equal(status.daemon.host, os.hostname());
        assert.ok(status.daemon.uptime_ms > 0);
        const slow = status.agents.find((a) => a.agent === 'slow');
        assert.equal(slow?.status, 'running');
        assert.equal(slow?.current_task?.id, 't1');
        assert.equal(slow?.run?.task_id, 't1');
        assert.equal(slow?.run?.steps, 1);
        assert.equal(slow?.run?.task_steps, 1);
        assert.equal(slow?.run?.max_steps, 50);
        assert.deepEqual(status.runs.map((x) => [x.agent, x.task_id, x.steps]), [['slow', 't1', 1]]);
        assert.ok(Array.isArray(status.circuits));
        assert.deepEqual(status.circuits.map((c) => [c.model, c.state, c.failures]), [['mock/echo', 'closed', 0]]);
        assert.equal(status.spend_today_usd, 0);

        const human = await home.cli(['status']);
        assert.equal(human.code, 0, human.stderr);
        assert.match(human.stdout, new RegExp(`^daemon: running, pid ${daemon.child.pid} on \\S+, up \\S+`, 'm'));
        assert.match(human.stdout, /slow\s+running\s+t1\s+.*1\/50\s+\$0\.0000/);
        assert.match(human.stdout, /^circuits: mock\/echo closed$/m);
        assert.match(human.stdout, /^spent today \(UTC, all agents\): \$0\.0000$/m);
      } finally {
        assert.equal((await daemon.stop()).code, 0);
      }

      const after = JSON.parse((await home.cli(['status', '--json'])).stdout) as StatusJson;
      assert.deepEqual(after.daemon, { running: false, last_seen: { pid: daemon.child.pid, host: os.hostname(), state: 'stopped', at: (await home.readJson<DaemonStatusFile>('state/daemon.json')).written_at } });
      assert.deepEqual(after.circuits, []);
      assert.match((await home.cli(['status'])).stdout, /^daemon: not running \(last seen .*stopped\); what the files say:$/m);
    });
  });

  it('without a daemon says "daemon: not running" and shows what the files say', async () => {
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('idle');
      await home.inbox('idle', 'queued', { goal: 'later' });
      const r = await home.cli(['status', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const status = JSON.parse(r.stdout) as StatusJson;
      assert.deepEqual(status.daemon, { running: false, last_seen: null });
      assert.deepEqual(status.circuits, []);
      assert.deepEqual(status.runs, []);
      assert.equal(status.agents[0]?.status, 'queued');
      const human = await home.cli(['status']);
      assert.match(human.stdout, /^daemon: not running; what the files say:$/m);
      assert.match(human.stdout, /^idle\s+queued\s/m);
      assert.match(human.stdout, /^circuits: unknown \(kept by the running daemon\)$/m);

      // A daemon killed with -9 leaves a snapshot that still says running: its dead pid tells.
      const snapshot = JSON.parse(await fs.readFile(FIXTURE, 'utf8')) as DaemonStatusFile;
      await home.write('state/daemon.json', { ...snapshot, pid: await deadPid(), host: os.hostname(), written_at: new Date().toISOString(), runs: [] });
      const killed = JSON.parse((await home.cli(['status', '--json'])).stdout) as StatusJson;
      assert.equal(killed.daemon.running, false);
      assert.deepEqual(killed.circuits, [], 'circuits of a dead daemon are not shown as current');
    });
  });
});
