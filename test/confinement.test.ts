/**
 * Keys from files and credentials, and the config errors of `sandbox` and
 * `run_as` (README "Security"): what the operator gets wrong is refused by
 * name, never run with less isolation than asked for.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, REPO_ROOT, TestHome, completion, startStandIn, type StandIn } from './helpers/home.js';
import { FAST_CONFIG, allFiles, inHome, untilInFolder } from './helpers/support.js';
import { PROVIDER_KEY, byoConfig, doneOutput, plainAgent, toolLoopProvider } from './helpers/byo.js';

const FILE_KEY = 'sk-from-a-file-0123456789';
const CRED_KEY = 'sk-from-a-credential-0123456789';
const PROBE = path.join(REPO_ROOT, 'test', 'fixtures', 'isolation-probe.mjs');
const isRoot = process.getuid?.() === 0;
const hasBwrap = fsSync.existsSync('/usr/bin/bwrap') || fsSync.existsSync('/bin/bwrap');

interface Item {
  kind: string;
  status: string;
  reason?: string;
  [key: string]: unknown;
}

async function keysDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-keys-'));
  await fs.writeFile(path.join(dir, 'openai.key'), FILE_KEY + '\n', { mode: 0o600 });
  await fs.mkdir(path.join(dir, 'creds'));
  await fs.writeFile(path.join(dir, 'creds', 'openai'), CRED_KEY, { mode: 0o400 });
  return dir;
}

/** The open config_error item of `agent`, once the daemon has written it. */
async function configError(home: TestHome, agent: string): Promise<Item> {
  const file = home.path('outbox', agent, 'outbox.json');
  const items = await untilInFolder(
    path.dirname(file),
    async () => (JSON.parse(await fs.readFile(file, 'utf8')) as { items: Item[] }).items,
    (list) => list.some((i) => i.kind === 'config_error' && i.status === 'open'),
    `a config_error item for ${agent}`,
    20_000,
  );
  return items.find((i) => i.kind === 'config_error')!;
}

describe('provider keys from files and systemd credentials', () => {
  let standIn: StandIn | null = null;
  after(() => standIn?.close());

  it('the key comes from api_key_file and from $CREDENTIALS_DIRECTORY, and neither lands in a file or a log line', async () => {
    standIn = await startStandIn(() => ({ body: completion('ok') }));
    const dir = await keysDir();
    const config = `${FAST_CONFIG}providers:
  filekey: { kind: openai, base_url: "${standIn.url}", api_key_file: ${JSON.stringify(path.join(dir, 'openai.key'))} }
  credkey: { kind: openai, base_url: "${standIn.url}", api_key_credential: openai }
`;
    try {
      await inHome(config, async (home) => {
        const script = { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: 'done' }] };
        await home.scriptedAgent('byfile', { model: 'filekey/m' });
        await home.scriptedAgent('bycred', { model: 'credkey/m' });
        await home.inbox('byfile', 'f1', { goal: 'call', input: script });
        await home.inbox('bycred', 'c1', { goal: 'call', input: script });
        const daemon = home.startDaemon({ CREDENTIALS_DIRECTORY: path.join(dir, 'creds') });
        let output = '';
        daemon.child.stdout!.on('data', (c: string) => (output += c));
        daemon.child.stderr!.on('data', (c: string) => (output += c));
        try {
          assert.equal((await daemon.runEnded('byfile')).outcome, 'done');
          assert.equal((await daemon.runEnded('bycred')).outcome, 'done');
        } finally {
          await daemon.stop();
        }
        const auth = standIn!.requests.map((r) => r.headers.authorization).sort();
        assert.deepEqual(auth, [`Bearer ${CRED_KEY}`, `Bearer ${FILE_KEY}`]);
        for (const file of await allFiles(home.root)) {
          const text = await fs.readFile(file, 'utf8');
          assert.ok(!text.includes(FILE_KEY) && !text.includes(CRED_KEY), `a key is in ${file}`);
        }
        assert.ok(!output.includes(FILE_KEY) && !output.includes(CRED_KEY), 'a key is in the daemon output');
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a key file others can read stops the daemon with an error naming the file and the field', async () => {
    const dir = await keysDir();
    const file = path.join(dir, 'openai.key');
    await fs.chmod(file, 0o644);
    try {
      await inHome(`providers:\n  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_file: ${JSON.stringify(file)} }\n`, async (home) => {
        const daemon = home.startDaemon();
        let stderr = '';
        daemon.child.stderr!.on('data', (c: string) => (stderr += c));
        const exit = await daemon.exited;
        assert.notEqual(exit.code, 0);
        assert.match(stderr, new RegExp(`agentd.yaml: providers.openai.api_key_file: ${file.replace(/[.]/g, '\\.')} is mode 0644`));
        assert.match(stderr, /chmod 600/);
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a credential without $CREDENTIALS_DIRECTORY, a missing key file, and two key sources at once are refused by name', async () => {
    await inHome(`providers:\n  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_credential: openai }\n`, async (home) => {
      const daemon = home.startDaemon({ CREDENTIALS_DIRECTORY: '' });
      let stderr = '';
      daemon.child.stderr!.on('data', (c: string) => (stderr += c));
      assert.notEqual((await daemon.exited).code, 0);
      assert.match(stderr, /providers\.openai\.api_key_credential "openai": \$CREDENTIALS_DIRECTORY is not set \(add LoadCredential=openai:<file>/);
    });
    await inHome(`providers:\n  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_file: /nonexistent/openai.key }\n`, async (home) => {
      const daemon = home.startDaemon();
      let stderr = '';
      daemon.child.stderr!.on('data', (c: string) => (stderr += c));
      assert.notEqual((await daemon.exited).code, 0);
      assert.match(stderr, /providers\.openai\.api_key_file: cannot read \/nonexistent\/openai\.key \(ENOENT\)/);
    });
    await inHome(`providers:\n  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: K, api_key_file: /k }\n`, async (home) => {
      const result = await home.cli(['validate']);
      assert.notEqual(result.code, 0);
      assert.match(result.stdout + result.stderr, /providers\.openai: api_key_env and api_key_file are set; a key comes from one place, keep one/);
    });
  });
});

describe('sandbox and run_as are never weakened silently', () => {
  it('sandbox on a machine without bwrap is a config_error for the agent, and its task does not run', async () => {
    await inHome(`${FAST_CONFIG}`, async (home) => {
      await home.scriptedAgent('boxed', { sandbox: true });
      await home.inbox('boxed', 'b1', { goal: 'run', input: { script: [{ result: 'ran' }] } });
      const daemon = home.startDaemon({ AGENTD_BWRAP: '/nonexistent/bwrap' });
      try {
        const item = await configError(home, 'boxed');
        assert.match(String(item.reason), /sandbox is on but bubblewrap is not installed \(AGENTD_BWRAP=\/nonexistent\/bwrap is not an executable\)/);
        assert.ok(!daemon.logs.some((l) => l.msg === 'run started'), 'no run started');
      } finally {
        await daemon.stop();
      }
      assert.ok(await home.exists('agents/boxed/inbox/b1.json'), 'the task waits in the inbox');
    });
  });

  it('defaults.sandbox without bwrap names agentd.yaml defaults in the error', async () => {
    await inHome(`lock_stale: 2s\ndefaults:\n  sandbox: true\n`, async (home) => {
      await home.scriptedAgent('boxed');
      const daemon = home.startDaemon({ AGENTD_BWRAP: '/nonexistent/bwrap' });
      try {
        const item = await configError(home, 'boxed');
        assert.match(String(item.reason), /sandbox \(agentd.yaml defaults.sandbox\) is on but bubblewrap is not installed/);
      } finally {
        await daemon.stop();
      }
    });
  });

  it('run_as an account that does not exist is a config_error naming the field', async () => {
    await inHome(`${FAST_CONFIG}`, async (home) => {
      await home.scriptedAgent('someone', { run_as: 'no-such-user-agentd' });
      await home.scriptedAgent('somegroup', { run_as: 'nobody:no-such-group-agentd' });
      const daemon = home.startDaemon();
      try {
        assert.match(String((await configError(home, 'someone')).reason), /run_as "no-such-user-agentd": there is no user "no-such-user-agentd" on this machine/);
        assert.match(String((await configError(home, 'somegroup')).reason), /run_as "nobody:no-such-group-agentd": there is no group "no-such-group-agentd"/);
      } finally {
        await daemon.stop();
      }
    });
  });
});

describe('run_as runs agents and tools under another account', { skip: isRoot ? false : 'switching users needs root (or CAP_SETUID and CAP_SETGID); run as root to test it' }, () => {
  const user = `agentd-t${process.pid}`;
  let uid = -1;
  after(() => {
    if (uid >= 0) execFileSync('userdel', [user]);
  });

  it('a daemon that is not root but holds CAP_SETUID and CAP_SETGID (the unit\'s AmbientCapabilities) switches accounts, and no child keeps a capability', async () => {
    if (uid < 0) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
      uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    }
    const daemonUser = `agentd-d${process.pid}`;
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', daemonUser]);
    try {
      await inHome(`${FAST_CONFIG}`, async (home) => {
        const agents = [
          { name: 'switched', run_as: user, sandbox: false },
          { name: 'boxed', run_as: user, sandbox: hasBwrap },
          { name: 'plain', sandbox: false },
        ];
        for (const agent of agents) {
          const dir = home.path('agents', agent.name);
          await fs.mkdir(path.join(dir, 'inbox'), { recursive: true });
          await fs.copyFile(PROBE, path.join(dir, 'probe.mjs'));
          const { name, ...rest } = agent;
          await home.write(`agents/${name}/agent.json`, { version: '1', command: ['node', 'probe.mjs', 'agent'], ...rest });
          // Made now so that the chown below covers it (waiting on it would otherwise create it as root).
          await fs.mkdir(home.path('state', name, 'done'), { recursive: true });
          await home.inbox(name, 'caps', { goal: 'caps', input: { probe: { probe: 'caps' } } });
          await home.inbox(name, 'write', { goal: 'write', input: { probe: { probe: 'write_file', file: 'written' } } });
        }
        execFileSync('chown', ['-R', `${daemonUser}:`, home.root]);
        // The layout the README gives: the daemon owns the agent folder (it claims tasks there),
        // the account's group may write it.
        for (const agent of ['switched', 'boxed']) {
          execFileSync('chgrp', [user, home.path('agents', agent)]);
          await fs.chmod(home.path('agents', agent), 0o2770);
        }
        await fs.chmod(home.root, 0o711);
        await fs.chmod(home.path('agents'), 0o711);
        const caps = ['--inh-caps=+setuid,+setgid', '--ambient-caps=+setuid,+setgid'];
        const daemon = spawn('setpriv', ['--reuid', daemonUser, '--regid', daemonUser, '--init-groups', ...caps, '--', process.execPath, CLI, 'start', '--home', home.root], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        daemon.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        daemon.stdout.setEncoding('utf8').on('data', (c: string) => {
          for (const line of c.split('\n')) if (/"level":[45]0/.test(line)) stderr += line + '\n';
        });
        try {
          for (const agent of agents) {
            const done = (id: string) => home.path('state', agent.name, 'done', `${id}.json`);
            const read = (id: string) => async () => (JSON.parse(await fs.readFile(done(id), 'utf8')) as { output: { ran: boolean; escaped: boolean; detail: string } }).output;
            const capsReport = await untilInFolder(path.dirname(done('caps')), read('caps'), () => true, `${agent.name} caps (daemon stderr: ${stderr})`, 30_000);
            assert.equal(capsReport.ran, true);
            assert.equal(capsReport.escaped, false, `${agent.name} kept a capability: ${capsReport.detail}`);
            await untilInFolder(path.dirname(done('write')), read('write'), () => true, `${agent.name} write`, 30_000);
            const owner = (await fs.stat(home.path('agents', agent.name, 'written'))).uid;
            const daemonUid = Number(execFileSync('id', ['-u', daemonUser], { encoding: 'utf8' }).trim());
            assert.equal(owner, agent.run_as ? uid : daemonUid, `${agent.name} ran as the wrong account`);
          }
        } finally {
          daemon.kill('SIGTERM');
          await new Promise((resolve) => daemon.once('close', resolve));
        }
      });
    } finally {
      execFileSync('userdel', [daemonUser]);
    }
  });

  for (const sandbox of [false, true]) {
    it(`agent and tool files are written as the account${sandbox ? ', inside the sandbox' : ''}`, { skip: sandbox && !hasBwrap ? 'bubblewrap is not installed' : false }, async () => {
      if (uid < 0) {
        execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
        uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      }
      await inHome(`${FAST_CONFIG}`, async (home) => {
        const dir = home.path('agents', 'worker');
        await fs.mkdir(dir, { recursive: true });
        // The account reads the probe from its own folder and may pass through the home, nothing more.
        await fs.copyFile(PROBE, path.join(dir, 'probe.mjs'));
        const tools = { probe: { command: ['node', 'probe.mjs', 'tool'], effect: 'read' } };
        await home.write('agents/worker/agent.json', { version: '1', command: ['node', 'probe.mjs', 'agent'], tools, run_as: user, sandbox });
        await fs.chmod(home.root, 0o711);
        await fs.chmod(home.path('agents'), 0o711);
        await fs.mkdir(path.join(dir, 'inbox'), { recursive: true });
        execFileSync('chown', ['-R', `${user}:`, dir]);
        await home.inbox('worker', 'w1', { goal: 'write', input: { probe: { probe: 'write_file', file: 'by-agent' } } });
        await home.inbox('worker', 'w2', { goal: 'write', input: { via_tool: true, probe: { probe: 'write_file', file: 'by-tool' } } });
        const daemon = home.startDaemon();
        try {
          assert.equal((await daemon.runEnded('worker', 1)).outcome, 'done');
          assert.equal((await daemon.runEnded('worker', 2)).outcome, 'done');
        } finally {
          await daemon.stop();
        }
        assert.equal((await fs.stat(path.join(dir, 'by-agent'))).uid, uid, 'the agent ran as the account');
        assert.equal((await fs.stat(path.join(dir, 'by-tool'))).uid, uid, 'the tool ran as the account');
      });
    });
  }
});

describe('a sandboxed agent still reaches the run\'s endpoint on 127.0.0.1', { skip: hasBwrap ? false : 'bubblewrap is not installed' }, () => {
  it('the built-in model agent, sandboxed, resolves its definition against agentd.yaml and runs to done', async () => {
    const standIn = await startStandIn(() => ({ body: completion('the answer is 42') }));
    try {
      await inHome(byoConfig(standIn), async (home) => {
        await home.write('agents/builtin/agent.yaml', 'version: "1"\nmodel: standin/gpt-test\nsystem_prompt: Answer briefly.\nsandbox: true\n');
        await home.inbox('builtin', 'b1', { goal: 'what is it?' });
        const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
        try {
          const ended = await daemon.runEnded('builtin', 1, 30_000);
          assert.equal(ended.outcome, 'done', JSON.stringify(daemon.logs.filter((l) => l.stream === 'stderr').map((l) => l.line)));
        } finally {
          await daemon.stop();
        }
        assert.equal(standIn.requests.length, 1);
      });
    } finally {
      await standIn.close();
    }
  });

  it('a plain agent on the official openai client, sandboxed, runs a tool loop through the run\'s endpoint to done', async () => {
    const standIn = await startStandIn(toolLoopProvider());
    try {
      await inHome(byoConfig(standIn), async (home) => {
        await plainAgent(home, 'boxed', 'openai-agent.mjs', { sandbox: true });
        await home.inbox('boxed', 't1', { goal: 'rounds:2 what is it?' });
        const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
        try {
          const output = await doneOutput(home, 'boxed', 't1').catch((err: Error) => {
            throw new Error(`${err.message}\n${daemon.logs.filter((l) => l.level >= 40 || l.stream === 'stderr').map((l) => JSON.stringify(l)).join('\n')}`);
          });
          assert.deepEqual({ answer: output.answer, rounds: output.rounds, keyless: output.keyless }, { answer: '42', rounds: 2, keyless: true });
        } finally {
          await daemon.stop();
        }
      });
    } finally {
      await standIn.close();
    }
  });
});
