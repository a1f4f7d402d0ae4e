import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import type { TestHome } from './helpers/home.js';
import { chainHead } from '../src/observe/audit.js';

/** Issue 11 item 6b: a lost tail of state/audit.jsonl stays reported after the daemon appends again. */

async function runTask(home: TestHome, id: string): Promise<void> {
  await home.inbox('worker', id, { goal: 'audited work', input: { script: [{ result: id }] } });
  await withDaemon(home, async (daemon) => {
    await daemon.runEnded('worker');
  });
}

async function cut(home: TestHome, keep: number): Promise<void> {
  const lines = (await fs.readFile(home.path('state/audit.jsonl'), 'utf8')).split('\n').filter(Boolean);
  await fs.writeFile(home.path('state/audit.jsonl'), lines.slice(0, keep).map((l) => l + '\n').join(''));
}

describe('the audit trail after its tail is cut', () => {
  for (const [name, keep] of [['the last lines removed', 2], ['the file emptied', 0]] as const) {
    it(`${name}: audit verify still fails after the daemon appends again`, () =>
      inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('worker');
        await runTask(home, 'a1');
        await runTask(home, 'a2');
        assert.equal((await home.cli(['audit', 'verify'])).code, 0);
        await cut(home, keep);
        assert.equal((await home.cli(['audit', 'verify'])).code, 1, 'reported at once');
        await runTask(home, 'a3');
        const after = await home.cli(['audit', 'verify']);
        assert.equal(after.code, 1, `still reported after further appends: ${after.stdout}`);
        assert.match(after.stdout, /state\/audit\.jsonl:\d+: /);
      }));
  }
});

describe('chainHead', () => {
  const head = { seq: 5, hash: 'h5' };
  const line = (seq: number, prev = `h${seq - 1}`, hash = `h${seq}`) => ({ seq, hash, prev });
  it('the head file wins over a shorter or emptied file', () => {
    assert.deepEqual(chainHead(head, [line(2), line(3)]), head);
    assert.deepEqual(chainHead(head, []), head);
  });
  it('lines written after the head, whose head update crashes cut off, are followed — one or several', () => {
    assert.deepEqual(chainHead(head, [line(4), line(5), line(6)]), { seq: 6, hash: 'h6' });
    assert.deepEqual(chainHead(head, [line(5), line(6), line(7)]), { seq: 7, hash: 'h7' }, 'two crashes in a row between append and head');
    assert.deepEqual(chainHead(head, [line(5), line(6, 'forged', 'x6')]), head, 'a line that does not chain on is not');
  });
  it('no head file yet: the file is all there is', () => {
    assert.deepEqual(chainHead(null, [line(1, 'g'), line(2)]), { seq: 2, hash: 'h2' });
    assert.equal(chainHead(null, []).seq, 0);
  });
});
