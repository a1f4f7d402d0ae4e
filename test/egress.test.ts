/**
 * The network under deploy/agentd-sandbox.conf (README "Security"): the daemon has
 * no network but its own loopback (PrivateNetwork=yes), the provider's host is
 * named 127.0.0.1 in the hosts file bound over /etc/hosts, and a socket on that
 * loopback, served by systemd-socket-proxyd (deploy/agentd-egress.*), is the
 * only way out. systemd is not PID 1 here, so the test builds that by hand, as
 * root: a network and mount namespace with only `lo`, the hosts file bound in,
 * and `systemd-socket-activate` listening inside it with socket-proxyd behind.
 * The proxy forwards to a Unix socket the test serves outside the namespace
 * (a path reaches across network namespaces; the real unit's proxy runs outside
 * and dials the provider's host instead), which hands the bytes to a fake
 * provider on the host's 127.0.0.1. An agent's model call goes through; the
 * same daemon cannot reach the fake provider's own port.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestHome, type DaemonProcess } from './helpers/home.js';
import { copyTracked } from './helpers/demo.js';
import { untilInFolder } from './helpers/support.js';
import { chatCompletion, startFakeProvider, type StandIn } from './helpers/provider.js';
import { findOnPath } from '../src/security/sandbox.js';

const PROXYD = ['/lib/systemd/systemd-socket-proxyd', '/usr/lib/systemd/systemd-socket-proxyd'].find((f) => fsSync.existsSync(f));
const needs = { unshare: findOnPath('unshare'), ip: findOnPath('ip') ?? findOnPath('ip', { PATH: '/usr/sbin:/sbin' }), activate: findOnPath('systemd-socket-activate') };
const skip = process.getuid?.() !== 0
  ? 'needs root for the network namespace (CI runs as root)'
  : !PROXYD || Object.values(needs).includes(null) ? 'needs unshare, ip (iproute2), systemd-socket-activate and systemd-socket-proxyd (Debian systemd)' : false;
const HOST = 'provider.agentd.test';

describe('no network but the egress socket (deploy/agentd-sandbox.conf)', { skip }, () => {
  let provider: StandIn;
  let bridge: net.Server;
  let dir: string;
  let home: TestHome;
  let daemon: DaemonProcess;
  let bridged = 0;

  before(async () => {
    provider = await startFakeProvider([{ body: chatCompletion({ content: 'hello through the proxy' }) }], { repeatLast: true });
    const port = new URL(provider.baseUrl).port;
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-egress-'));
    // Outside the namespace: what the real proxy's connection to the provider stands for.
    bridge = net.createServer((socket) => {
      bridged++;
      const upstream = net.connect(Number(port), '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    const unixPath = path.join(dir, 'provider.sock');
    await new Promise<void>((resolve) => bridge.listen(unixPath, resolve));
    await fs.writeFile(path.join(dir, 'hosts'), `127.0.0.1 localhost\n127.0.0.1 ${HOST}\n`);
    home = await TestHome.create(`lock_stale: 2s
providers:
  egress: { kind: openai, base_url: "http://${HOST}:8080/v1" }
  direct: { kind: openai, base_url: "http://127.0.0.1:${port}/v1" }
defaults:
  retry: { attempts: 1 }
`);
    await copyTracked(home.root, 'agents/hello');
    await fs.cp(home.path('agents', 'hello'), home.path('agents', 'direct'), { recursive: true });
    for (const [agent, model] of [['hello', 'egress/m1'], ['direct', 'direct/m1']]) {
      const file = home.path('agents', agent!, 'agent.yaml');
      await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace(/^model: .*$/m, `model: ${model}`));
      await fs.rm(home.path('agents', agent!, 'inbox'), { recursive: true, force: true });
    }
    const inside = [
      'mount --make-rprivate /',
      `mount --bind ${JSON.stringify(path.join(dir, 'hosts'))} /etc/hosts`,
      `${needs.ip} link set lo up`,
      `(${needs.activate} -l 127.0.0.1:8080 ${PROXYD} ${JSON.stringify(unixPath)} >/dev/null 2>&1 &)`,
      'exec "$@"',
    ].join(' && ');
    daemon = home.startDaemon({}, [], [needs.unshare!, '--net', '--mount', '--', 'sh', '-c', inside, 'sh']);
    await daemon.started();
  });

  after(async () => {
    await daemon?.stop();
    // The proxy was started beside the daemon in its namespace; it outlives it, so it is ended here.
    for (const entry of fsSync.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (fsSync.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(path.join(dir, 'provider.sock'))) process.kill(Number(entry), 'SIGKILL');
      } catch {
        // gone
      }
    }
    await home?.remove();
    await new Promise((resolve) => bridge?.close(resolve));
    await provider?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function runTask(agent: string): Promise<Record<string, unknown>> {
    await home.inbox(agent, 't1', { goal: 'say hello' });
    // done or failed, whichever comes first: a failure's record says why.
    const finished = ['done', 'failed'].map((kind) => home.path('state', agent, kind, 't1.json'));
    const folder = home.path('state', agent);
    return untilInFolder(folder, async () => {
      for (const file of finished) if (fsSync.existsSync(file)) return { kind: path.basename(path.dirname(file)), ...(JSON.parse(await fs.readFile(file, 'utf8')) as object) };
      return null;
    }, (r) => r !== null, `${agent}'s task to end`, 60_000) as Promise<Record<string, unknown>>;
  }

  it('a model call reaches the provider through the loopback socket and its proxy', async () => {
    const record = await runTask('hello');
    assert.equal(record.kind, 'done', JSON.stringify(record));
    assert.deepEqual(record.output, { answer: 'hello through the proxy' });
    assert.ok(bridged >= 1, 'the call went through the proxy');
    assert.equal(provider.requests[0]?.headers.host, `${HOST}:8080`, 'the daemon called the provider by its name');
  });

  it('the provider\'s own address is out of reach from the daemon', async () => {
    const before = provider.requests.length;
    await home.inbox('direct', 't1', { goal: 'say hello' });
    // An unreachable provider is an outage: the task waits for it, never done.
    await daemon.waitForLog((l) => l.msg === 'model unavailable; the task waits for it, no attempt counted' && l.agent === 'direct', 'the direct call to fail', 60_000);
    assert.equal(provider.requests.length, before, 'the provider saw a direct request');
    assert.equal(fsSync.existsSync(home.path('state', 'direct', 'done', 't1.json')), false);
  });
});
