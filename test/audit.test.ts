import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { appendAudit, verifyAudit, verifyChain } from '../src/observe/audit.js';
import { HomePaths } from '../src/store/paths.js';
import { TestHome } from './helpers/home.js';

describe('the audit trail', () => {
  let home: TestHome;
  let paths: HomePaths;
  before(async () => {
    home = await TestHome.create();
    paths = new HomePaths(home.root);
  });
  after(async () => home.remove());

  const fill = async () => {
    await fs.rm(home.path('state'), { recursive: true, force: true });
    for (let i = 0; i < 5; i++) {
      await appendAudit(paths, { event: 'claim', agent: 'a', task_id: `t${i}`, run_id: `r${i}` }, new Date(Date.UTC(2026, 10, 24, 0, 0, i)));
    }
    return (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean);
  };

  it('an untouched chain verifies', async () => {
    const lines = await fill();
    assert.equal(lines.length, 5);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 5 });
  });

  it('a changed line is found, by its number', async () => {
    const lines = await fill();
    lines[2] = lines[2]!.replace('"t2"', '"t9"');
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n');
    const result = await verifyAudit(paths);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.line, 3);
    assert.match(!result.ok ? result.problem : '', /changed/);
  });

  it('a removed line is found', async () => {
    const lines = await fill();
    lines.splice(1, 1);
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n');
    const result = await verifyAudit(paths);
    assert.equal(!result.ok && result.line, 2);
  });

  it('reordered lines are found', async () => {
    const lines = await fill();
    [lines[3], lines[4]] = [lines[4]!, lines[3]!];
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n');
    assert.equal((await verifyAudit(paths)).ok, false);
  });

  it('a removed last line is found through the head', async () => {
    const lines = await fill();
    await fs.writeFile(paths.audit(), lines.slice(0, 4).join('\n') + '\n');
    const result = await verifyAudit(paths);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.problem : '', /removed at the end/);
  });

  it('a torn append from a crash is not tampering, and the chain goes on after it', async () => {
    const lines = await fill();
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n{"v":1,"seq":6,"at":"x","ev');
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('agentd audit verify exits 1 naming the first bad line, 0 on a good chain', async () => {
    const lines = await fill();
    const good = await home.cli(['audit', 'verify']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /ok: 5 lines/);
    lines[0] = lines[0]!.replace('"claim"', '"done"');
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n');
    const bad = await home.cli(['audit', 'verify']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /state\/audit\.jsonl:1: /);
  });

  it('a crash between the append and the head write does not fork the chain', async () => {
    await fill();
    const head = JSON.parse(await fs.readFile(home.path('state/audit.head.json'), 'utf8')) as { seq: number };
    const lines = (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean);
    const fourth = JSON.parse(lines[3]!) as { seq: number; hash: string };
    await fs.writeFile(home.path('state/audit.head.json'), JSON.stringify({ seq: fourth.seq, hash: fourth.hash })); // the head one behind
    assert.equal(head.seq, 5);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('verifyChain accepts an empty trail', () => {
    assert.deepEqual(verifyChain('', null), { ok: true, lines: 0 });
  });
});
