/**
 * The isolation suite (README "Security"): from inside an agent and inside a
 * tool, through the real daemon, try each way out — read a key (environment,
 * /proc, the home's state, the key file, the credential), write outside the
 * agent's folder, signal the daemon or another agent, leave a setsid
 * grandchild behind, read another agent's journal. With `sandbox: true` every
 * attempt fails; without it the same suite records what still holds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, TestHome, type DaemonProcess } from './helpers/home.js';
import { pidsWith } from './helpers/process.js';
import { untilInFolder } from './helpers/support.js';

const PROBE = path.join(REPO_ROOT, 'test', 'fixtures', 'isolation-probe.mjs');
const PROBE_NAME = path.basename(PROBE);
const ENV_KEY = 'sk-env-key-0123456789abcdef';
const FILE_KEY = 'sk-file-key-0123456789abcdef';
const CRED_KEY = 'sk-cred-key-0123456789abcdef';
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const hasBwrap = fsSync.existsSync('/usr/bin/bwrap') || fsSync.existsSync('/bin/bwrap');

interface Report {
  ran: boolean;
  escaped: boolean;
  detail: string;
}

/** The host pid of the node process running in `dir` (the victim agent), not the bwrap around it. */
function agentPid(dir: string): number | null {
  for (const pid of pidsWith(PROBE_NAME)) {
    try {
      const argv0 = fsSync.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!;
      if (!argv0.endsWith('bwrap') && fsSync.readlinkSync(`/proc/${pid}/cwd`) === dir) return pid;
    } catch {
      // gone
    }
  }
  return null;
}

/** A home with an attacker (`probe`), a victim (`victim`) and keys in the environment, a file and a credential. */
class Setup {
  home!: TestHome;
  daemon!: DaemonProcess;
  keysDir!: string;
  outside!: string;
  private n = 0;

  constructor(readonly sandbox: boolean) {}

  async start(): Promise<void> {
    // Keys outside /tmp (a sandbox gets a fresh /tmp anyway): only the explicit hiding can keep them out.
    this.keysDir = await fs.mkdtemp(path.join(os.homedir(), '.agentd-test-keys-'));
    this.outside = await fs.mkdtemp(path.join(os.homedir(), '.agentd-test-outside-'));
    await fs.mkdir(path.join(this.keysDir, 'creds'));
    await fs.writeFile(path.join(this.keysDir, 'file.key'), FILE_KEY + '\n', { mode: 0o600 });
    await fs.writeFile(path.join(this.keysDir, 'creds', 'openai'), CRED_KEY, { mode: 0o400 });
    this.home = await TestHome.create(`lock_stale: 2s
providers:
  envkey: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: PROBE_ENV_KEY }
  filekey: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_file: ${JSON.stringify(path.join(this.keysDir, 'file.key'))} }
  credkey: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_credential: openai }
defaults:
  retry: { attempts: 2, base_delay: 10ms, max_delay: 50ms }
  stop_grace: 1s
  sandbox: ${this.sandbox}
`);
    // The probe is copied into each agent's folder: a sandboxed process sees nothing of /tmp, where a clone may live.
    const tool = { probe: { command: ['node', PROBE_NAME, 'tool'], effect: 'read', timeout: '30s' } };
    for (const name of ['probe', 'victim']) {
      await this.home.write(`agents/${name}/agent.json`, { version: '1', command: ['node', PROBE_NAME, 'agent'], tools: tool });
      await fs.copyFile(PROBE, this.home.path(`agents/${name}/${PROBE_NAME}`));
    }
    this.daemon = this.home.startDaemon({ PROBE_ENV_KEY: ENV_KEY, CREDENTIALS_DIRECTORY: path.join(this.keysDir, 'creds') });
    await this.daemon.started();
    // The victim's journal, for the attacker to try to read.
    await this.task('victim', { via_tool: true, probe: { probe: 'list_dir', dir: '.' } }, 'journaled');
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    await this.home?.remove();
    await fs.rm(this.keysDir, { recursive: true, force: true });
    await fs.rm(this.outside, { recursive: true, force: true });
  }

  /** Run one task on `agent` and return its output. */
  async task(agent: string, input: Record<string, unknown>, id = `t${++this.n}`): Promise<Report> {
    await this.home.inbox(agent, id, { goal: 'probe', input });
    const done = this.home.path('state', agent, 'done', `${id}.json`);
    const record = await untilInFolder(path.dirname(done), () => fs.readFile(done, 'utf8').then((t) => JSON.parse(t) as { output: Report }), () => true, `task ${id} of ${agent} done`, 60_000);
    return record.output;
  }

  /** Run `probe` in the attacker, as an agent or through its tool. */
  async attempt(via: 'agent' | 'tool', probe: Record<string, unknown>): Promise<Report> {
    const report = await this.task('probe', via === 'tool' ? { via_tool: true, probe } : { probe });
    assert.equal(report.ran, true, `the probe did not run: ${report.detail}`);
    return report;
  }
}

for (const sandbox of [true, false]) {
  describe(`isolation ${sandbox ? 'with' : 'without'} the sandbox`, { skip: sandbox && !hasBwrap ? 'bubblewrap is not installed (apt-get install bubblewrap)' : false }, () => {
    const setup = new Setup(sandbox);
    before(() => setup.start());
    after(() => setup.stop());

    for (const via of ['agent', 'tool'] as const) {
      it(`${via}: the key in the daemon's environment is not in its own environment`, async () => {
        const report = await setup.attempt(via, { probe: 'env', key_sha: sha(ENV_KEY) });
        assert.equal(report.escaped, false, report.detail);
      });

      it(`${via}: /proc/<daemon>/environ ${sandbox ? 'cannot be read' : 'gives away a key kept in the environment, not one kept in a file'}`, async () => {
        const pid = setup.daemon.child.pid!;
        const envKey = await setup.attempt(via, { probe: 'proc_environ', pid, key_sha: sha(ENV_KEY) });
        const fileKey = await setup.attempt(via, { probe: 'proc_environ', pid, key_sha: sha(FILE_KEY) });
        const anyProcess = await setup.attempt(via, { probe: 'any_environ', key_sha: sha(ENV_KEY) });
        assert.equal(envKey.escaped, !sandbox, envKey.detail);
        assert.equal(anyProcess.escaped, !sandbox, anyProcess.detail);
        assert.equal(fileKey.escaped, false, 'api_key_file keeps the key out of every environment');
      });

      it(`${via}: the key file and the credential ${sandbox ? 'cannot be read' : 'are readable by the same user'}`, async () => {
        const file = await setup.attempt(via, { probe: 'read_file', file: path.join(setup.keysDir, 'file.key'), key_sha: sha(FILE_KEY) });
        const cred = await setup.attempt(via, { probe: 'read_file', file: path.join(setup.keysDir, 'creds', 'openai'), key_sha: sha(CRED_KEY) });
        assert.equal(file.escaped, !sandbox, file.detail);
        assert.equal(cred.escaped, !sandbox, cred.detail);
      });

      it(`${via}: the home's state/ and outbox/ ${sandbox ? 'are not there' : 'can be read'}`, async () => {
        const state = await setup.attempt(via, { probe: 'list_dir', dir: setup.home.path('state') });
        const config = await setup.attempt(via, { probe: 'read_file', file: setup.home.path('agentd.yaml') });
        assert.equal(state.escaped, !sandbox, state.detail);
        assert.equal(config.escaped, !sandbox, config.detail);
      });

      it(`${via}: another agent's journal ${sandbox ? 'cannot be read' : 'can be read'}`, async () => {
        const journal = setup.home.path('state', 'victim', 'journal', 'journaled.jsonl');
        assert.ok(fsSync.existsSync(journal), 'the victim has a journal');
        const report = await setup.attempt(via, { probe: 'read_file', file: journal });
        assert.equal(report.escaped, !sandbox, report.detail);
      });

      it(`${via}: writing outside its folder ${sandbox ? 'reaches nothing' : 'works'}`, async () => {
        const tag = `${via}-${Date.now()}`;
        const targets = [setup.home.path('state', `pwned-${tag}`), setup.home.path('agents', 'victim', `pwned-${tag}`), path.join(setup.outside, `pwned-${tag}`)];
        for (const file of targets) await setup.attempt(via, { probe: 'write_file', file });
        for (const file of targets) assert.equal(fsSync.existsSync(file), !sandbox, file);
        // Its own folder stays writable either way.
        const own = setup.home.path('agents', 'probe', `own-${tag}`);
        await setup.attempt(via, { probe: 'write_file', file: own });
        assert.ok(fsSync.existsSync(own), 'its own folder is writable');
      });

      it(`${via}: signalling the daemon ${sandbox ? 'fails' : 'works'}`, async () => {
        const report = await setup.attempt(via, { probe: 'signal', pid: setup.daemon.child.pid! });
        assert.equal(report.escaped, !sandbox, report.detail);
      });

      it(`${via}: signalling another agent ${sandbox ? 'fails' : 'works'}`, async () => {
        const tag = `${via}-${Date.now()}`;
        const victimDir = setup.home.path('agents', 'victim');
        const waiting = setup.task('victim', { probe: { probe: 'wait', ready: `ready-${tag}`, release: `release-${tag}` } });
        await untilInFolder(victimDir, async () => fsSync.existsSync(path.join(victimDir, `ready-${tag}`)), (up) => up, 'the victim to wait');
        const pid = agentPid(victimDir);
        assert.ok(pid, 'the victim process is found on the host');
        try {
          const report = await setup.attempt(via, { probe: 'signal', pid });
          assert.equal(report.escaped, !sandbox, report.detail);
        } finally {
          await fs.writeFile(path.join(victimDir, `release-${tag}`), '');
          await waiting;
        }
      });

      it(`${via}: a setsid grandchild ${sandbox ? 'dies with the run' : 'dies with the run where the daemon has a cgroup, else survives it'}`, async () => {
        // Unsandboxed, a run gets a cgroup of its own where the daemon can make one (security/run-cgroup.ts):
        // the daemon's start line says which, and test/run-cgroup.test.ts covers both cases.
        const cgroups = setup.daemon.logs.some((l) => l.msg === 'unsandboxed agents and tools each run in a cgroup of their own, killed whole when they end');
        const marker = `agentd-isolation-survivor-${via}-${process.pid}-${Date.now()}`;
        await setup.attempt(via, { probe: 'setsid', ready: `up-${marker}`, marker });
        assert.ok(fsSync.existsSync(setup.home.path('agents', 'probe', `up-${marker}`)), 'the grandchild started');
        const survivors = pidsWith(marker);
        for (const pid of survivors) process.kill(pid, 'SIGKILL');
        // The run is over (its done record is written after the process exited).
        assert.equal(survivors.length > 0, !sandbox && !cgroups, `survivors: ${survivors.join(',')}`);
      });
    }
  });
}
