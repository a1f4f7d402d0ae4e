import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import type { DaemonStatusFile } from '../src/store/daemon-status.js';
import { CLI } from './helpers/home.js';
import { FAST_CONFIG, inHome, readJsonOrNull, untilInFolder, withDaemon } from './helpers/support.js';

/** The operator's desk in a terminal (README "agentd top"): `agentd outbox` and the live view. */

const ENTER = '\x1b[?1049h';
const LEAVE = '\x1b[?1049l';

describe('agentd outbox in a terminal', () => {
  it('shows the question, the exact call of an approval, and the decisions each kind allows; control characters are escaped', () =>
    inHome(undefined, async (home) => {
      await home.write('outbox/billing/outbox.json', {
        v: 1,
        items: [
          { id: 'billing:0001', kind: 'uncertain', agent: 'billing', task_id: 't1', run_id: 'r1', created_at: '2026-01-01T00:00:00.000Z', reason: 'two totals', question: 'Which total is right?\x1b[2J', status: 'open' },
          { id: 'billing:0002', kind: 'approval', agent: 'billing', task_id: 't2', run_id: 'r2', created_at: '2026-01-01T00:01:00.000Z', reason: 'pay needs approval', details: { seq: 1, tool: 'pay', args: { amount: 10 }, call_hash: 'h' }, status: 'open' },
        ],
      });
      const result = await home.cli(['outbox']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /question +Which total is right\?\\x1b\[2J\n/);
      assert.ok(!result.stdout.includes('\x1b'), 'no raw escape reaches the terminal');
      assert.match(result.stdout, /decide +agentd resolve billing:0001 --answer TEXT \| --continue \[--extend steps=20\] \| --cancel\n/);
      assert.match(result.stdout, /call +pay \{"amount":10\}\n/);
      assert.match(result.stdout, /decide +agentd resolve billing:0002 --approve \| --deny \| --cancel\n/);
    }));
});

describe('agentd top', () => {
  it('--once shows agents, the run in flight with its steps and spend, and the daemon; iterations refresh in place and restore the screen', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('slow');
      await home.inbox('slow', 'long-task', { goal: 'wait', input: { script: [{ checkpoint: { at: 1 } }, { sleep: 60_000 }] } });
      await withDaemon(home, async (daemon) => {
        await daemon.waitForLog((l) => l.msg === 'run started', 'run started');
        await untilInFolder(home.path('state'), () => readJsonOrNull<DaemonStatusFile>(home.path('state/daemon.json')), (s) => (s?.runs.length ?? 0) > 0, 'the run in the snapshot');
        const once = await home.cli(['top', '--once']);
        assert.equal(once.code, 0, once.stderr);
        assert.match(once.stdout, /daemon running {2}pid \d+/);
        assert.match(once.stdout, /AGENTS\n.*\n {2}slow +running/);
        assert.match(once.stdout, /RUNS IN FLIGHT\n {2}slow +long-task +\S+ +steps \[[#.]{12}\] \d+\/50 +tools 0 +tokens \d+ +\$[0-9.]+\/\$2\.00/);
        assert.ok(!once.stdout.includes('\x1b'), '--once is plain text');

        const frames = await home.cli(['top', '--iterations', '2', '--interval', '10ms']);
        assert.equal(frames.code, 0, frames.stderr);
        assert.ok(frames.stdout.startsWith(ENTER), 'the alternate screen');
        assert.equal(frames.stdout.split('\x1b[H').length - 1, 2, 'two frames, each drawn from the top left');
        assert.ok(frames.stdout.endsWith(LEAVE), 'the screen is restored');
      });
    }));

  it('quits cleanly on q, restoring the screen', () =>
    inHome(undefined, async (home) => {
      const child = spawn(process.execPath, [CLI, 'top', '--home', home.root, '--interval', '50ms'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      const firstFrame = new Promise<void>((resolve) => child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (out.includes('CIRCUITS')) resolve();
      }));
      const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await firstFrame;
      child.stdin.write('q');
      assert.equal(await closed, 0);
      assert.ok(out.endsWith(LEAVE));
    }));
});
