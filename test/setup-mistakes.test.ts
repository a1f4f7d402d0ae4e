import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DaemonStatusFile } from '../src/store/daemon-status.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { runCli } from './helpers/home.js';
import { FAST_CONFIG, inHome, readJsonOrNull, untilInFolder, withDaemon } from './helpers/support.js';

/** Quiet setup mistakes are refused or warned about, each with the next command to type. */

const KEYED_CONFIG = `${FAST_CONFIG}
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: AGENTD_TEST_MISSING_KEY }
`;

describe('setup mistakes', () => {
  it('start --home on a folder that does not exist refuses, creates nothing, and names agentd init', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-missing-'));
    try {
      const dir = path.join(parent, 'no such home');
      const started = await runCli(['start', '--home', dir]);
      assert.equal(started.code, 1, started.stdout + started.stderr);
      assert.equal(started.stderr, `agentd: ${dir} does not exist, so there is no home to run. To make one there: agentd init '${dir}'\n`);
      assert.deepEqual(await fs.readdir(parent), [], 'nothing was created');
    } finally {
      await fs.rm(parent, { recursive: true, force: true });
    }
  });

  it('validate on a folder that is not a home says so and exits 1; on a home it checks as before', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-nothome-'));
    try {
      await fs.writeFile(path.join(dir, 'notes.txt'), 'not a home');
      const checked = await runCli(['validate', '--home', dir]);
      assert.equal(checked.code, 1);
      assert.equal(checked.stdout, `${dir} is not an agentd home (it has no agentd.yaml and no agents/ folder). To make a home there: agentd init ${dir}\n`);
      const json = await runCli(['validate', '--json', '--home', dir]);
      assert.equal(json.code, 1);
      assert.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, false);
      await fs.mkdir(path.join(dir, 'agents'));
      const home = await runCli(['validate', '--home', dir]);
      assert.equal(home.code, 0, home.stdout);
      assert.equal(home.stdout, 'ok: 0 agents, 0 tasks\n');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a second daemon on the same home warns, naming the first one and how to stop it', () =>
    inHome(FAST_CONFIG, async (home) => {
      await withDaemon(home, async (first) => {
        await first.started();
        await untilInFolder(home.path('state'), () => readJsonOrNull<DaemonStatusFile>(home.path('state', 'daemon.json')), (s) => s?.pid === first.child.pid && s?.state === 'running', "the first daemon's status");
        await withDaemon(home, async (second) => {
          await second.started();
          const warning = await second.waitForLog((l) => l.level === 40 && /^another daemon already runs on this home/.test(l.msg), 'the warning');
          assert.equal(warning.other_pid, first.child.pid);
          assert.equal(warning.next, `kill -TERM ${first.child.pid}`);
        });
        assert.ok(!first.logs.some((l) => /^another daemon/.test(l.msg)), 'the first daemon started alone and said nothing');
      });
    }));

  it('a missing API key is a config_error with category auth: at validate, at daemon start-up (no run starts), and at agentd run', () =>
    inHome(KEYED_CONFIG, async (home) => {
      await home.scriptedAgent('caller', { model: 'openai/gpt-test' });
      await home.inbox('caller', 'c1', { goal: 'call the model', input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: '$last' }] } });
      const env = { AGENTD_TEST_MISSING_KEY: '' };

      const validated = await home.cli(['validate', '--json'], env);
      assert.equal(validated.code, 1);
      const report = JSON.parse(validated.stdout) as { problems: { file: string; problem: string; category?: string }[] };
      assert.deepEqual(report.problems.map((p) => [p.file, p.category]), [['agents/caller/agent.json', 'auth']]);
      assert.match(report.problems[0]!.problem, /^config_error: model openai\/gpt-test: the environment variable AGENTD_TEST_MISSING_KEY \(providers\.openai\.api_key_env\) is not set/);

      await withDaemon(
        home,
        async (daemon) => {
          const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'caller', 'the rejection');
          assert.equal(rejected.category, 'auth');
          const outbox = await untilInFolder(home.path('outbox', 'caller'), () => readJsonOrNull<OutboxFile>(home.path('outbox', 'caller', 'outbox.json')), (o) => (o?.items.length ?? 0) > 0, 'the config_error item');
          const [item] = outbox!.items;
          assert.equal(item?.kind, 'config_error');
          assert.deepEqual(item?.details, { category: 'auth' });
          assert.match(item?.reason ?? '', /AGENTD_TEST_MISSING_KEY/);
          assert.ok(!daemon.logs.some((l) => l.msg === 'run started'), 'no run started');
          assert.deepEqual(await home.list('agents/caller/inbox'), ['c1.json'], 'the task waits in the inbox');
        },
        env,
      );

      const ran = await home.cli(['run', 'caller'], env);
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, /^agentd: agents\/caller\/agent\.json: model openai\/gpt-test: the environment variable AGENTD_TEST_MISSING_KEY .*\(category auth\)/m);
      assert.deepEqual(await home.list('agents/caller/inbox'), ['c1.json']);
    }));
});
