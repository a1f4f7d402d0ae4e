import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { HomePaths } from '../src/store/paths.js';
import { hostId } from '../src/store/host.js';
import { liveRecords, openClaimRegistry, orphanAction, readLiveGroups, registerGroup, unregisterGroup, type GroupRecord } from '../src/store/process-registry.js';
import { isAlive } from './helpers/process.js';

describe('orphanAction', () => {
  const record: GroupRecord = { v: 1, pgid: 500, kind: 'tool', run_id: 'r', host: 'h', daemon_pid: 40, start_ticks: '123' };
  const facts = { host: 'h', myPid: 41, daemonAlive: () => false, startTicks: () => '123' as string | null | undefined };
  it('kills a live group a dead daemon on this host left behind', () => assert.equal(orphanAction(record, facts), 'kill'));
  it('forgets a group that is gone, or whose pid now belongs to another process', () => {
    assert.equal(orphanAction(record, { ...facts, startTicks: () => undefined }), 'forget');
    assert.equal(orphanAction(record, { ...facts, startTicks: () => '999' }), 'forget');
  });
  it("keeps another host's, and a live daemon's", () => {
    assert.equal(orphanAction({ ...record, host: 'other' }, facts), 'keep');
    assert.equal(orphanAction(record, { ...facts, daemonAlive: () => true }), 'keep');
  });
  it("this daemon's own leftover (it holds the lock, so no run of its own is in flight) is killed", () => {
    assert.equal(orphanAction({ ...record, daemon_pid: 41 }, { ...facts, daemonAlive: () => true }), 'kill');
  });
});

describe('the process registry file (state/<agent>/pids.jsonl)', () => {
  const quiet = pino({ level: 'silent' });

  it('liveRecords: a group said gone is void; a later record of the same pgid stands', () => {
    const a = { v: 1, pgid: 700, kind: 'agent', run_id: 'r1', host: 'h', daemon_pid: 40, start_ticks: '1' };
    const b = { ...a, pgid: 701, kind: 'tool' };
    assert.deepEqual(liveRecords([a, b, { v: 1, gone: 701 }]), [a]);
    assert.deepEqual(liveRecords([a, { v: 1, gone: 700 }, { ...a, run_id: 'r2' }]), [{ ...a, run_id: 'r2' }]);
    assert.deepEqual(liveRecords([{ v: 1, pgid: 1, host: 'h', daemon_pid: 2 }, 'garbage', null]), [], 'pgid 1 and junk are no records');
  });

  it('a group a dead daemon on this host recorded is killed at the claim, and the file starts over; a gone one is not touched', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-registry-'));
    const victim = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    const bystander = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    try {
      const paths = new HomePaths(root);
      await registerGroup(paths, 'a', victim.pid!, 'tool', 'r1');
      await registerGroup(paths, 'a', bystander.pid!, 'agent', 'r1');
      await unregisterGroup(paths, 'a', bystander.pid!);
      // As a daemon that died would have left them: its pid is no live process.
      const file = paths.processRegistry('a');
      const dead = 2 ** 22 + 12345;
      await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replaceAll(`"daemon_pid":${process.pid}`, `"daemon_pid":${dead}`));
      const exited = new Promise((resolve) => victim.on('exit', resolve));
      await (await openClaimRegistry(paths, 'a', quiet)).close();
      await exited;
      assert.equal(isAlive(bystander.pid!), true, 'a group recorded gone is left alone');
      assert.equal(await fs.readFile(file, 'utf8'), '', 'every record dealt with');
      assert.deepEqual(await readLiveGroups(paths, 'a'), []);
    } finally {
      victim.kill('SIGKILL');
      bystander.kill('SIGKILL');
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('a per-group file of the former layout (state/<agent>/pids/<pgid>.json) is still killed and removed', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-registry-'));
    const victim = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    try {
      const paths = new HomePaths(root);
      const record = { v: 1, pgid: victim.pid!, kind: 'tool', run_id: 'r0', host: hostId(), daemon_pid: 2 ** 22 + 12345, start_ticks: null };
      await fs.mkdir(paths.pidsDir('legacy'), { recursive: true });
      // As the former daemon wrote it: writeJsonAtomic, indented over several lines.
      await fs.writeFile(path.join(paths.pidsDir('legacy'), `${victim.pid}.json`), JSON.stringify(record, null, 2) + '\n');
      const exited = new Promise((resolve) => victim.on('exit', resolve));
      await (await openClaimRegistry(paths, 'legacy', quiet)).close();
      await exited;
      assert.deepEqual(await fs.readdir(paths.pidsDir('legacy')), []);
    } finally {
      victim.kill('SIGKILL');
      await fs.rm(root, { recursive: true, force: true });
    }
  });
  it("a claim's records go to the file it emptied; after the claim, and where a kept record made it replace the file, they still land in the file by that name", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-registry-'));
    const other = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    try {
      const paths = new HomePaths(root);
      const file = paths.processRegistry('a');
      // No file yet: the claim's first record makes it.
      let claim = await openClaimRegistry(paths, 'a', quiet);
      await registerGroup(paths, 'a', 4242, 'agent', 'r1');
      await unregisterGroup(paths, 'a', 4242);
      await claim.close();
      await unregisterGroup(paths, 'a', 4243); // after the claim: by name
      assert.deepEqual((await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as unknown).map((l) => (l as { gone?: number; pgid?: number }).gone ?? (l as { pgid: number }).pgid), [4242, 4242, 4243]);
      // The next claim empties it and appends through the same handle.
      claim = await openClaimRegistry(paths, 'a', quiet);
      assert.equal(await fs.readFile(file, 'utf8'), '', 'every record dealt with');
      await registerGroup(paths, 'a', 4244, 'tool', 'r2');
      await claim.close();
      assert.deepEqual((await readLiveGroups(paths, 'a')).map((r) => r.pgid), [4244]);
      // A record the claim must keep (a live daemon's on this host): the file is rewritten, and the claim's records follow it.
      const kept = { v: 1, pgid: other.pid!, kind: 'tool', run_id: 'r0', host: hostId(), daemon_pid: other.pid!, start_ticks: null };
      await fs.writeFile(file, JSON.stringify(kept) + '\n');
      claim = await openClaimRegistry(paths, 'a', quiet);
      await registerGroup(paths, 'a', 4245, 'agent', 'r3');
      await claim.close();
      assert.deepEqual((await readLiveGroups(paths, 'a')).map((r) => r.pgid), [other.pid!, 4245]);
    } finally {
      other.kill('SIGKILL');
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it("a registry file replaced under its name during a claim (another daemon's claim rewrote it): the claim's next records go to the new file", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-registry-'));
    try {
      const paths = new HomePaths(root);
      const file = paths.processRegistry('a');
      const claim = await openClaimRegistry(paths, 'a', quiet);
      await registerGroup(paths, 'a', 5001, 'agent', 'r1');
      // What writeFileDurable does: a new file renamed over the name, so the claim's handle is of an unlinked file.
      const theirs = { v: 1, pgid: 6001, kind: 'tool', run_id: 'theirs', host: 'other-host', daemon_pid: 1, start_ticks: null };
      await fs.writeFile(`${file}.tmp`, JSON.stringify(theirs) + '\n');
      await fs.rename(`${file}.tmp`, file);
      await registerGroup(paths, 'a', 5002, 'tool', 'r1');
      await unregisterGroup(paths, 'a', 6001);
      await claim.close();
      const lines = (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { pgid?: number; gone?: number });
      assert.deepEqual(lines.map((l) => l.gone ?? l.pgid), [6001, 5002, 6001], 'the records after the replacement are in the file by its name');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
