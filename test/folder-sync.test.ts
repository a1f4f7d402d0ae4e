import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { heldFolderHandle, holdFoldersUnder, syncFolder } from '../src/store/folder-sync.js';

describe('folder fsyncs through held handles (store/folder-sync.ts)', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-folder-sync-'));
    holdFoldersUnder(path.join(root, 'held'));
    fs.mkdirSync(path.join(root, 'held'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a folder fsynced again goes through the handle it already has', async () => {
    const dir = path.join(root, 'held', 'a');
    fs.mkdirSync(dir);
    await syncFolder(dir);
    const fd = heldFolderHandle(dir);
    assert.notEqual(fd, undefined);
    await syncFolder(dir);
    assert.equal(heldFolderHandle(dir), fd);
    assert.equal(fs.fstatSync(fd!).ino, fs.statSync(dir).ino);
  });

  it('a folder removed and made again under the same name is opened again: the fsync reaches the folder the name now is', async () => {
    const dir = path.join(root, 'held', 'b');
    fs.mkdirSync(dir);
    await syncFolder(dir);
    fs.rmSync(dir, { recursive: true });
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep'), ''); // a new inode, whatever the file system reuses
    await syncFolder(dir);
    const fd = heldFolderHandle(dir);
    assert.equal(fs.fstatSync(fd!).ino, fs.statSync(dir).ino);
    assert.ok(fs.fstatSync(fd!).nlink > 0);
  });

  it('a missing folder is an error, and nothing is held for it', async () => {
    const dir = path.join(root, 'held', 'missing');
    await assert.rejects(syncFolder(dir), { code: 'ENOENT' });
    assert.equal(heldFolderHandle(dir), undefined);
  });

  it('only the last 64 folders are held: the oldest handle is closed', async () => {
    const dirs = Array.from({ length: 70 }, (_, i) => path.join(root, 'held', `many-${i}`));
    for (const dir of dirs) {
      fs.mkdirSync(dir);
      await syncFolder(dir);
    }
    assert.equal(heldFolderHandle(dirs[0]!), undefined);
    assert.notEqual(heldFolderHandle(dirs[69]!), undefined);
    assert.equal(dirs.filter((d) => heldFolderHandle(d) !== undefined).length, 64);
  });

  it("a folder outside the daemon's own roots (a person's agent folder) is opened by name each time, never held", async () => {
    const dir = path.join(root, 'agents-like');
    fs.mkdirSync(dir);
    await syncFolder(dir);
    assert.equal(heldFolderHandle(dir), undefined);
    // Swapped for another folder by a move: the next fsync reaches the folder the name now is, since nothing was held.
    fs.renameSync(dir, path.join(root, 'agents-like.old'));
    fs.mkdirSync(dir);
    await syncFolder(dir);
    assert.equal(heldFolderHandle(dir), undefined);
  });
});
