/**
 * Short file calls on the event loop while they are short (store/inline-calls.ts),
 * and replaced files written inline while the disk is fast (store/sync-choice.ts
 * syncedInline): the gate's decisions, and the same answers whichever way a call runs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InlineGate, shutGate, useInlineGate } from '../src/store/inline-calls.js';
import { exists, listDir, readIfExists, writeFileDurable } from '../src/store/durable.js';
import { readHomeFile } from '../src/store/home-file.js';
import { plainBelowHome } from '../src/store/plain-path.js';
import { heldFolderHandle, holdFoldersUnder, syncFolderSync } from '../src/store/folder-sync.js';
import { HomePaths } from '../src/store/paths.js';

const limits = { slowMs: 1, backoffMs: 1000, windowShareMs: 10, windowMs: 100 };

describe('the inline gate', () => {
  it('stays open while calls are short', () => {
    const gate = new InlineGate(limits);
    for (let i = 0; i < 50; i++) {
      assert.equal(gate.open(i * 5), true);
      gate.took(0.01, i * 5);
    }
  });

  it('one slow call shuts it for the back-off; then it opens again', () => {
    const gate = new InlineGate(limits);
    assert.equal(gate.open(0), true);
    gate.took(4, 4);
    assert.equal(gate.open(5), false);
    assert.equal(gate.open(1003), false);
    assert.equal(gate.open(1004), true);
  });

  it('inline calls take at most their share of each window', () => {
    const gate = new InlineGate(limits);
    let inline = 0;
    while (gate.open(20) && inline < 100) {
      gate.took(0.9, 20);
      inline += 1;
    }
    assert.equal(inline, 12, 'until the 10 ms share of the 100 ms window is spent');
    assert.equal(gate.open(119), false, 'the rest of the window goes to the thread pool');
    assert.equal(gate.open(121), true, 'a new window');
  });

  it('a shut gate never opens', () => {
    const gate = shutGate();
    assert.equal(gate.open(0), false);
    assert.equal(gate.open(1e9), false);
  });
});

describe('the same answers inline and on the thread pool', () => {
  let root: string;
  let paths: HomePaths;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-inline-'));
    paths = new HomePaths(root);
    await fs.mkdir(path.join(root, 'state', 'a'), { recursive: true });
    await fs.writeFile(path.join(root, 'state', 'a', 'small.json'), '{"a":1}');
    await fs.writeFile(path.join(root, 'state', 'a', 'large.json'), 'z'.repeat(300 * 1024)); // past the inline read's size
    execFileSync('mkfifo', [path.join(root, 'state', 'a', 'pipe.json')]);
    await fs.symlink(path.join(root, 'state', 'a'), path.join(root, 'state', 'link'));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  /** What `read` answers, or the error it gives. */
  async function outcome(read: () => Promise<unknown>): Promise<unknown> {
    try {
      return { value: await read() };
    } catch (err) {
      return { error: (err as Error).message, code: (err as NodeJS.ErrnoException).code };
    }
  }

  async function bothWays(read: () => Promise<unknown>): Promise<[unknown, unknown]> {
    const inline = await outcome(read);
    const gate = useInlineGate(shutGate());
    try {
      return [inline, await outcome(read)];
    } finally {
      useInlineGate(gate);
    }
  }

  it('readIfExists: a file, a missing one, a FIFO (refused), one over the cap, one too large to read inline', async () => {
    const at = (name: string) => path.join(root, 'state', 'a', name);
    for (const [name, max] of [['small.json', 100], ['none.json', 100], ['pipe.json', 100], ['small.json', 3], ['large.json', 1024 * 1024]] as const) {
      const [inline, pooled] = await bothWays(() => readIfExists(at(name), max));
      assert.deepEqual(inline, pooled, `${name} at ${max}`);
    }
    assert.deepEqual(await readIfExists(at('small.json')), Buffer.from('{"a":1}'));
    assert.equal((await readIfExists(at('large.json')))!.length, 300 * 1024);
    await assert.rejects(readIfExists(at('pipe.json')), /is not a regular file/);
  });

  it('exists and listDir, readHomeFile and plainBelowHome', async () => {
    const checks: [string, () => Promise<unknown>][] = [
      ['exists', () => exists(path.join(root, 'state', 'a', 'small.json'))],
      ['exists, missing', () => exists(path.join(root, 'state', 'none'))],
      ['listDir', () => listDir(path.join(root, 'state', 'a')).then((names) => names.sort())],
      ['listDir, missing', () => listDir(path.join(root, 'state', 'none'))],
      ['listDir, a file', () => listDir(path.join(root, 'state', 'a', 'small.json'))],
      ['readHomeFile', () => readHomeFile(paths, path.join(root, 'state', 'a', 'small.json'), 1024)],
      ['readHomeFile, a FIFO', () => readHomeFile(paths, path.join(root, 'state', 'a', 'pipe.json'), 1024)],
      ['plainBelowHome', () => plainBelowHome(paths, path.join(root, 'state', 'a', 'x'))],
      ['plainBelowHome, a link', () => plainBelowHome(paths, path.join(root, 'state', 'link', 'x'))],
    ];
    for (const [what, read] of checks) {
      const [inline, pooled] = await bothWays(read);
      assert.deepEqual(inline, pooled, what);
    }
    assert.deepEqual(await exists(path.join(root, 'state', 'none')), false);
    assert.equal(await plainBelowHome(paths, path.join(root, 'state', 'link', 'x')), false);
  });
});

describe('replaced files and folder fsyncs, inline', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-inline-write-'));
    holdFoldersUnder(path.join(root, 'held'));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  it('writeFileDurable writes the file with its mode, and makes a missing folder', async () => {
    const file = path.join(root, 'new', 'deeper', 'x.json');
    await writeFileDurable(file, '{"x":1}\n', { mode: 0o600 });
    assert.equal(await fs.readFile(file, 'utf8'), '{"x":1}\n');
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    await writeFileDurable(file, '{"x":2}\n', { mode: 0o600 });
    assert.equal(await fs.readFile(file, 'utf8'), '{"x":2}\n');
    assert.deepEqual((await fs.readdir(path.dirname(file))).sort(), ['x.json'], 'no temp file left');
  });

  it('writes to one file land in the order they were made, while one of them waits on the thread pool', async () => {
    // The first write finds its folder missing and goes on through the thread pool; the second,
    // made before the first is done, must not land inline before it and then be overwritten.
    const file = path.join(root, 'order', 'y.json');
    const first = writeFileDurable(file, 'first\n');
    const second = writeFileDurable(file, 'second\n');
    await Promise.all([first, second]);
    assert.equal(await fs.readFile(file, 'utf8'), 'second\n');
  });

  it('syncFolderSync holds a folder of the daemon as syncFolder does, and opens a remade one again', () => {
    const dir = path.join(root, 'held', 'a');
    fsSync.mkdirSync(dir, { recursive: true });
    syncFolderSync(dir);
    const fd = heldFolderHandle(dir);
    assert.notEqual(fd, undefined);
    syncFolderSync(dir);
    assert.equal(heldFolderHandle(dir), fd);
    fsSync.rmSync(dir, { recursive: true });
    fsSync.mkdirSync(dir);
    fsSync.writeFileSync(path.join(dir, 'keep'), '');
    syncFolderSync(dir);
    assert.equal(fsSync.fstatSync(heldFolderHandle(dir)!).ino, fsSync.statSync(dir).ino);
    assert.throws(() => syncFolderSync(path.join(root, 'held', 'missing')), { code: 'ENOENT' });
  });
});
