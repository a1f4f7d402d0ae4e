import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DaemonStatusFile } from '../src/store/daemon-status.js';
import type { DoneRecord } from '../src/store/done-records.js';
import { runCli, type TestHome } from './helpers/home.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';
import { REPO_ROOT } from './helpers/paths.js';
import { hostId } from '../src/store/host.js';
import { rssMbOf } from '../src/run/warm-pool.js';

/** Warm agents (README.md "Warm agents"), through the real daemon. */

// Waits for `start`, then answers with what it knew: its pid, its environment, and when it was started.
const AGENT = `
const startedAt = Date.now();
const env = Object.keys(process.env).filter((k) => k.startsWith('AGENTD_')).sort();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  const nl = buffered.indexOf('\\n');
  if (nl === -1) return;
  const start = JSON.parse(buffered.slice(0, nl));
  const output = { pid: process.pid, env, started_at: startedAt, task_id: start.task.id, run_id: start.run_id };
  process.stdout.write(JSON.stringify({ type: 'result', output }) + '\\n');
});
process.stdin.on('end', () => process.exit(0));
`;

async function warmAgent(home: TestHome, name: string, extra = ''): Promise<void> {
  await home.write(`agents/${name}/agent.mjs`, AGENT);
  await home.write(`agents/${name}/agent.yaml`, `version: "1"\ncommand: [node, agent.mjs]\nwarm: 1\n${extra}`);
}

/** state/daemon.json once its warm list satisfies `accept`. */
async function warmList(home: TestHome, accept: (warm: NonNullable<DaemonStatusFile['warm']>) => boolean, what: string): Promise<NonNullable<DaemonStatusFile['warm']>> {
  const status = await untilInFolder(
    home.path('state'),
    async () => JSON.parse(await fs.readFile(home.path('state/daemon.json'), 'utf8')) as DaemonStatusFile,
    (s) => accept(s.warm ?? []),
    what,
    20_000,
  );
  return status.warm ?? [];
}

async function environOf(pid: number): Promise<string[]> {
  return (await fs.readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean);
}

async function runTask(home: TestHome, agent: string, id: string): Promise<DoneRecord & { output: { pid: number; env: string[]; started_at: number; task_id: string } }> {
  await home.inbox(agent, id, { goal: 'warm' });
  return untilInFolder(home.path(`state/${agent}/done`), () => home.readJson(`state/${agent}/done/${id}.json`), () => true, `${id} to be done`, 20_000);
}

describe('warm agents', () => {
  it('a warm process holds no task data before start, takes the task, and is replaced', () =>
    inHome(FAST_CONFIG, async (home) => {
      await warmAgent(home, 'w');
      await withDaemon(home, async () => {
        const [first] = await warmList(home, (w) => w.length === 1, 'one warm process');
        assert.equal(first!.agent, 'w');
        const env = await environOf(first!.pid);
        assert.ok(env.some((e) => e.startsWith('AGENTD_AGENT=w')), 'it knows its agent');
        assert.deepEqual(env.filter((e) => /^AGENTD_(TASK_ID|RUN_ID)=/.test(e)), [], 'no task id or run id before start');
        const cmdline = await fs.readFile(`/proc/${first!.pid}/cmdline`, 'utf8');
        assert.ok(!cmdline.includes('t1'), 'no task data on its command line');

        const done = await runTask(home, 'w', 't1');
        assert.equal(done.status, 'done');
        assert.equal(done.output.pid, first!.pid, 'the run took the warm process');
        assert.equal(done.output.task_id, 't1', 'the task came with start');
        assert.deepEqual(done.output.env, ['AGENTD_AGENT', 'AGENTD_HOME']);

        const [next] = await warmList(home, (w) => w.length === 1 && w[0]!.pid !== first!.pid, 'a replacement');
        assert.ok(next!.pid > 0);
      });
    }));

  it('a warm process that dies before its task is replaced', () =>
    inHome(FAST_CONFIG, async (home) => {
      await warmAgent(home, 'w');
      await withDaemon(home, async (daemon) => {
        const [first] = await warmList(home, (w) => w.length === 1, 'one warm process');
        process.kill(first!.pid, 'SIGKILL');
        await daemon.waitForLog((l) => l.msg === 'warm agent exited before its task; replacing it' && l.pid === first!.pid, 'the death to be seen');
        const [next] = await warmList(home, (w) => w.length === 1 && w[0]!.pid !== first!.pid, 'a replacement');
        const done = await runTask(home, 'w', 't2');
        assert.equal(done.output.pid, next!.pid);
      });
    }));

  it('time spent warm counts against no budget: the run starts its runtime when it takes the process', () =>
    inHome(FAST_CONFIG, async (home) => {
      await warmAgent(home, 'w', 'budget:\n  max_runtime: 1s\n');
      await withDaemon(home, async () => {
        const [first] = await warmList(home, (w) => w.length === 1, 'one warm process');
        // Wait (on the clock, no fixed sleep) until the process has waited longer than the whole budget.
        await warmList(home, (w) => w.length === 1 && Date.now() - Date.parse(w[0]!.started_at) > 1500, 'the warm process to outlive max_runtime');
        const done = await runTask(home, 'w', 't3');
        assert.equal(done.status, 'done');
        assert.equal(done.output.pid, first!.pid);
        assert.ok(Date.now() - done.output.started_at > 1000, 'it was started before the budget would have run out');
      });
    }));

  it('agentd status reports the warm processes and their memory', () =>
    inHome(FAST_CONFIG, async (home) => {
      await warmAgent(home, 'w');
      await withDaemon(home, async () => {
        // Right after its spawn a process may have no resident page yet: its memory is not known (null), so wait
        // for a snapshot that knows it rather than read one (README "Warm agents").
        const [first] = await warmList(home, (w) => w.length === 1 && (w[0]!.rss_mb ?? 0) > 0, 'one warm process with its memory known');
        type StatusWarm = { warm: { agent: string; pid: number; rss_mb: number | null }[] };
        const parsed = await untilInFolder(
          home.path('state'),
          async () => JSON.parse((await runCli(['status', '--home', home.root, '--json'])).stdout) as StatusWarm,
          (s) => s.warm.length === 1 && (s.warm[0]!.rss_mb ?? 0) > 0,
          'status --json to show its memory',
          20_000,
        );
        assert.equal(parsed.warm[0]!.pid, first!.pid);
        const text = await runCli(['status', '--home', home.root]);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, new RegExp(`warm agents \\(1, [0-9.]+ MB\\): w pid ${first!.pid} [0-9.]+ MB`));
      });
    }));

  it('a warm process whose memory is not known yet is shown as such, never as 0 MB', () =>
    inHome(undefined, async (home) => {
      // A snapshot of a live daemon (this process) holding one process still starting and one known.
      const snapshot = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'v1', 'daemon-status.json'), 'utf8')) as DaemonStatusFile;
      const at = new Date().toISOString();
      const warm = [
        { agent: 'w', pid: 101, started_at: at, rss_mb: null },
        { agent: 'w', pid: 102, started_at: at, rss_mb: 40.6 },
      ];
      await home.write('state/daemon.json', { ...snapshot, pid: process.pid, host: hostId(), state: 'running', written_at: at, warm });
      const text = await runCli(['status', '--home', home.root]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /warm agents \(2, 40\.6 MB, 1 not known yet\): w pid 101 memory not known yet, w pid 102 40\.6 MB/);
      // The /proc reading itself: a few kB right after exec is up to 0.1 MB, never a rounded 0; none or 0 kB is not known.
      assert.equal(rssMbOf('Name:\tnode\nVmRSS:\t      20 kB\n'), 0.1);
      assert.equal(rssMbOf('VmRSS:\t    1024 kB\n'), 1);
      assert.equal(rssMbOf('VmRSS:\t       0 kB\n'), null);
      assert.equal(rssMbOf('Name:\tnode\nState:\tZ (zombie)\n'), null);
    }));

  it('a changed definition replaces the warm processes; warm out of range is rejected naming the field', () =>
    inHome(FAST_CONFIG, async (home) => {
      await warmAgent(home, 'w');
      await withDaemon(home, async (daemon) => {
        const [first] = await warmList(home, (w) => w.length === 1, 'one warm process');
        await home.write('agents/w/agent.yaml', 'version: "2"\ncommand: [node, agent.mjs]\nwarm: 2\n');
        await warmList(home, (w) => w.length === 2 && w.every((x) => x.pid !== first!.pid), 'two new warm processes');
        await home.write('agents/w/agent.yaml', 'version: "3"\ncommand: [node, agent.mjs]\nwarm: -1\n');
        const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'w', 'the bad definition to be rejected');
        assert.match(String(rejected.problem), /agents\/w\/agent\.yaml.*warm/);
      });
    }));
});
