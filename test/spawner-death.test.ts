import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import { isAlive, pidsWith } from './helpers/process.js';
import { untilTrue } from './helpers/byo.js';

/**
 * The spawner dies while a plain agent runs (README.md, "The spawner"): the
 * agent runs on, but its exit status goes to whoever reaps it, not to the
 * daemon. Exit 0 is a plain agent's only word that it finished, so the run is
 * dead-lettered for a person and not run again, which could repeat what it did.
 */

/** A plain agent that notes each start, then waits for `release` before it prints its result and exits 0. */
const PAYER = `cat > /dev/null
echo run >> runs.log
while [ ! -e release ]; do sleep 0.05; done
printf '{"paid":true}\\n'
exit 0
`;

/** The spawner the daemon forked (its parent is the daemon). */
function spawnerOf(daemonPid: number): number | undefined {
  return pidsWith('spawner-process.js').find((pid) => {
    try {
      return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]) === daemonPid;
    } catch {
      return false;
    }
  });
}

describe('the spawner dies while a plain agent runs', () => {
  it('its exit status is lost: the task is dead-lettered once, with what it printed, and never run again', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/payer/agent.sh', PAYER);
      await home.write('agents/payer/agent.json', { version: '1', protocol: 'none', command: ['sh', 'agent.sh'], env: ['PATH'], max_attempts: 3 });
      await withDaemon(home, async (daemon) => {
        await home.inbox('payer', 'p1', { goal: 'pay once' });
        // Its task came through the daemon's end of its stdin: the spawner has handed it over.
        await untilTrue(() => fs.existsSync(home.path('agents/payer/runs.log')), 'the agent to start');
        const spawner = spawnerOf(daemon.child.pid!);
        assert.ok(spawner, 'the daemon has a spawner');
        process.kill(spawner, 'SIGKILL');
        await untilTrue(() => !isAlive(spawner), 'the spawner to be gone');
        fs.writeFileSync(home.path('agents/payer/release'), '');

        const ended = await daemon.runEnded('payer');
        assert.equal(ended.outcome, 'failed');
        const record = await home.readJson<{ attempts: number; error: { category: string; message: string } }>('state/dead-letter/payer/p1.json');
        assert.equal(record.error.category, 'crash');
        assert.match(record.error.message, /exit status was lost \(the spawner died while it ran\)/);
        assert.match(record.error.message, /its stdout began: \{"paid":true\}/);
        assert.match(record.error.message, /agentd dlq retry p1$/);
        assert.equal(record.attempts, 1, 'dead-lettered at its first run, though max_attempts is 3');
        const history = await home.readLines<{ status: string }>('state/payer/history.jsonl');
        assert.deepEqual(history.map((h) => h.status), ['dead_letter']);
        assert.equal(fs.readFileSync(home.path('agents/payer/runs.log'), 'utf8'), 'run\n', 'the agent ran once');

        // The next process starts a new spawner, and a plain agent's exit 0 is done again.
        await home.inbox('payer', 'p2', { goal: 'pay again' });
        const next = await daemon.runEnded('payer', 2);
        assert.equal(next.outcome, 'done');
        assert.deepEqual((await home.readJson<{ output: unknown }>('state/payer/done/p2.json')).output, { paid: true });
      });
    }));
});
