import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import { allFiles, FAST_CONFIG, inHome, isAlive, withDaemon } from './helpers/support.js';
import { completion, REPO_ROOT, startStandIn, type LogLine } from './helpers/home.js';

/** The protocol as the daemon speaks it to a real agent process (DESIGN.md section 5). */

interface Received {
  type: string;
  id?: string;
  code?: string;
  message?: string;
  reason?: string;
}

interface DoneFile<T = unknown> {
  status: string;
  output: T;
}

const runFields = (l: LogLine, agent: string, taskId: string) => l.agent === agent && l.task_id === taskId && typeof l.run_id === 'string' && l.run_id.length > 0;

describe('the agent protocol', () => {
  it('a non-protocol stdout line is logged and ignored, stderr is logged with the run, and an invalid message gets bad_message', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('talker');
      await home.inbox('talker', 'p1', {
        goal: 'talk',
        input: {
          trace_file: 'trace.jsonl',
          script: [
            { print: 'hello, I am not a message' },
            { stderr: 'a warning on stderr' },
            { raw: { type: 'model', id: 'bad-1', request: {} } },
            { raw: { type: 'teleport', id: 'bad-2' } },
            { result: 'still fine' },
          ],
        },
      });
      await withDaemon(home, async (daemon) => {
        const ended = await daemon.runEnded('talker');
        assert.equal(ended.outcome, 'done', 'noise and bad messages do not end the run');
        assert.equal((await home.readJson<DoneFile>('state/talker/done/p1.json')).output, 'still fine');

        const noise = daemon.logs.find((l) => l.msg === 'agent printed a non-protocol line');
        assert.equal(noise?.line, 'hello, I am not a message');
        assert.ok(noise && runFields(noise, 'talker', 'p1'), JSON.stringify(noise));
        const stderr = daemon.logs.find((l) => l.msg === 'agent stderr');
        assert.equal(stderr?.line, 'a warning on stderr');
        assert.ok(stderr && runFields(stderr, 'talker', 'p1'), `stderr lines carry agent, task_id and run_id: ${JSON.stringify(stderr)}`);
        assert.equal(stderr?.run_id, ended.run_id);

        const received = await home.readLines<Received>('agents/talker/trace.jsonl');
        const errors = received.filter((m) => m.type === 'error');
        assert.deepEqual(
          errors.map((e) => [e.id, e.code]),
          [
            ['bad-1', 'bad_message'],
            ['bad-2', 'bad_message'],
          ],
        );
        assert.match(errors[0]?.message ?? '', /request\.messages is required/);
        assert.match(errors[1]?.message ?? '', /unknown message type "teleport"/);
        assert.equal(daemon.logs.filter((l) => l.msg === 'agent sent an invalid message').length, 2);
        const history = await home.readLines<HistoryLine>('state/talker/history.jsonl');
        assert.equal(history[0]?.steps, 0, 'an invalid model message is not a step');
      });
    }));

  it("the agent's environment holds only the variables its definition lists, plus AGENTD_*", () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('envy', { env: ['LANG', 'NOT_SET_ANYWHERE'] });
      await home.inbox('envy', 'e1', { goal: 'show env', input: { script: [{ env_dump: 'env.json' }, { result: 'ok' }] } });
      await withDaemon(
        home,
        async (daemon) => {
          const ended = await daemon.runEnded('envy');
          const env = await home.readJson<Record<string, string>>('agents/envy/env.json');
          assert.equal(env.SECRET_KEY, undefined, 'a variable the definition does not list never reaches the agent');
          assert.equal(env.PATH, undefined);
          assert.equal(env.LANG, 'C.UTF-8', 'a listed variable passes');
          assert.ok(!('NOT_SET_ANYWHERE' in env), 'a listed variable the daemon lacks is simply absent');
          assert.equal(env.AGENTD_AGENT, 'envy');
          assert.equal(env.AGENTD_TASK_ID, 'e1');
          assert.equal(env.AGENTD_RUN_ID, ended.run_id);
          assert.equal(env.AGENTD_HOME, home.root);
          // Besides: `import agentd` on PYTHONPATH (only agentd's own module, README "Install"), and the run's endpoint (README "Bring your own agent").
          assert.equal(env.PYTHONPATH, path.join(REPO_ROOT, 'python'));
          const run = ['PYTHONPATH', 'OPENAI_BASE_URL', 'OPENAI_API_KEY'];
          const extra = Object.keys(env).filter((k) => k !== 'LANG' && !k.startsWith('AGENTD_') && !run.includes(k));
          assert.deepEqual(extra, [], `only LANG, AGENTD_* and the run's variables expected, got also ${extra.join(', ')}`);
          assert.match(env.OPENAI_API_KEY ?? '', /^agentd-run-/, 'the key an agent sees is its run token');
        },
        { SECRET_KEY: 'sk-very-secret', LANG: 'C.UTF-8' },
      );
    }));

  it('a tool not in the agent tools is refused with not_allowed', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('tidy');
      await home.inbox('tidy', 't1', { goal: 'tidy up', input: { script: [{ tool: 'delete_everything', args: { path: '/' } }, { result: '$last' }] } });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('tidy')).outcome, 'done');
        const { output } = await home.readJson<DoneFile<Received>>('state/tidy/done/t1.json');
        assert.equal(output.type, 'error');
        assert.equal(output.code, 'not_allowed');
        assert.match(output.message ?? '', /delete_everything/);
        const [history] = await home.readLines<HistoryLine>('state/tidy/history.jsonl');
        assert.equal(history?.tool_calls, 0, 'a refused call is not a tool call');
      });
    }));

  it('a child the agent spawns does not outlive the run', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('parent');
      await home.inbox('parent', 'c1', {
        goal: 'spawn',
        input: { script: [{ spawn_child: 'child.pid' }, { log: 'child started' }, { sleep: 60_000 }, { result: 'never' }] },
      });
      const daemon = home.startDaemon();
      try {
        await daemon.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'child started', 'the agent to start its child');
        const pid = Number(await fs.readFile(home.path('agents/parent/child.pid'), 'utf8'));
        assert.ok(pid > 0 && isAlive(pid), 'the child runs while the agent does');
        const [ended, exit] = await Promise.all([daemon.runEnded('parent'), daemon.stop()]);
        assert.equal(ended.outcome, 'interrupted');
        assert.equal(exit.code, 0);
        assert.equal(isAlive(pid), false, `child ${pid} outlived the run`);
      } finally {
        await daemon.stop();
      }
    }));

  it('model calls through an openai provider carry the key as Bearer, and the key is written nowhere', async () => {
    const key = `sk-test-${randomBytes(12).toString('hex')}`;
    const standIn = await startStandIn(() => ({ body: completion('hello from the stand-in', { prompt_tokens: 1000, completion_tokens: 500 }) }));
    try {
      await inHome(
        `${FAST_CONFIG}
providers:
  standin: { kind: openai, base_url: "${standIn.url}", api_key_env: STANDIN_API_KEY }
models:
  standin/gpt-test: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }
`,
        async (home) => {
          await home.scriptedAgent('caller', { model: 'standin/gpt-test' });
          await home.inbox('caller', 'm1', {
            goal: 'call the model',
            input: { script: [{ env_dump: 'env.json' }, { model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: '$last' }] },
          });
          let logs: LogLine[] = [];
          await withDaemon(
            home,
            async (daemon) => {
              assert.equal((await daemon.runEnded('caller')).outcome, 'done');
              logs = daemon.logs;
            },
            { STANDIN_API_KEY: key },
          );

          assert.equal(standIn.requests.length, 1);
          const request = standIn.requests[0]!;
          assert.equal(request.headers.authorization, `Bearer ${key}`);
          assert.equal(request.body.model, 'gpt-test', 'the provider gets the name after provider/');
          assert.deepEqual(request.body.messages, [{ role: 'user', content: 'hi' }]);
          const { output } = await home.readJson<DoneFile<{ response: { content: string }; model: string; usage: { cost_usd: number } }>>('state/caller/done/m1.json');
          assert.equal(output.response.content, 'hello from the stand-in');
          assert.equal(output.model, 'standin/gpt-test');
          const [history] = await home.readLines<HistoryLine>('state/caller/history.jsonl');
          assert.deepEqual(history?.tokens, { input: 1000, output: 500 });
          assert.ok(Math.abs((history?.cost_usd ?? 0) - 0.002) < 1e-9, `cost from the price table, got ${history?.cost_usd}`);

          const env = await home.readJson<Record<string, string>>('agents/caller/env.json');
          assert.ok(!Object.values(env).includes(key), 'the agent never holds the key');
          const files = await allFiles(home.root);
          assert.ok(files.some((f) => f.includes('journal')), 'the run wrote its files');
          for (const file of files) {
            assert.ok(!(await fs.readFile(file, 'utf8')).includes(key), `the key leaked into ${file}`);
          }
          assert.ok(!JSON.stringify(logs).includes(key), 'the key leaked into the log');
        },
      );
    } finally {
      await standIn.close();
    }
  });

  it('a provider that never answers hits its timeout and the run does not hang', async () => {
    const standIn = await startStandIn(() => 'hang');
    try {
      await inHome(
        `${FAST_CONFIG}
providers:
  stuck: { kind: openai, base_url: "${standIn.url}", timeout: 300ms }
`,
        async (home) => {
          await home.scriptedAgent('patient', { model: 'stuck/never' });
          await home.inbox('patient', 'h1', { goal: 'wait', input: { script: [{ model: { messages: [{ role: 'user', content: 'anyone?' }] } }, { result: '$last' }] } });
          await withDaemon(home, async (daemon) => {
            const ended = await daemon.runEnded('patient', 1, 15_000);
            assert.equal(ended.outcome, 'done');
            const { output } = await home.readJson<DoneFile<Received>>('state/patient/done/h1.json');
            assert.equal(output.type, 'error');
            assert.equal(output.code, 'provider_unavailable');
            assert.match(output.message ?? '', /no complete reply within 300ms/);
            assert.equal(standIn.requests.length, 2, 'a timeout is retried up to retry.attempts (2 here)');
            const [history] = await home.readLines<HistoryLine>('state/patient/history.jsonl');
            assert.equal(history?.status, 'done', 'the run ended on its own: the stuck provider did not hold it');
          });
        },
      );
    } finally {
      await standIn.close();
    }
  });

  it('usage messages count toward tokens and cost in history and toward the budget', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('meter');
      await home.scriptedAgent('capped');
      await home.inbox('meter', 'u1', {
        goal: 'use an outside model',
        input: {
          script: [{ usage: { input_tokens: 120, output_tokens: 30, cost_usd: 0.05 } }, { usage: { input_tokens: 80, output_tokens: 20, cost_usd: 0.01 } }, { result: 'counted' }],
        },
      });
      await home.inbox('capped', 'u2', {
        goal: 'overspend outside',
        budget: { max_tokens: 100 },
        input: { script: [{ usage: { input_tokens: 150, output_tokens: 0 } }, { sleep: 60_000 }, { result: 'never' }] },
      });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('meter')).outcome, 'done');
        const [metered] = await home.readLines<HistoryLine>('state/meter/history.jsonl');
        assert.deepEqual(metered?.tokens, { input: 200, output: 50 });
        assert.ok(Math.abs((metered?.cost_usd ?? 0) - 0.06) < 1e-9, `cost ${metered?.cost_usd}`);
        assert.equal(metered?.steps, 0, 'usage is not a step');

        const capped = await daemon.runEnded('capped');
        assert.equal(capped.outcome, 'limit', 'tokens reported by usage exhaust max_tokens');
        const handoff = await home.readJson<{ reason: string; used: { tokens: number } }>('outbox/capped/handoff.json');
        assert.equal(handoff.reason, 'max_tokens');
        assert.equal(handoff.used.tokens, 150);
      });
    }));
});
