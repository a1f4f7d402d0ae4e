import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { DaemonStatusFile } from '../src/store/daemon-status.js';
import type { DoneRecord } from '../src/store/done-records.js';
import type { TestHome } from './helpers/home.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** Spare processes (README.md "Warm agents": `spare`), through the real daemon. */

// Waits for `start`; a task with input.hold waits until the file agents/<agent>/release exists.
// Then answers with its pid and when it was started (its own clock, before any start).
const AGENT = `
const fs = require('node:fs');
const startedAt = Date.now();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  const nl = buffered.indexOf('\\n');
  if (nl === -1 || buffered.startsWith('#')) return;
  const start = JSON.parse(buffered.slice(0, nl));
  buffered = '#';
  const answer = () => process.stdout.write(JSON.stringify({ type: 'result', output: { pid: process.pid, started_at: startedAt, task_id: start.task.id } }) + '\\n');
  if (!start.task.input?.hold) return answer();
  const timer = setInterval(() => { if (fs.existsSync('release')) { clearInterval(timer); answer(); } }, 20);
});
process.stdin.on('end', () => process.exit(0));
`;

type Warm = NonNullable<DaemonStatusFile['warm']>;
type Done = DoneRecord & { output: { pid: number; started_at: number; task_id: string } };

async function spareAgent(home: TestHome, name: string, extra = 'spare: true\n'): Promise<void> {
  await home.write(`agents/${name}/agent.cjs`, AGENT);
  await home.write(`agents/${name}/agent.yaml`, `version: "1"\ncommand: [node, agent.cjs]\n${extra}`);
}

/** state/daemon.json once `accept` holds of it. */
function statusWhen(home: TestHome, accept: (s: DaemonStatusFile) => boolean, what: string): Promise<DaemonStatusFile> {
  const read = async () => JSON.parse(await fs.readFile(home.path('state/daemon.json'), 'utf8')) as DaemonStatusFile;
  return untilInFolder(home.path('state'), read, accept, what, 20_000);
}

const spares = (s: DaemonStatusFile, agent: string): Warm => (s.warm ?? []).filter((w) => w.agent === agent && w.spare === true);

function doneRecord(home: TestHome, agent: string, id: string): Promise<Done> {
  return untilInFolder(home.path(`state/${agent}/done`), () => home.readJson<Done>(`state/${agent}/done/${id}.json`), () => true, `${id} to be done`, 20_000);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One task held running (t1) and one queued behind it (t2): the spare's condition. */
async function oneRunningOneQueued(home: TestHome, daemon: { waitForLog(match: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> }): Promise<void> {
  await home.inbox('s', 't1', { goal: 'hold', input: { hold: true } });
  await daemon.waitForLog((l) => l.msg === 'run started' && l.task_id === 't1', 't1 to start');
  await home.inbox('s', 't2', { goal: 'next' });
}

describe('spare agent processes', () => {
  it('a queued task runs in a process started before it was claimed; none is left once the inbox is empty', () =>
    inHome(FAST_CONFIG, async (home) => {
      await spareAgent(home, 's');
      await withDaemon(home, async (daemon) => {
        await oneRunningOneQueued(home, daemon);
        const withSpare = await statusWhen(home, (s) => spares(s, 's').length === 1 && spares(s, 's')[0]!.rss_mb !== null, 'a spare while t2 waits');
        const spare = spares(withSpare, 's')[0]!;
        await home.write('agents/s/release', '');
        const t1 = await doneRecord(home, 's', 't1');
        assert.notEqual(t1.output.pid, spare.pid, 't1 ran in the process spawned for it');
        const t2 = await doneRecord(home, 's', 't2');
        assert.equal(t2.status, 'done');
        assert.equal(t2.output.pid, spare.pid, 't2 ran in the spare');
        const claimed = await daemon.waitForLog((l) => l.msg === 'run started' && l.task_id === 't2', 't2 started');
        assert.ok(t2.output.started_at <= Number(claimed.time), 'its process was started before t2 was claimed');
        await statusWhen(home, (s) => spares(s, 's').length === 0 && (s.runs ?? []).length === 0, 'no spare once the inbox is empty');
      });
    }));

  it('a spare no task waits for any more is stopped once the claim in progress ends', () =>
    inHome(FAST_CONFIG, async (home) => {
      await spareAgent(home, 's');
      await withDaemon(home, async (daemon) => {
        await oneRunningOneQueued(home, daemon);
        const spare = spares(await statusWhen(home, (s) => spares(s, 's').length === 1, 'a spare while t2 waits'), 's')[0]!;
        await fs.rm(home.path('agents/s/inbox/t2.json')); // a person takes the queued task back
        await home.write('agents/s/release', '');
        assert.equal((await doneRecord(home, 's', 't1')).status, 'done');
        await daemon.waitForLog((l) => l.msg === 'spare agent process stopped' && l.agent === 's', 'the spare to be stopped');
        await statusWhen(home, (s) => spares(s, 's').length === 0, 'the spare gone from status');
        await untilInFolder(home.path('state'), async () => alive(spare.pid), (a) => !a, 'the spare process to be gone', 20_000);
      });
    }));

  it('a spare that dies is no error, costs its task no attempt, and is replaced while the task waits', () =>
    inHome(FAST_CONFIG, async (home) => {
      await spareAgent(home, 's', 'spare: true\nmax_attempts: 1\n');
      await withDaemon(home, async (daemon) => {
        await oneRunningOneQueued(home, daemon);
        const first = spares(await statusWhen(home, (s) => spares(s, 's').length === 1, 'a spare'), 's')[0]!;
        process.kill(first.pid, 'SIGKILL');
        const died = await daemon.waitForLog((l) => l.msg === 'spare agent process exited before its task' && l.pid === first.pid, 'the death to be seen');
        assert.equal(died.level, 30, 'logged as information, not as an error');
        const later = await statusWhen(home, (s) => spares(s, 's').some((w) => w.pid !== first.pid), 'a new spare');
        const next = spares(later, 's').find((w) => w.pid !== first.pid)!;
        assert.equal(later.last_errors.s, undefined, 'no error recorded for the agent');
        await home.write('agents/s/release', '');
        const t2 = await doneRecord(home, 's', 't2');
        // max_attempts: 1: had the death counted as a failed run of t2, t2 would have been dead-lettered.
        assert.equal(t2.status, 'done');
        assert.equal(t2.runs.length, 1, 'one run: the spare that died was no run of t2');
        assert.equal(t2.output.pid, next.pid);
        assert.equal((await doneRecord(home, 's', 't1')).status, 'done');
        const deadLetters = await fs.readdir(home.path('state/dead-letter/s')).catch(() => []);
        assert.deepEqual(deadLetters, [], 'no task failed');
      });
    }));

  it('a command agent gets no spare unless its definition says spare: true; a plain agent cannot have one', () =>
    inHome(FAST_CONFIG, async (home) => {
      await spareAgent(home, 'n', ''); // no spare key: a command of yours may read its task from its environment
      await spareAgent(home, 's');
      await withDaemon(home, async (daemon) => {
        // n first: its inbox events come before s's, so the snapshot that shows s's spare has seen n's queue.
        for (const agent of ['n', 's']) {
          await home.inbox(agent, 't1', { goal: 'hold', input: { hold: true } });
          await daemon.waitForLog((l) => l.msg === 'run started' && l.agent === agent && l.task_id === 't1', `${agent} t1 to start`);
        }
        await home.inbox('n', 't2', { goal: 'next' });
        await home.inbox('s', 't2', { goal: 'next' });
        const seen = await statusWhen(home, (s) => spares(s, 's').length === 1, "s's spare");
        assert.deepEqual((seen.warm ?? []).filter((w) => w.agent === 'n'), [], 'n has none');
        await home.write('agents/n/release', '');
        await home.write('agents/s/release', '');
        await doneRecord(home, 'n', 't2');
        await home.write('agents/p/agent.yaml', 'version: "1"\ncommand: [node, x.js]\nprotocol: none\nspare: true\n');
        const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'p', 'the plain agent with spare to be rejected');
        assert.match(String(rejected.problem), /agents\/p\/agent\.yaml.*spare: true needs the agentd protocol/);
      });
    }));
});
