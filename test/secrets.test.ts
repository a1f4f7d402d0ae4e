import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { resolveAgentDefinition } from '../src/config/agent-definition.js';
import { resolveDaemonConfig } from '../src/config/daemon-config.js';
import { ConfigError } from '../src/errors.js';
import { createLogger } from '../src/observe/logger.js';
import { scrubbedEnv } from '../src/run/agent-process.js';
import { SECRET_MASK, SecretCensor, secretCensor, secretNames } from '../src/security/secrets.js';
import { HomePaths } from '../src/store/paths.js';
import { completion, startStandIn, type StandIn } from './helpers/home.js';
import { allFiles, FAST_CONFIG, inHome } from './helpers/support.js';

/** Secrets (agentd.yaml `secrets` and providers' api_key_env) never reach a child, a log line or a file. */

const KEY = 'sk-test-4f9c2b7e1d8a6c3f5e0b9d2a';
const PASSWORD = 'hunter2-correct-horse-battery';

after(() => secretCensor.set([])); // the process-wide censor goes back to doing nothing

describe('secrets (pure)', () => {
  it('secrets are the listed variables plus every provider’s api_key_env', () => {
    const paths = new HomePaths('/home');
    const config = resolveDaemonConfig(paths, 'agentd.yaml', {
      secrets: ['DB_PASSWORD', 'DB_PASSWORD'],
      providers: { openai: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1', api_key_env: 'OPENAI_API_KEY' } },
    });
    assert.deepEqual(config.secrets, ['DB_PASSWORD']);
    assert.deepEqual(secretNames(config), ['DB_PASSWORD', 'OPENAI_API_KEY']);
  });

  it('the censor masks each value, also as it appears escaped inside JSON, and nothing shorter than 8 characters', () => {
    const censor = new SecretCensor();
    censor.set(['A', 'B', 'C', 'MISSING'], { A: PASSWORD, B: 'quote"and\\slash', C: 'short' });
    assert.equal(censor.mask(`pw=${PASSWORD}!`), `pw=${SECRET_MASK}!`);
    assert.equal(censor.mask(JSON.stringify({ v: 'x quote"and\\slash y' })), JSON.stringify({ v: `x ${SECRET_MASK} y` }));
    assert.equal(censor.mask('short'), 'short');
    assert.equal(censor.isSecret('C'), true, 'a short secret is still a secret: kept out of environments');
    const bytes = Buffer.from('no secret here');
    assert.equal(censor.maskData(bytes), bytes, 'a buffer without a secret is passed through untouched');
  });

  it('a secret name never enters a child’s environment, even when listed', () => {
    secretCensor.set(['DB_PASSWORD'], { DB_PASSWORD: PASSWORD });
    const env = scrubbedEnv(['LANG', 'DB_PASSWORD'], { AGENTD_AGENT: 'a' }, { LANG: 'C', DB_PASSWORD: PASSWORD });
    assert.deepEqual(env, { LANG: 'C', AGENTD_AGENT: 'a' });
    secretCensor.set([]);
  });

  it('an agent definition that lists a secret in env is refused, naming the field and where the secret is declared', async () => {
    const paths = new HomePaths('/home');
    const config = resolveDaemonConfig(paths, 'agentd.yaml', {
      secrets: ['DB_PASSWORD'],
      providers: { openai: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1', api_key_env: 'OPENAI_API_KEY' } },
    });
    const raw = { command: ['node', 'a.js'], env: ['LANG', 'DB_PASSWORD', 'OPENAI_API_KEY'] };
    await assert.rejects(resolveAgentDefinition(paths, config, 'greedy', 'agents/greedy/agent.yaml', raw, Buffer.from('')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        'env[1] "DB_PASSWORD" is a secret (agentd.yaml secrets): it is never passed to an agent; remove it from env',
        'env[2] "OPENAI_API_KEY" is a secret (agentd.yaml providers.openai.api_key_env): it is never passed to an agent; remove it from env',
      ]);
      return true;
    });
  });

  it('log lines mask secret values in every field, the message and an error’s stack', () => {
    let out = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    secretCensor.set(['DB_PASSWORD'], { DB_PASSWORD: PASSWORD });
    try {
      const log = createLogger({ destination, level: 'info' }).child({ run: `r-${PASSWORD}` });
      log.error({ err: new Error(`connect failed for ${PASSWORD}`), nested: { deep: [PASSWORD] } }, `message with ${PASSWORD}`);
    } finally {
      secretCensor.set([]);
    }
    assert.ok(!out.includes(PASSWORD), out);
    const line = JSON.parse(out) as { msg: string; err: { message: string; stack: string }; nested: { deep: string[] }; run: string };
    assert.equal(line.msg, `message with ${SECRET_MASK}`);
    assert.equal(line.err.message, `connect failed for ${SECRET_MASK}`);
    assert.ok(line.err.stack.includes(SECRET_MASK));
    assert.deepEqual(line.nested.deep, [SECRET_MASK]);
    assert.equal(line.run, `r-${SECRET_MASK}`);
  });
});

describe('secrets under the daemon', () => {
  let standIn: StandIn;
  after(() => standIn?.close());

  it('a model call, a tool, an escalation, a dead letter and a refused definition leave the key and the secret in no file and no log line', async () => {
    standIn = await startStandIn((body) => {
      const text = JSON.stringify(body.messages);
      // The provider echoes the key back in an error, as some proxies do.
      if (text.includes('crash')) return { status: 401, body: { error: { message: `invalid api key ${KEY}` } } };
      return { body: completion('hello from the model') };
    });
    const config = `${FAST_CONFIG}providers:\n  openai: { kind: openai, base_url: "${standIn.url}", api_key_env: OPENAI_API_KEY }\nsecrets: [DB_PASSWORD]\n`;
    await inHome(config, async (home) => {
      const model = 'openai/gpt-test';
      // A tool that tries to leak: it prints its whole environment as its result.
      const tools = { leaky: { command: ['node', '-e', 'process.stdout.write(JSON.stringify({ env: process.env }))'], effect: 'read' } };
      await home.scriptedAgent('worker', { model, tools, env: ['LANG'] });
      await home.inbox('worker', 'w1', {
        goal: 'work',
        input: {
          script: [
            { model: { messages: [{ role: 'user', content: 'hi' }] } },
            { tool: 'leaky' },
            { env_dump: 'env.json' },
            { uncertain: { reason: 'not sure', question: 'which one?', blockers: ['two vendors'] } },
          ],
        },
      });
      await home.scriptedAgent('crasher', { model, max_attempts: 1 });
      await home.inbox('crasher', 'c1', { goal: 'crash', input: { script: [{ model: { messages: [{ role: 'user', content: 'crash now' }] } }, { exit: 3 }] } });
      // A person pasted the password into a task: the daemon's own copies of it are masked.
      await home.scriptedAgent('paster');
      await home.inbox('paster', 'p1', { goal: 'file it', input: { note: `the db password is ${PASSWORD}`, script: [{ result: 'filed' }] } });
      await home.scriptedAgent('greedy', { env: ['DB_PASSWORD'] });

      const daemon = home.startDaemon({ OPENAI_API_KEY: KEY, DB_PASSWORD: PASSWORD, LANG: 'C.UTF-8' });
      let stdout = '';
      let stderr = '';
      daemon.child.stdout!.on('data', (c: string) => (stdout += c));
      daemon.child.stderr!.on('data', (c: string) => (stderr += c));
      try {
        await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'greedy', 'greedy refused');
        assert.equal((await daemon.runEnded('worker')).outcome, 'escalated');
        assert.equal((await daemon.runEnded('crasher')).outcome, 'failed');
        assert.equal((await daemon.runEnded('paster')).outcome, 'done');
      } finally {
        await daemon.stop();
      }

      assert.equal(standIn.requests[0]?.headers.authorization, `Bearer ${KEY}`, 'the daemon itself did use the key');
      assert.ok(await home.exists('state/dead-letter/crasher/c1.json'));
      const env = await home.readJson<Record<string, string>>('agents/worker/env.json');
      // Besides `env` and AGENTD_*: the run's endpoint (its token, never the key) and agentd's Python module.
      const ours = new Set(['OPENAI_BASE_URL', 'OPENAI_API_KEY', 'PYTHONPATH']);
      assert.deepEqual(Object.keys(env).filter((k) => !k.startsWith('AGENTD_') && !ours.has(k)), ['LANG']);
      assert.notEqual(env.OPENAI_API_KEY, KEY, 'OPENAI_API_KEY is the run token, not the provider key');
      const { items } = await home.readJson<{ items: { kind: string; reason: string }[] }>('outbox/greedy/outbox.json');
      assert.match(items[0]?.reason ?? '', /env\[0\] "DB_PASSWORD" is a secret/);

      const leaks: string[] = [];
      for (const file of await allFiles(home.root)) {
        const text = await fs.readFile(file, 'utf8');
        for (const secret of [KEY, PASSWORD]) if (text.includes(secret)) leaks.push(`${home.root === file ? file : file.slice(home.root.length + 1)} holds ${secret === KEY ? 'the key' : 'the password'}`);
      }
      for (const [name, text] of [['stdout', stdout], ['stderr', stderr]] as const) {
        for (const secret of [KEY, PASSWORD]) if (text.includes(secret)) leaks.push(`the daemon's ${name} holds ${secret === KEY ? 'the key' : 'the password'}`);
      }
      assert.deepEqual(leaks, []);
      assert.ok(stdout.length > 1000, 'the scan saw the log');
      const done = await home.readJson<{ task: { input: { note: string } } }>('state/paster/done/p1.json');
      assert.equal(done.task.input.note, `the db password is ${SECRET_MASK}`);
    });
  });
});
