import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CLI, REPO_ROOT } from './helpers/paths.js';

const AGENT_YAML = 'version: "1"\ncommand: ["node", "agent.js"]\nmodel: mock/echo\n';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI as a user would, from the repository root, against `home`. */
function agentd(home: string, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, AGENTD_HOME: home } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh temporary home for one test, removed afterwards. */
async function inHome(body: (home: Home) => Promise<void>): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-cli-'));
  try {
    await body(new Home(root));
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

class Home {
  constructor(readonly root: string) {}

  path(rel: string): string {
    return path.join(this.root, rel);
  }

  async write(rel: string, content: string | object): Promise<void> {
    await fs.mkdir(path.dirname(this.path(rel)), { recursive: true });
    await fs.writeFile(this.path(rel), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }

  async readJson<T>(rel: string): Promise<T> {
    return JSON.parse(await fs.readFile(this.path(rel), 'utf8')) as T;
  }

  async exists(rel: string): Promise<boolean> {
    return fs.access(this.path(rel)).then(
      () => true,
      () => false,
    );
  }

  run(...args: string[]): Promise<Result> {
    return agentd(this.root, ...args);
  }

  agent(name: string, yaml = AGENT_YAML): Promise<void> {
    return this.write(`agents/${name}/agent.yaml`, yaml);
  }
}

interface Item {
  id: string;
  kind: string;
  agent: string;
  task_id: string | null;
  run_id: string | null;
  created_at: string;
  reason: string;
  status: 'open' | 'resolved';
  resolution?: { decision: string; answer?: string; extend?: Record<string, number>; by?: string; at?: string };
}

function item(id: string, overrides: Partial<Item> = {}): Item {
  return { id, kind: 'uncertain', agent: 'billing', task_id: 't1', run_id: 'r1', created_at: '2026-01-01T00:00:00Z', reason: 'amount missing', status: 'open', ...overrides };
}

function deadLetter(agent: string, id: string): object {
  return {
    v: 1,
    agent,
    task: { id, created_at: '2026-01-01T00:00:00Z', goal: 'refund order 7' },
    error: { category: 'crash', message: 'agent exited with code 1' },
    attempts: 3,
    runs: ['r1', 'r2', 'r3'],
    source: 'current',
    dead_lettered_at: '2026-01-02T00:00:00Z',
  };
}

function historyLine(agent: string, runId: string, startedAt: string, status: string): string {
  return JSON.stringify({
    v: 1, run_id: runId, task_id: `task-${runId}`, agent, trigger: 'inbox', started_at: startedAt, ended_at: startedAt, duration_ms: 1200,
    status, steps: 2, tool_calls: 0, tokens: { input: 10, output: 5 }, cost_usd: 0.001, error_category: status === 'failed' ? 'crash' : null,
    error: null, models: ['mock/echo'], agent_version: '1', definition_hash: 'x', definition_changed: false, degraded: false,
  });
}

describe('agentd submit', () => {
  it('writes a valid task into the inbox and prints its id', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      await home.write('input.json', { order: 7 });
      const r = await home.run('submit', 'billing', '--goal', 'refund order 7', '--input', home.path('input.json'), '--priority', '3', '--id', 'refund-7');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'refund-7');
      const task = await home.readJson<{ id: string; created_at: string; goal: string; input: unknown; priority: number }>('agents/billing/inbox/refund-7.json');
      assert.equal(task.id, 'refund-7');
      assert.equal(task.goal, 'refund order 7');
      assert.deepEqual(task.input, { order: 7 });
      assert.equal(task.priority, 3);
      assert.ok(!Number.isNaN(Date.parse(task.created_at)));
    });
  });

  it('generates an id when none is given and prints JSON with --json', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      const r = await home.run('submit', 'billing', '--goal', 'hello', '--json');
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { agent: string; id: string; file: string };
      assert.equal(out.agent, 'billing');
      assert.match(out.id, /^t-/);
      assert.equal(out.file, `agents/billing/inbox/${out.id}.json`);
      assert.equal((await home.readJson<{ goal: string }>(out.file)).goal, 'hello');
    });
  });

  it('refuses a bad agent name or task id with exit 2 and an unknown agent with exit 1', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      const badName = await home.run('submit', '../etc', '--goal', 'x');
      assert.equal(badName.code, 2);
      assert.match(badName.stderr, /agent name "\.\.\/etc" must match/);
      const badId = await home.run('submit', 'billing', '--goal', 'x', '--id', 'a/b');
      assert.equal(badId.code, 2);
      assert.match(badId.stderr, /task id "a\/b" must match/);
      const unknown = await home.run('submit', 'nobody', '--goal', 'x');
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no agent "nobody": agents\/nobody has no agent\.yaml/);
      assert.equal(await home.exists('agents/nobody'), false);
    });
  });

  it('refuses an input file that is not JSON with exit 2, naming the file', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      await home.write('notes.txt', 'not json');
      const r = await home.run('submit', 'billing', '--goal', 'x', '--input', home.path('notes.txt'));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /notes\.txt: is not valid JSON/);
      assert.deepEqual(await fs.readdir(home.path('agents/billing')), ['agent.yaml']);
    });
  });
});

describe('agentd resolve', () => {
  const outboxFile = 'outbox/billing/outbox.json';
  const withItems = async (home: Home, ...items: Item[]) => home.write(outboxFile, { v: 1, items });
  const resolutionOf = async (home: Home, id: string) => (await home.readJson<{ items: Item[] }>(outboxFile)).items.find((i) => i.id === id);

  it('continue, answer and cancel record the decision, who made it and when', async () => {
    await inHome(async (home) => {
      await withItems(home, item('billing:0001'), item('billing:0002'), item('billing:0003'));
      assert.equal((await home.run('resolve', 'billing:0001', '--continue', '--by', 'alice')).code, 0);
      const answered = await home.run('resolve', 'billing:0002', '--answer', '25.50');
      assert.equal(answered.code, 0, answered.stderr);
      assert.match(answered.stdout, /resolved billing:0002/);
      assert.equal((await home.run('resolve', 'billing:0003', '--cancel')).code, 0);

      const first = await resolutionOf(home, 'billing:0001');
      assert.equal(first?.status, 'resolved');
      assert.equal(first?.resolution?.decision, 'continue');
      assert.equal(first?.resolution?.by, 'alice');
      assert.ok(!Number.isNaN(Date.parse(first?.resolution?.at ?? '')));
      const second = await resolutionOf(home, 'billing:0002');
      assert.deepEqual([second?.resolution?.decision, second?.resolution?.answer], ['answer', '25.50']);
      assert.ok(second?.resolution?.by, 'by defaults to the OS user');
      assert.equal((await resolutionOf(home, 'billing:0003'))?.resolution?.decision, 'cancel');
    });
  });

  it('--extend stores normalised budget keys, with durations in milliseconds', async () => {
    await inHome(async (home) => {
      await withItems(home, item('billing:0001', { kind: 'limit' }));
      const r = await home.run('resolve', 'billing:0001', '--continue', '--extend', 'steps=20,cost_usd=1.5,runtime=10m', '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as Item).resolution?.extend, { steps: 20, cost_usd: 1.5, runtime_ms: 600_000 });
      assert.deepEqual((await resolutionOf(home, 'billing:0001'))?.resolution?.extend, { steps: 20, cost_usd: 1.5, runtime_ms: 600_000 });
    });
  });

  it('refuses two decisions, no decision or an unknown --extend key with exit 2 and leaves the item open', async () => {
    await inHome(async (home) => {
      await withItems(home, item('billing:0001'));
      const two = await home.run('resolve', 'billing:0001', '--continue', '--cancel');
      assert.equal(two.code, 2);
      assert.match(two.stderr, /choose one decision, not --continue and --cancel/);
      const none = await home.run('resolve', 'billing:0001');
      assert.equal(none.code, 2);
      assert.match(none.stderr, /a decision is required/);
      const badKey = await home.run('resolve', 'billing:0001', '--continue', '--extend', 'stepz=3');
      assert.equal(badKey.code, 2);
      assert.match(badKey.stderr, /--extend stepz is not a budget/);
      assert.equal((await resolutionOf(home, 'billing:0001'))?.status, 'open');
    });
  });

  it('an unknown item and an item already resolved exit 1 with a message', async () => {
    await inHome(async (home) => {
      await withItems(home, item('billing:0001', { status: 'resolved', resolution: { decision: 'deny', by: 'bob', at: '2026-01-01T01:00:00Z' } }));
      const unknown = await home.run('resolve', 'billing:9999', '--continue');
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no outbox item billing:9999/);
      const again = await home.run('resolve', 'billing:0001', '--approve');
      assert.equal(again.code, 1);
      assert.match(again.stderr, /billing:0001 is already resolved \(deny by bob/);
      assert.equal((await resolutionOf(home, 'billing:0001'))?.resolution?.decision, 'deny');
    });
  });
});

describe('agentd dlq', () => {
  it('lists, shows and retries a dead letter; retry puts the task back in the inbox and removes the record', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      await home.write('state/dead-letter/billing/refund-7.json', deadLetter('billing', 'refund-7'));

      const list = await home.run('dlq', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout), [
        { agent: 'billing', id: 'refund-7', category: 'crash', message: 'agent exited with code 1', attempts: 3, when: '2026-01-02T00:00:00Z' },
      ]);
      const table = await home.run('dlq', 'list');
      assert.match(table.stdout, /billing\s+refund-7\s+crash\s+agent exited with code 1\s+3/);

      const show = await home.run('dlq', 'show', 'refund-7');
      assert.equal(show.code, 0, show.stderr);
      assert.deepEqual(JSON.parse(show.stdout), deadLetter('billing', 'refund-7'));

      const retry = await home.run('dlq', 'retry', 'refund-7');
      assert.equal(retry.code, 0, retry.stderr);
      assert.deepEqual(await home.readJson('agents/billing/inbox/refund-7.json'), { id: 'refund-7', created_at: '2026-01-01T00:00:00Z', goal: 'refund order 7' });
      assert.equal(await home.exists('state/dead-letter/billing/refund-7.json'), false);
    });
  });

  it('an id under several agents needs --agent (exit 2), and an unknown id exits 1', async () => {
    await inHome(async (home) => {
      await home.write('state/dead-letter/billing/t1.json', deadLetter('billing', 't1'));
      await home.write('state/dead-letter/shipping/t1.json', deadLetter('shipping', 't1'));
      const ambiguous = await home.run('dlq', 'retry', 't1');
      assert.equal(ambiguous.code, 2);
      assert.match(ambiguous.stderr, /billing, shipping: pass --agent/);
      const chosen = await home.run('dlq', 'show', 't1', '--agent', 'shipping');
      assert.equal(chosen.code, 0, chosen.stderr);
      assert.equal((JSON.parse(chosen.stdout) as { agent: string }).agent, 'shipping');
      const unknown = await home.run('dlq', 'show', 'nope');
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no dead letter nope/);
    });
  });
});

describe('agentd validate', () => {
  it('reports a bad definition with file and field and exits 1', async () => {
    await inHome(async (home) => {
      await home.agent('billing', `${AGENT_YAML}budget:\n  max_stepz: 3\n`);
      await home.write('agents/billing/inbox/broken.json', '{ not json');
      const r = await home.run('validate');
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^agents\/billing\/agent\.yaml: budget\.max_stepz is not a known key \(did you mean max_steps\?\)$/m);
      assert.match(r.stdout, /^agents\/billing\/inbox\/broken\.json: is not valid JSON/m);
    });
  });

  it('exits 0 on a good home and counts agents and tasks', async () => {
    await inHome(async (home) => {
      await home.agent('billing');
      await home.write('agents/billing/inbox/a.json', { goal: 'one' });
      await home.write('agents/billing/current-task.json', { id: 'b', goal: 'two' });
      await home.write('outbox/billing/outbox.json', { v: 1, items: [item('billing:0001')] });
      const r = await home.run('validate');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, 'ok: 1 agent, 2 tasks\n');
    });
  });
});

describe('agentd init', () => {
  it('creates a home that validate accepts, and refuses to overwrite it', async () => {
    await inHome(async (home) => {
      const target = home.path('new-home');
      const r = await agentd(home.root, 'init', target);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /next steps/);
      for (const file of ['agentd.yaml', 'agents/example/agent.yaml', 'agents/example/agent.js', 'agents/example/inbox/hello.json', 'state', 'outbox']) {
        assert.ok(await home.exists(`new-home/${file}`), `${file} exists`);
      }
      const agentJs = await fs.readFile(path.join(target, 'agents/example/agent.js'), 'utf8');
      assert.match(agentJs, /^import \{ runAgent \} from 'agentd\/sdk';$/m, 'the SDK is imported by its package name');
      assert.equal(await fs.realpath(path.join(target, 'node_modules', 'agentd')), await fs.realpath(REPO_ROOT), 'node_modules/agentd links this installation');

      const validate = await agentd(target, 'validate');
      assert.equal(validate.code, 0, validate.stdout + validate.stderr);
      assert.equal(validate.stdout, 'ok: 1 agent, 1 task\n');

      const again = await agentd(home.root, 'init', target);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /agentd\.yaml already exists/);
    });
  });
});

describe('agentd status, outbox and runs as JSON', () => {
  it('status --json reflects the current task, queue, checkpoint, history, spend, outbox and dead letters', async () => {
    await inHome(async (home) => {
      const now = new Date();
      await home.agent('billing');
      await home.agent('broken', `${AGENT_YAML}budget:\n  max_stepz: 3\n`);
      await home.write('agents/notes/readme.txt', 'not an agent');
      await home.write('agents/billing/current-task.json', { id: 'refund-7', created_at: new Date(now.getTime() - 60_000).toISOString(), goal: 'refund' });
      await home.write('agents/billing/inbox/next.json', { goal: 'later' });
      await home.write('state/billing/checkpoint.json', {
        v: 1, task_id: 'refund-7', attempts: 2, runs: ['r1', 'r2', 'r3'], state: null, checkpoint_at: null, runtime_ms: 0, next_attempt_at: null,
        last_error: { category: 'timeout', message: 'model timed out' }, agent_version: '1', definition_hash: 'x',
        active_run: { run_id: 'r3', trigger: 'resume', started_at: now.toISOString(), pid: null, host: 'h', daemon_pid: 1 },
      });
      await home.write('state/billing/history.jsonl', [historyLine('billing', 'r1', '2026-01-01T00:00:00Z', 'done'), historyLine('billing', 'r2', '2026-01-02T00:00:00Z', 'failed'), ''].join('\n'));
      await home.write('state/billing/daily-spend.json', { v: 1, day: now.toISOString().slice(0, 10), cost_usd: 0.25 });
      await home.write('outbox/billing/outbox.json', { v: 1, items: [item('billing:0001'), item('billing:0002', { status: 'resolved', resolution: { decision: 'continue' } })] });
      await home.write('state/dead-letter/billing/old.json', deadLetter('billing', 'old'));

      const r = await home.run('status', '--json');
      assert.equal(r.code, 0, r.stderr);
      const status = JSON.parse(r.stdout) as {
        agents: { agent: string; status: string; config_error: string | null; current_task: { id: string; age_ms: number } | null; queue: number; attempts: number; last_error: unknown; active_run: { run_id: string } | null; last_run: { run_id: string; status: string } | null; spend_today_usd: number; open_items: number; dead_letters: number }[];
        open_items: Item[];
        dead_letters: Record<string, number>;
        circuits: unknown[];
      };
      assert.deepEqual(status.agents.map((a) => a.agent), ['billing', 'broken'], 'a folder without a definition is not an agent');
      const [billing, broken] = status.agents;
      assert.equal(billing?.status, 'running');
      assert.equal(billing?.current_task?.id, 'refund-7');
      assert.ok((billing?.current_task?.age_ms ?? 0) >= 60_000);
      assert.equal(billing?.queue, 1);
      assert.equal(billing?.attempts, 2);
      assert.deepEqual(billing?.last_error, { category: 'timeout', message: 'model timed out' });
      assert.equal(billing?.active_run?.run_id, 'r3');
      assert.deepEqual([billing?.last_run?.run_id, billing?.last_run?.status], ['r2', 'failed']);
      assert.equal(billing?.spend_today_usd, 0.25);
      assert.equal(billing?.open_items, 1);
      assert.equal(billing?.dead_letters, 1);
      assert.equal(broken?.status, 'config_error');
      assert.match(broken?.config_error ?? '', /agents\/broken\/agent\.yaml: budget\.max_stepz is not a known key/);
      assert.deepEqual(status.open_items.map((i) => i.id), ['billing:0001']);
      assert.deepEqual(status.dead_letters, { billing: 1 });
      assert.deepEqual(status.circuits, []);

      const human = await home.run('status');
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /billing\s+running\s+refund-7/);
      assert.match(human.stdout, /broken: config_error: agents\/broken\/agent\.yaml: budget\.max_stepz/);
    });
  });

  it('outbox --json lists open items newest first, --all adds resolved ones, and a broken file is reported while the rest prints', async () => {
    await inHome(async (home) => {
      await home.write('outbox/billing/outbox.json', {
        v: 1,
        items: [
          item('billing:old', { created_at: '2026-01-01T00:00:00Z' }),
          item('billing:new', { created_at: '2026-01-03T00:00:00Z' }),
          item('billing:done', { created_at: '2026-01-02T00:00:00Z', status: 'resolved', resolution: { decision: 'continue' } }),
        ],
      });
      const open = await home.run('outbox', '--json');
      assert.equal(open.code, 0, open.stderr);
      assert.deepEqual((JSON.parse(open.stdout) as Item[]).map((i) => i.id), ['billing:new', 'billing:old']);
      const all = await home.run('outbox', '--all', '--json');
      assert.deepEqual((JSON.parse(all.stdout) as Item[]).map((i) => i.id), ['billing:new', 'billing:done', 'billing:old']);

      await home.write('outbox/shipping/outbox.json', '{ broken');
      const withBroken = await home.run('outbox', '--json');
      assert.equal(withBroken.code, 1);
      assert.match(withBroken.stderr, /outbox\/shipping\/outbox\.json: is not valid JSON/);
      assert.deepEqual((JSON.parse(withBroken.stdout) as Item[]).map((i) => i.id), ['billing:new', 'billing:old']);
    });
  });

  it('runs --json returns history lines newest first, filtered by agent, status and limit', async () => {
    await inHome(async (home) => {
      await home.write('state/billing/history.jsonl', [historyLine('billing', 'r1', '2026-01-01T00:00:00Z', 'done'), historyLine('billing', 'r3', '2026-01-03T00:00:00Z', 'failed')].join('\n') + '\n');
      await home.write('state/shipping/history.jsonl', historyLine('shipping', 'r2', '2026-01-02T00:00:00Z', 'done') + '\n');
      await home.write('state/audit.jsonl', '');
      const ids = async (...args: string[]) => {
        const r = await home.run('runs', ...args, '--json');
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { run_id: string }[]).map((l) => l.run_id);
      };
      assert.deepEqual(await ids(), ['r3', 'r2', 'r1']);
      assert.deepEqual(await ids('billing'), ['r3', 'r1']);
      assert.deepEqual(await ids('--status', 'done'), ['r2', 'r1']);
      assert.deepEqual(await ids('--limit', '1'), ['r3']);
      assert.deepEqual(await ids('--since', '1h'), []);
      const table = await home.run('runs');
      assert.match(table.stdout, /r3\s+billing\s+task-r3\s+inbox\s+failed/);
    });
  });
});

describe('agentd --help', () => {
  const commands = [[], ['submit'], ['status'], ['outbox'], ['resolve'], ['dlq'], ['dlq', 'list'], ['dlq', 'show'], ['dlq', 'retry'], ['runs'], ['validate'], ['init']];
  for (const command of commands) {
    it(`agentd ${[...command, '--help'].join(' ')} exits 0`, async () => {
      const r = await agentd(os.tmpdir(), ...command, '--help');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: agentd/);
    });
  }
});
