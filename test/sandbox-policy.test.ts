/** The pure decisions behind `sandbox` and `run_as` (README "Security"), without processes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasSetIdCaps, holdsCapabilities, lookupGroup, lookupUser, resolveRunAs } from '../src/security/run-as.js';
import { bwrapArgs, confineSpawn } from '../src/security/sandbox.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nworker:x:1500:1600::/home/worker:/bin/sh\n';
const GROUP = 'root:x:0:\nworkers:x:1600:\nreviewers:x:1700:\n';
const where = { home: '/srv/agentd', agentDir: '/srv/agentd/agents/a', cwd: '/srv/agentd/agents/a' };
const host = { bwrap: '/usr/bin/bwrap', hidden: [], dropCaps: null, procWrapper: [] as string[] };

describe('sandbox policy', () => {
  it('bwrap gets a read-only root, the home emptied and read-only but for the agent folder, its own PID namespace, and the network', () => {
    const args = bwrapArgs({ ...where, hidden: [] }, ['/usr/bin/node', 'agent.js']);
    const text = args.join(' ');
    assert.ok(text.startsWith('--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp'));
    const hidden = text.indexOf('--tmpfs /srv/agentd ');
    const boundBack = text.indexOf('--bind /srv/agentd/agents/a /srv/agentd/agents/a');
    const readOnly = text.indexOf('--remount-ro /srv/agentd');
    assert.ok(hidden >= 0 && hidden < boundBack && boundBack < readOnly, 'the home is hidden, then the agent folder bound back, then the home made read-only');
    for (const flag of ['--unshare-pid', '--die-with-parent']) assert.ok(args.includes(flag), flag);
    assert.ok(!args.some((a) => a.startsWith('--unshare-net') || a === '--unshare-all'), 'loopback stays reachable');
    assert.deepEqual(args.slice(args.indexOf('--chdir'), args.indexOf('--chdir') + 2), ['--chdir', where.cwd]);
    assert.deepEqual(args.slice(args.indexOf('--')), ['--', '/usr/bin/node', 'agent.js']);
  });

  it('plain agents\' task folders are shown read-only; hidden paths that do not exist add nothing', () => {
    const args = bwrapArgs({ ...where, readable: ['/tmp/agentd-run-x'], hidden: ['/nonexistent/key'] }, ['x']);
    assert.ok(args.join(' ').includes('--ro-bind /tmp/agentd-run-x /tmp/agentd-run-x'));
    assert.ok(!args.includes('/nonexistent/key'));
  });

  it('spawns bare, under bwrap, as another account, and through setpriv when the daemon holds capabilities', () => {
    const runAs = { spec: 'worker', uid: 1500, gid: 1600 };
    assert.deepEqual(confineSpawn(['/bin/x', 'a'], { sandbox: false, runAs: null }, where, host), { file: '/bin/x', args: ['a'] });
    assert.deepEqual(confineSpawn(['/bin/x'], { sandbox: false, runAs }, where, host), { file: '/bin/x', args: [], uid: 1500, gid: 1600 });
    const boxed = confineSpawn(['/bin/x'], { sandbox: true, runAs }, where, host);
    assert.equal(boxed.file, '/usr/bin/bwrap');
    assert.equal(boxed.uid, 1500);
    const missing = confineSpawn(['/bin/x'], { sandbox: true, runAs: null }, where, { ...host, bwrap: null });
    assert.equal(missing.file, 'bwrap', 'a missing bwrap fails the spawn, never runs bare');
    const capable = confineSpawn(['/bin/x'], { sandbox: true, runAs }, where, { ...host, dropCaps: '/usr/bin/setpriv' });
    assert.equal(capable.file, '/usr/bin/setpriv');
    assert.equal(capable.uid, undefined);
    assert.deepEqual(capable.args.slice(0, 8), ['--reuid', '1500', '--regid', '1600', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--']);
    assert.equal(capable.args[8], '/usr/bin/bwrap');
  });
});

describe('run_as', () => {
  it('resolves names and numbers, the group defaulting to the user\'s own', () => {
    assert.deepEqual(lookupUser(PASSWD, 'worker'), { uid: 1500, gid: 1600 });
    assert.equal(lookupGroup(GROUP, 'reviewers'), 1700);
    const files = { passwd: PASSWD, group: GROUP };
    assert.deepEqual(resolveRunAs('worker', files), { spec: 'worker', uid: 1500, gid: 1600 });
    assert.deepEqual(resolveRunAs('worker:reviewers', files), { spec: 'worker:reviewers', uid: 1500, gid: 1700 });
    assert.deepEqual(resolveRunAs('2000:2001', files), { spec: '2000:2001', uid: 2000, gid: 2001 });
    assert.match(resolveRunAs('ghost', files) as string, /^run_as "ghost": there is no user "ghost"/);
    assert.match(resolveRunAs('worker:ghosts', files) as string, /there is no group "ghosts"/);
    assert.match(resolveRunAs('root', files) as string, /refusing to run agents as root/);
  });

  it('reads CAP_SETUID and CAP_SETGID, and any capability at all, from /proc/self/status', () => {
    assert.equal(hasSetIdCaps('CapEff:\t00000000000000c0\n'), true);
    assert.equal(hasSetIdCaps('CapEff:\t0000000000000080\n'), false);
    assert.equal(holdsCapabilities('CapInh:\t0000000000000000\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n'), false);
    assert.equal(holdsCapabilities('CapEff:\t0000000000000000\nCapAmb:\t00000000000000c0\n'), true);
  });
});
