import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { BUILTIN_DEFAULTS, BUILTIN_LIMITS, resolveDaemonConfig } from '../src/config/daemon-config.js';
import { parseDuration } from '../src/config/duration.js';
import type { DaemonConfig } from '../src/config/types.js';
import { ConfigError } from '../src/errors.js';
import type { HistoryLine } from '../src/store/history.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { FAST_CONFIG, inHome, readJsonOrNull, untilInFolder, withDaemon } from './helpers/support.js';
import { SCRIPTED_AGENT, TestHome } from './helpers/home.js';
import { useHome } from './helpers/hooks.js';

/** A definition with three mistakes a person makes, and neither command nor model. */
const BAD_DEFINITION = `version: "1"
colour: red
budget:
  max_stepz: 5
  max_runtime: 10 minutes
`;

/** The scripted agent as YAML, so a definition can be fixed in the format it was broken in. */
function scriptedYaml(version: string, extra = ''): string {
  return `version: "${version}"\ncommand: ["node", ${JSON.stringify(SCRIPTED_AGENT)}]\nmodel: mock/echo\n${extra}`;
}

const resultTask = (result: unknown) => ({ goal: 'answer', input: { script: [{ result }] } });

function outboxOf(home: TestHome, agent: string) {
  const file = home.path('outbox', agent, 'outbox.json');
  return { dir: home.path('outbox', agent), read: async () => (await readJsonOrNull<OutboxFile>(file)) ?? { items: [] } };
}

describe('agent definitions in a running daemon', () => {
  it('a bad definition beside a good one is told to a person, and fixing it is picked up live', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('good');
      await home.inbox('good', 'g1', resultTask('good ran'));
      await home.write('agents/bad/agent.yaml', BAD_DEFINITION);
      await home.inbox('bad', 'b1', resultTask('bad ran once fixed'));

      await withDaemon(home, async (daemon) => {
        await daemon.started();
        const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'bad', 'the bad definition to be rejected');
        assert.equal(rejected.kept_previous, false);
        const ended = await daemon.runEnded('good');
        assert.equal(ended.outcome, 'done', 'the good agent runs while its neighbour is broken');
        assert.equal((await home.readJson<{ output: unknown }>('state/good/done/g1.json')).output, 'good ran');

        // The item is written before the daemon says it started.
        const outbox = outboxOf(home, 'bad');
        const [item, ...others] = (await outbox.read()).items;
        assert.equal(others.length, 0, 'one config_error item per agent');
        assert.equal(item?.kind, 'config_error');
        assert.equal(item?.status, 'open');
        assert.equal(item?.task_id, null);
        const reason = item?.reason ?? '';
        assert.ok(reason.includes('agents/bad/agent.yaml: budget.max_stepz is not a known key (did you mean max_steps?)'), reason);
        assert.ok(reason.includes('agents/bad/agent.yaml: budget.max_runtime must be a duration like 500ms, 30s, 15m, 4h or 1d'), reason);
        assert.ok(reason.includes('agents/bad/agent.yaml: colour is not a known key'), reason);
        assert.ok(reason.includes('agents/bad/agent.yaml: command or model is required'), reason);
        assert.deepEqual(await home.list('agents/bad/inbox'), ['b1.json'], 'an agent with no good definition runs nothing');

        await home.write('agents/bad/agent.yaml', scriptedYaml('2'));
        const fixed = await daemon.runEnded('bad');
        assert.equal(fixed.outcome, 'done');
        assert.equal((await home.readJson<{ output: unknown }>('state/bad/done/b1.json')).output, 'bad ran once fixed');
        // The daemon closes the item before it looks at the agent's tasks.
        const [closed] = (await outbox.read()).items;
        assert.equal(closed?.id, item?.id);
        assert.equal(closed?.status, 'resolved', 'the daemon closes the item once the definition loads');
        assert.equal(closed?.resolution?.by, 'agentd');
      });
    }));

  it('a definition caught mid-save (written empty, then filled) is read again once it settles and never reported', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('other');
      await withDaemon(home, async (daemon) => {
        await daemon.started();
        // `cat > agents/late/agent.yaml <<EOF ...` as the README's walkthrough does: the file exists, empty, first.
        await home.write('agents/late/agent.yaml', '');
        await daemon.waitForLog((l) => l.msg === 'agent definition not loadable yet; read again once it settles' && l.agent === 'late', 'the empty definition to be put off');
        await home.write('agents/late/agent.yaml', scriptedYaml('1'));
        await home.inbox('late', 'l1', resultTask('late ran'));
        const ended = await daemon.runEnded('late');
        assert.equal(ended.outcome, 'done');
        assert.equal(
          daemon.logs.find((l) => l.msg === 'agent definition rejected' && l.agent === 'late'),
          undefined,
          'a file caught mid-save is not a mistake to report',
        );
        assert.equal(await readJsonOrNull(home.path('outbox', 'late', 'outbox.json')), null, 'no config_error item');
      });
    }));

  it('a definition that is still broken once it settles is reported', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('other');
      await withDaemon(home, async (daemon) => {
        await daemon.started();
        await home.write('agents/late/agent.yaml', BAD_DEFINITION);
        const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'late', 'the bad definition to be rejected once it settled');
        assert.ok(String(rejected.problem).includes('colour is not a known key'), String(rejected.problem));
        const outbox = outboxOf(home, 'late');
        const { items } = await untilInFolder(outbox.dir, outbox.read, (o) => o.items.length > 0, 'a config_error item');
        assert.equal(items[0]?.kind, 'config_error');
      });
    }));

  it('breaking a good definition keeps the last good one in use and reports config_error', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/steady/agent.yaml', scriptedYaml('1'));
      await home.inbox('steady', 's1', resultTask('first'));
      await withDaemon(home, async (daemon) => {
        await daemon.runEnded('steady', 1);

        await home.write('agents/steady/agent.yaml', scriptedYaml('2', 'max_attempt: 2\n'));
        const problem = 'agents/steady/agent.yaml: max_attempt is not a known key (did you mean max_attempts?)';
        const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'steady' && String(l.problem).includes(problem), 'the broken definition to be rejected');
        assert.equal(rejected.kept_previous, true);

        await home.inbox('steady', 's2', resultTask('second'));
        const ended = await daemon.runEnded('steady', 2);
        assert.equal(ended.outcome, 'done', 'its task still runs');
        const [first, second] = await home.readLines<HistoryLine>('state/steady/history.jsonl');
        assert.equal(second?.task_id, 's2');
        assert.equal(second?.agent_version, '1', 'under the last good definition');
        assert.equal(second?.definition_hash, first?.definition_hash);

        const outbox = outboxOf(home, 'steady');
        const { items } = await untilInFolder(outbox.dir, outbox.read, (o) => o.items.some((i) => i.reason.includes(problem)), 'a config_error item naming the field');
        assert.equal(items.length, 1, 'one config_error item per agent');
        assert.equal(items[0]?.kind, 'config_error');
        assert.equal(items[0]?.status, 'open');
        assert.equal(items[0]?.reason, `${problem}\n(the last good definition stays in use)`);
      });
    }));

  it('SIGHUP re-reads definitions, even a change the file watcher does not see', () =>
    inHome(FAST_CONFIG, async (home) => {
      // The output schema lives in a folder the watcher ignores: only a reload notices it changed.
      await home.write('agents/typed/schemas/out.json', { type: 'string' });
      await home.write('agents/typed/agent.yaml', scriptedYaml('1', 'output_schema: schemas/out.json\nmax_attempts: 1\n'));
      await home.inbox('typed', 'n1', resultTask(42));
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('typed', 1)).outcome, 'failed', 'a number fails the string schema');

        await home.write('agents/typed/schemas/out.json', { type: 'number' });
        daemon.child.kill('SIGHUP');
        await daemon.waitForLog((l) => l.msg === 'definitions reloaded', 'the reload');
        await home.inbox('typed', 'n2', resultTask(42));
        assert.equal((await daemon.runEnded('typed', 2)).outcome, 'done', 'the reloaded schema accepts a number');
        assert.equal((await home.readJson<{ output: unknown }>('state/typed/done/n2.json')).output, 42);
        const history = await home.readLines<HistoryLine>('state/typed/history.jsonl');
        assert.equal(history[0]?.error_category, 'invalid_output');
        assert.notEqual(history[0]?.definition_hash, history[1]?.definition_hash, 'the schema file is part of the definition hash');
        assert.equal(daemon.child.exitCode, null, 'SIGHUP does not stop the daemon');
      });
    }));
});

describe('loading and resolving definitions', () => {
  // Each test gets its own home.
  const home = useHome();

  const config = (raw: Record<string, unknown> = {}): DaemonConfig => resolveDaemonConfig(home.paths, 'agentd.yaml', raw);

  async function loadError(agent: string, yaml: string, cfg = config()): Promise<ConfigError> {
    await home.write(`agents/${agent}/agent.yaml`, yaml);
    try {
      await loadAgentDefinition(home.paths, cfg, agent);
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      return err;
    }
    assert.fail(`agents/${agent}/agent.yaml loaded, expected a ConfigError`);
  }

  it('a definition error names the file and every bad field, with a suggestion for a typo', async () => {
    const err = await loadError('x', BAD_DEFINITION);
    assert.equal(err.name, 'ConfigError');
    assert.equal(err.code, 'config_error');
    assert.equal(err.file, 'agents/x/agent.yaml');
    assert.deepEqual([...err.problems].sort(), [
      'budget.max_runtime must be a duration like 500ms, 30s, 15m, 4h or 1d',
      'budget.max_stepz is not a known key (did you mean max_steps?)',
      'colour is not a known key',
      'command or model is required',
    ]);
    assert.ok(err.message.split('\n').includes('agents/x/agent.yaml: budget.max_stepz is not a known key (did you mean max_steps?)'), err.message);
  });

  it('a definition that is not valid YAML names the file', async () => {
    const err = await loadError('broken-yaml', 'command: [node, agent.js\nmodel: mock/echo\n');
    assert.equal(err.file, 'agents/broken-yaml/agent.yaml');
    assert.match(err.message, /^agents\/broken-yaml\/agent\.yaml: is not valid YAML/);
  });

  it('a model whose provider agentd.yaml does not declare is an error', async () => {
    const err = await loadError('nowhere', 'model: nowhere/gpt\n');
    assert.deepEqual(err.problems, ['model "nowhere/gpt" names provider "nowhere", which agentd.yaml does not declare under providers']);
  });

  it('durations become milliseconds', async () => {
    await home.write(
      'agents/timed/agent.yaml',
      `model: mock/echo
budget: { max_runtime: 15m }
freshness: { task_max_age: 4h, context_max_age: 1d }
retry: { attempts: 4, base_delay: 500ms, max_delay: 30s }
stop_grace: 1.5s
`,
    );
    const def = await loadAgentDefinition(home.paths, config(), 'timed');
    assert.ok(def);
    assert.equal(def.budget.runtimeMs, 15 * 60_000);
    assert.equal(def.freshness.taskMaxAgeMs, 4 * 3_600_000);
    assert.equal(def.freshness.contextMaxAgeMs, 86_400_000);
    assert.deepEqual(def.retry, { attempts: 4, baseDelayMs: 500, maxDelayMs: 30_000 });
    assert.equal(def.stopGraceMs, 1500);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2d'), 2 * 86_400_000);
    assert.throws(() => parseDuration('10 minutes'), { message: 'not a duration: "10 minutes" (use e.g. 500ms, 30s, 15m, 4h, 1d)' });
  });

  it('spare is on by default for the built-in agent only (README "Warm agents")', async () => {
    await home.write('agents/builtin/agent.yaml', 'model: mock/echo\n');
    await home.write('agents/mine/agent.yaml', 'command: [node, a.js]\n');
    await home.write('agents/mine-spare/agent.yaml', 'command: [node, a.js]\nspare: true\n');
    await home.write('agents/builtin-off/agent.yaml', 'model: mock/echo\nspare: false\n');
    const spare = async (agent: string) => (await loadAgentDefinition(home.paths, config(), agent))?.spare;
    assert.equal(await spare('builtin'), true, 'the built-in agent reads its task from start');
    assert.equal(await spare('mine'), false, 'a command of yours may read its task from its environment');
    assert.equal(await spare('mine-spare'), true);
    assert.equal(await spare('builtin-off'), false);
  });

  it('defaults come from agentd.yaml, a definition overrides them one key at a time, and the rest are built in', async () => {
    const cfg = config({ defaults: { budget: { max_steps: 7, max_cost_usd: 0.5 }, retry: { base_delay: '2s' }, max_attempts: 5, stop_grace: '3s' } });
    await home.write('agents/plain/agent.yaml', 'model: mock/echo\n');
    await home.write('agents/tuned/agent.yaml', 'model: mock/echo\nbudget: { max_cost_usd: 0.25 }\nmax_attempts: 2\n');
    const plain = await loadAgentDefinition(home.paths, cfg, 'plain');
    const tuned = await loadAgentDefinition(home.paths, cfg, 'tuned');
    assert.ok(plain && tuned);
    assert.deepEqual(plain.budget, { ...BUILTIN_DEFAULTS.budget, steps: 7, costUsd: 0.5 });
    assert.deepEqual(tuned.budget, { ...BUILTIN_DEFAULTS.budget, steps: 7, costUsd: 0.25 });
    assert.deepEqual(plain.retry, { ...BUILTIN_DEFAULTS.retry, baseDelayMs: 2000 });
    assert.equal(plain.maxAttempts, 5);
    assert.equal(tuned.maxAttempts, 2);
    assert.equal(plain.stopGraceMs, 3000);
    assert.equal(plain.command, null, 'without command, the built-in model agent runs');
    assert.equal(plain.version, '0');
    assert.deepEqual(plain.env, []);
  });

  it('a budget above the hard limit is an error naming the field and limits.budget', async () => {
    const cfg = config({ limits: { budget: { max_steps: 100, max_cost_usd: 5 } } });
    assert.equal(cfg.limits.steps, 100);
    assert.equal(cfg.limits.tokens, BUILTIN_LIMITS.tokens, 'limits not named stay built in');
    const err = await loadError('greedy', 'model: mock/echo\nbudget: { max_steps: 500, max_cost_usd: 5 }\n', cfg);
    assert.deepEqual(err.problems, ['budget.max_steps is 500, above the hard limit 100 (agentd.yaml limits.budget)']);
    await home.write('agents/modest/agent.yaml', 'model: mock/echo\nbudget: { max_steps: 100 }\n');
    assert.equal((await loadAgentDefinition(home.paths, cfg, 'modest'))?.budget.steps, 100, 'a budget at the limit is fine');
    const builtIn = await loadError('huge', 'model: mock/echo\nbudget: { max_steps: 10001 }\n');
    assert.deepEqual(builtIn.problems, ['budget.max_steps is 10001, above the hard limit 10000 (agentd.yaml limits.budget)']);
  });

  it('agentd.yaml errors name the file and the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ max_paralel_runs: 2 }, 'agentd.yaml: max_paralel_runs is not a known key (did you mean max_parallel_runs?)'],
      [{ defaults: { budget: { max_runtime: 'soon' } } }, 'agentd.yaml: defaults.budget.max_runtime must be a duration like 500ms, 30s, 15m, 4h or 1d'],
      [{ limits: { budget: { max_steps: 10 } }, defaults: { budget: { max_steps: 20 } } }, 'agentd.yaml: defaults.budget.max_steps is 20, above the hard limit 10 (agentd.yaml limits.budget)'],
      [{ providers: { local: { kind: 'openai' } } }, 'agentd.yaml: providers.local.base_url is required for kind openai'],
      [{ providers: { local: { kind: 'openai', base_url: 'http://x', api_key_evn: 'KEY' } } }, 'agentd.yaml: providers.local.api_key_evn is not a known key (did you mean api_key_env?)'],
      [{ lock_stale: '1s' }, 'agentd.yaml: lock_stale must be at least 2s (proper-lockfile refuses less)'],
    ];
    for (const [raw, message] of cases) {
      assert.throws(
        () => resolveDaemonConfig(home.paths, 'agentd.yaml', raw),
        (err: unknown) => err instanceof ConfigError && err.file === 'agentd.yaml' && err.message.split('\n').includes(message),
        `${JSON.stringify(raw)} should fail with ${message}`,
      );
    }
  });

  it('agentd.yaml resolves durations and fills what it leaves out', () => {
    const cfg = config({ lock_stale: '2s', model_timeout: '45s', providers: { slow: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1/', timeout: '300ms' }, fast: { kind: 'openai', base_url: 'http://127.0.0.1:1' } } });
    assert.equal(cfg.lockStaleMs, 2000);
    assert.equal(cfg.providers.slow?.timeoutMs, 300);
    assert.equal(cfg.providers.slow?.baseUrl, 'http://127.0.0.1:1/v1', 'a trailing slash is dropped');
    assert.equal(cfg.providers.fast?.timeoutMs, 45_000, 'a provider without timeout uses model_timeout');
    assert.equal(cfg.providers.mock?.kind, 'mock', 'the mock provider is always there');
    assert.equal(cfg.maxParallelRuns, 4);
    assert.equal(cfg.traceCapture, 'redacted');
    assert.deepEqual(cfg.defaults, BUILTIN_DEFAULTS);
    assert.deepEqual(cfg.limits, BUILTIN_LIMITS);
  });
});
