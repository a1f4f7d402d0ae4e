/**
 * The sandbox under the hardened unit with the sandbox drop-in (deploy/agentd-sandbox.conf,
 * README "Security"): systemd cannot run as PID 1 here, so each case builds the part
 * of the unit that decides whether bwrap works — the /proc the service gets — in a
 * mount namespace of its own, switches to an unprivileged account with no
 * capabilities (the unit's User= with an empty bounding set), and spawns a sandboxed
 * probe with the daemon's own code (src/security/sandbox.ts, proc-view.ts).
 *   - ProcSubset=pid + ProtectProc=invisible (what the drop-in keeps, with
 *     ProtectKernelTunables and ProtectKernelLogs on): the daemon puts bwrap inside
 *     `unshare` and the probe runs in its own PID namespace, read-only outside its folder;
 *     bwrap without that wrapper stops (it needs /proc/sys/kernel/overflowuid);
 *   - a /proc with something mounted over /proc/sys (ProcSubset=all with
 *     ProtectKernelTunables): the kernel refuses bwrap's /proc, which is why the
 *     drop-in uses ProcSubset=pid.
 * The unit's seccomp filter, RestrictNamespaces, PrivateNetwork and IP rules are not
 * reproduced here (README "Security" says what is checked where).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from './helpers/home.js';
import { findOnPath } from '../src/security/sandbox.js';
import { procWrapper } from '../src/security/proc-view.js';

const NOBODY = 65534;
const DIST = path.join(REPO_ROOT, 'dist');
const tools = ['unshare', 'setpriv', 'bwrap', 'mount'].map((name) => findOnPath(name));
const skip = process.getuid?.() !== 0 ? 'needs root to build the stand-in /proc (CI runs as root)' : tools.includes(null) ? 'needs unshare, setpriv, mount and bwrap' : false;

/** Shell that builds the service's /proc, then becomes nobody without capabilities and runs "$@". */
const SERVICE_PROC = {
  pid_only: 'mount -t proc -o hidepid=invisible,subset=pid proc /proc',
  over_mounted: 'mount -t proc -o hidepid=invisible proc /proc && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys',
};

interface Outcome {
  wrapped: boolean;
  status: number | null;
  stdout: string;
  stderr: string;
}

let home = '';
let agentDir = '';

function runAs(proc: keyof typeof SERVICE_PROC, mode: 'host' | 'bare'): Outcome {
  const script = `mount --make-rprivate / && ${SERVICE_PROC[proc]} && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"`;
  const driver = path.join(REPO_ROOT, 'test', 'fixtures', 'proc-subset-driver.mjs');
  const run = spawnSync('unshare', ['--mount', '--', 'sh', '-c', script, 'sh', process.execPath, driver, DIST, home, agentDir, mode], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `the stand-in failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Outcome;
}

describe('sandbox under the unit\'s pid-only /proc', { skip }, () => {
  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-procsubset-'));
    agentDir = path.join(home, 'agents', 'probe');
    fs.mkdirSync(agentDir, { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'proc-probe.mjs'), path.join(agentDir, 'proc-probe.mjs'));
    fs.chmodSync(home, 0o755);
    fs.chownSync(home, NOBODY, NOBODY);
    fs.chownSync(agentDir, NOBODY, NOBODY);
  });
  after(() => fs.rmSync(home, { recursive: true, force: true }));

  it('the daemon wraps bwrap, and the probe gets its own PID namespace and a read-only world outside its folder', () => {
    const outcome = runAs('pid_only', 'host');
    assert.equal(outcome.wrapped, true, 'a pid-only /proc must be detected');
    assert.equal(outcome.status, 0, `sandboxed probe failed: ${outcome.stderr}`);
    const seen = JSON.parse(outcome.stdout) as Record<string, unknown>;
    assert.ok(typeof seen.nspid === 'string' && Number((seen.nspid as string).split(/\s+/)[0]) < 10, `probe pid: ${String(seen.nspid)}`);
    assert.equal(seen.sees_driver, false, 'the spawning process must not be visible');
    assert.ok((seen.pids as number) <= 4, `probe sees ${String(seen.pids)} processes`);
    assert.equal(seen.write_own, 'written');
    assert.equal(seen.write_home, 'EROFS');
  });

  it('bwrap without the wrapper stops on the pid-only /proc', () => {
    const outcome = runAs('pid_only', 'bare');
    assert.notEqual(outcome.status, 0);
    assert.match(outcome.stderr, /overflowuid/);
  });

  it('with something mounted over /proc/sys the kernel refuses bwrap its /proc (why the drop-in keeps ProcSubset=pid)', () => {
    const outcome = runAs('over_mounted', 'host');
    assert.equal(outcome.wrapped, false, 'a whole /proc needs no wrapper');
    assert.notEqual(outcome.status, 0);
    assert.match(outcome.stderr, /Can't mount proc/);
  });
});

describe('proc wrapper decision', () => {
  it('wraps only when /proc is pid-only and unshare exists', () => {
    assert.deepEqual(procWrapper('/usr/bin/unshare', true), []);
    assert.deepEqual(procWrapper(null, false), []);
    assert.deepEqual(procWrapper('/usr/bin/unshare', false), ['/usr/bin/unshare', '--user', '--map-current-user', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--']);
  });
});
