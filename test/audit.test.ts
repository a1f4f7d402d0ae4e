import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appendAudit, readHead, verifyAudit, verifyChain } from '../src/observe/audit.js';
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

  it('lines whose head updates crashes cut off are chained on from the head, however far back the head is', async () => {
    await fs.rm(home.path('state'), { recursive: true, force: true });
    const big = 'x'.repeat(3000); // three such lines are past the short window the head is looked for in first
    const at = (i: number) => new Date(Date.UTC(2026, 10, 24, 0, 0, i));
    for (let i = 0; i < 3; i++) await appendAudit(paths, { event: 'claim', agent: 'a', task_id: `t${i}`, details: big }, at(i));
    const kept = await fs.readFile(paths.auditHeadLog(), 'utf8');
    for (let i = 3; i < 9; i++) await appendAudit(paths, { event: 'claim', agent: 'a', task_id: `t${i}`, details: big }, at(i));
    const last = await readHead(paths);
    assert.equal(last.seq, 9);
    await fs.writeFile(paths.auditHeadLog(), kept); // as if every head line after line 3's had been cut off
    assert.deepEqual(await readHead(paths), last, 'the six lines after the head are followed from it');
    await appendAudit(paths, { event: 'claim', agent: 'a', task_id: 't9' }, at(9));
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 10 });
  });

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

  it('a file replaced under the same name (a copy moved into place) gets the next line, not the file this process appended to before', async () => {
    const lines = await fill();
    const copy = `${paths.audit()}.copy`;
    await fs.writeFile(copy, lines.join('\n') + '\n'); // the same bytes, another inode
    await fs.rename(copy, paths.audit());
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.equal((await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean).length, 6);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('another writer\'s line in between: the next line chains on it, through a fresh open', async () => {
    await fill();
    const other = await fs.readFile(paths.audit(), 'utf8');
    // Another process's append: a second copy of the module, with its own memory of its appends.
    const { appendAudit: theirs } = (await import(`../src/observe/audit.js?other=${Date.now()}`)) as typeof import('../src/observe/audit.js');
    await theirs(paths, { event: 'claim', agent: 'b', task_id: 'x' }, new Date());
    assert.notEqual(await fs.readFile(paths.audit(), 'utf8'), other);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 7 });
  });

  it('a crash between the append and the head write does not fork the chain', async () => {
    await fill();
    const headLines = (await fs.readFile(paths.auditHeadLog(), 'utf8')).split('\n').filter(Boolean);
    assert.equal(headLines.length, 5, 'one head line per audit line');
    await fs.writeFile(paths.auditHeadLog(), headLines.slice(0, 4).join('\n') + '\n'); // the head one behind
    assert.equal((JSON.parse(headLines[4]!) as { seq: number }).seq, 5);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('the head log removed or replaced by hand while this process appends: the next head line goes to the log there now, not to the file it held open', async () => {
    await fill(); // this process holds the head log open from its last line
    const lastHead = async () => JSON.parse((await fs.readFile(paths.auditHeadLog(), 'utf8')).trim().split('\n').at(-1)!) as { seq: number };
    await fs.rm(paths.auditHeadLog());
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.equal((await lastHead()).seq, 6, 'a new head log, with the head');
    const copy = `${paths.auditHeadLog()}.copy`;
    await fs.copyFile(paths.auditHeadLog(), copy);
    await fs.rename(copy, paths.auditHeadLog());
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't6' }, new Date());
    assert.equal((await lastHead()).seq, 7, 'the copy moved into place gets the head');
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 7 });
  });

  it('a writer stalled for seconds inside the lock is waited for, not taken over: the chain does not fork', async () => {
    await fill();
    // A second process takes the lock, reads the head, and then stalls 3 s with its event
    // loop blocked (no lock refresh), as a holder on a loaded machine can during an fsync.
    const holder = path.join(home.root, 'stalled-holder.mjs');
    const audit = new URL('../src/observe/audit.js', import.meta.url).href;
    const store = new URL('../src/store/paths.js', import.meta.url).href;
    await fs.writeFile(
      holder,
      `import { withAuditLock, readHead, appendAfter } from ${JSON.stringify(audit)};
import { HomePaths } from ${JSON.stringify(store)};
const paths = new HomePaths(${JSON.stringify(home.root)});
await withAuditLock(paths, async () => {
  const head = await readHead(paths);
  process.stdout.write('locked\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
  await appendAfter(paths, head, { event: 'tool_call', agent: 'stalled' }, new Date());
});
`,
    );
    const child = spawn(process.execPath, [holder], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve()));
    await appendAudit(paths, { event: 'claim', agent: 'eager', task_id: 't6' }, new Date());
    assert.equal(await exited, 0);
    const lines = (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { agent: string });
    assert.deepEqual(lines.slice(5).map((l) => l.agent), ['stalled', 'eager'], 'the waiting writer appends after the stalled one');
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 7 });
  });

  it('many appends waiting on a lock a killed process left are taken one at a time when it goes stale: the chain does not fork', async () => {
    await fs.rm(home.path('state'), { recursive: true, force: true });
    await appendAudit(paths, { event: 'claim', agent: 'a' }, new Date());
    // The lock folder of a writer killed mid-append, already older than the stale time: every waiter
    // sees it stale at once, and proper-lockfile's takeover (stat, rmdir, mkdir) is not atomic.
    // The race is a matter of microseconds: ten rounds make it all but certain to show.
    const lockDir = `${paths.audit()}.lock`;
    for (let round = 0; round < 10; round++) {
      await fs.mkdir(lockDir);
      const old = new Date(Date.now() - 60_000);
      await fs.utimes(lockDir, old, old);
      await Promise.all(Array.from({ length: 12 }, (_, i) => appendAudit(paths, { event: 'claim', agent: `w${i}` }, new Date())));
    }
    const result = await verifyAudit(paths);
    assert.deepEqual(result, { ok: true, lines: (await fs.readFile(paths.audit(), 'utf8')).trim().split('\n').length });
  });

  it('a line another process appended between two of this process is chained on, not forked from', async () => {
    await fill(); // this process's last append is known to it; the next one would chain on it without reading the files
    const writer = path.join(home.root, 'other-writer.mjs');
    const audit = new URL('../src/observe/audit.js', import.meta.url).href;
    const store = new URL('../src/store/paths.js', import.meta.url).href;
    await fs.writeFile(
      writer,
      `import { appendAudit } from ${JSON.stringify(audit)};
import { HomePaths } from ${JSON.stringify(store)};
await appendAudit(new HomePaths(${JSON.stringify(home.root)}), { event: 'resolution', agent: 'other' }, new Date());
`,
    );
    const child = spawn(process.execPath, [writer], { stdio: ['ignore', 'inherit', 'inherit'] });
    assert.equal(await new Promise<number | null>((resolve) => child.on('exit', resolve)), 0);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    const lines = (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; agent: string });
    assert.deepEqual(lines.map((l) => [l.seq, l.agent]).slice(4), [[5, 'a'], [6, 'other'], [7, 'a']]);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 7 });
  });

  it('a file cut back while this process runs is chained on from the head, so the cut stays visible', async () => {
    const lines = await fill();
    await fs.writeFile(paths.audit(), lines.slice(0, 3).join('\n') + '\n'); // the last two lines removed
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    const after = (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number });
    assert.deepEqual(after.map((l) => l.seq), [1, 2, 3, 6], 'the new line follows the head (line 5), not the last line left');
    const result = await verifyAudit(paths);
    assert.equal(result.ok, false);
  });

  it('two crashes in a row between the append and the head write do not fork the chain', async () => {
    const lines = await fill();
    const third = JSON.parse(lines[2]!) as { seq: number; hash: string };
    await fs.writeFile(paths.auditHeadLog(), JSON.stringify({ seq: third.seq, hash: third.hash }) + '\n'); // the head two behind (two kills in a row)
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 5 }, 'lines past the head are appends whose head update was cut off');
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    const after = (await fs.readFile(paths.audit(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number });
    assert.deepEqual(after.map((l) => l.seq), [1, 2, 3, 4, 5, 6], 'the new line follows the last one, not the head');
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('a head that matches no line of the chain is reported', async () => {
    await fill();
    await fs.appendFile(paths.auditHeadLog(), JSON.stringify({ seq: 3, hash: 'f'.repeat(64) }) + '\n');
    const result = await verifyAudit(paths);
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.problem, /does not match line 3/);
  });

  it('a head line torn by a crash mid-write is skipped: the line before it is the head, and the chain goes on', async () => {
    await fill();
    await fs.appendFile(paths.auditHeadLog(), '{"seq":6,"ha'); // a power cut in the middle of the next head line
    assert.equal((await readHead(paths)).seq, 5);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    assert.equal((await readHead(paths)).seq, 6);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('a head log past 64 KB is replaced by its last line, and the chain goes on', async () => {
    await fill();
    const log = await fs.readFile(paths.auditHeadLog(), 'utf8');
    const last = log.trim().split('\n').at(-1)!;
    await fs.appendFile(paths.auditHeadLog(), `${last}\n`.repeat(Math.ceil((64 * 1024) / (last.length + 1)))); // as if after many appends
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    const after = (await fs.readFile(paths.auditHeadLog(), 'utf8')).split('\n').filter(Boolean);
    assert.equal(after.length, 1);
    assert.equal((JSON.parse(after[0]!) as { seq: number }).seq, 6);
    await appendAudit(paths, { event: 'done', agent: 'a', task_id: 't6' }, new Date());
    assert.equal((await fs.readFile(paths.auditHeadLog(), 'utf8')).split('\n').filter(Boolean).length, 2);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 7 });
  });

  it('a home from before the head log: its head file is read, still finds a cut end, and gives way to the log at the next append', async () => {
    const lines = await fill();
    const fifth = JSON.parse(lines[4]!) as { seq: number; hash: string };
    await fs.rm(paths.auditHeadLog());
    await fs.writeFile(paths.auditHead(), JSON.stringify({ seq: fifth.seq, hash: fifth.hash }));
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 5 });
    await fs.writeFile(paths.audit(), lines.slice(0, 4).join('\n') + '\n');
    const cut = await verifyAudit(paths);
    assert.equal(cut.ok, false, 'the last line removed: the old head file still says 5');
    await fs.writeFile(paths.audit(), lines.join('\n') + '\n');
    // A second copy of the module: a process that has not removed this home's head file yet.
    const { appendAudit: fresh } = (await import(`../src/observe/audit.js?legacy=${Date.now()}`)) as typeof import('../src/observe/audit.js');
    await fresh(paths, { event: 'done', agent: 'a', task_id: 't5' }, new Date());
    await assert.rejects(fs.stat(paths.auditHead()), { code: 'ENOENT' }, 'the head file is gone once the log has the head');
    assert.equal((await readHead(paths)).seq, 6);
    assert.deepEqual(await verifyAudit(paths), { ok: true, lines: 6 });
  });

  it('a head log with no valid line is reported, naming it', async () => {
    await fill();
    await fs.writeFile(paths.auditHeadLog(), 'not a head\n');
    const result = await verifyAudit(paths);
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.problem, /state\/audit\.head\.jsonl holds no valid head/);
  });

  it('verifyChain accepts an empty trail', () => {
    assert.deepEqual(verifyChain('', null), { ok: true, lines: 0 });
  });
});
