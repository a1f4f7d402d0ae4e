import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { encodeMessage, parseAgentLine, type AgentMessage, type DaemonMessage, type DeliveredResolution, type StartMessage } from '../src/protocol/messages.js';
import { budgetWarning, remaining } from '../src/run/budget.js';
import { linkSdk } from '../src/store/sdk-link.js';
import { copyTracked } from './helpers/demo.js';
import { useCleanup } from './helpers/hooks.js';
import { REPO_ROOT } from './helpers/paths.js';

/**
 * The SDK, the bundled example agents and the Python example, each run as a
 * real child process while the test plays the daemon's side of the protocol.
 */

const sdkUrl = pathToFileURL(path.join(REPO_ROOT, 'dist/src/sdk/index.js')).href;
const hasPython = spawnSync('python3', ['--version']).status === 0;
const TIMEOUT = { timeout: 15_000 };

// The bundled examples as git tracks them, in a home of their own whose
// node_modules/agentd links to this build, as the daemon links every home's.
const demo = await mkdtemp(path.join(os.tmpdir(), 'agentd-sdk-demo-'));
await copyTracked(demo, 'agents/hello', 'agents/cautious');
await linkSdk(path.join(demo, 'node_modules'));
after(() => rm(demo, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type MessageOf<T extends AgentMessage['type']> = Extract<AgentMessage, { type: T }>;

function isType<T extends AgentMessage['type']>(message: AgentMessage, type: T): message is MessageOf<T> {
  return message.type === type;
}

const cleanup = useCleanup();

/** The daemon's side of one agent process: send messages, await the agent's, one at a time. */
class FakeDaemon {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly received: AgentMessage[] = [];
  private waiter: { resolve(message: AgentMessage): void; reject(err: Error): void } | null = null;
  private stdoutClosed = false;
  /** stdout lines that were not valid protocol messages. */
  readonly noise: string[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;

  constructor(command: string, args: string[], cwd: string) {
    this.child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', AGENTD_AGENT: 'test-agent', AGENTD_TASK_ID: 'task-1', AGENTD_RUN_ID: 'run-1', AGENTD_HOME: cwd },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    cleanup.defer(() => this.kill());
    this.child.stdin.on('error', () => undefined); // the agent may exit before reading everything
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
    const lines = readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => this.onLine(line));
    lines.on('close', () => {
      this.stdoutClosed = true;
      this.waiter?.reject(new Error(`agent closed stdout while a message was awaited; stderr:\n${this.stderr}`));
      this.waiter = null;
    });
  }

  static node(script: string, cwd: string): FakeDaemon {
    return new FakeDaemon(process.execPath, [script], cwd);
  }

  private onLine(line: string): void {
    const parsed = parseAgentLine(line);
    if (parsed.kind !== 'message') {
      this.noise.push(line);
      return;
    }
    if (this.waiter) {
      this.waiter.resolve(parsed.message);
      this.waiter = null;
    } else this.received.push(parsed.message);
  }

  next(): Promise<AgentMessage> {
    const queued = this.received.shift();
    if (queued) return Promise.resolve(queued);
    if (this.stdoutClosed) return Promise.reject(new Error(`agent closed stdout; stderr:\n${this.stderr}`));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  async expect<T extends AgentMessage['type']>(type: T): Promise<MessageOf<T>> {
    const message = await this.next();
    if (!isType(message, type)) assert.fail(`expected a ${type} message, got ${JSON.stringify(message)}; stderr:\n${this.stderr}`);
    return message;
  }

  send(message: DaemonMessage): void {
    this.child.stdin.write(encodeMessage(message));
  }

  closeStdin(): void {
    this.child.stdin.end();
  }

  /** The exit, and every message the agent sent that the test did not consume. */
  async end(): Promise<{ exit: Exit; unread: AgentMessage[] }> {
    const exit = await this.exited;
    return { exit, unread: this.received.splice(0) };
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function startMessage(task: Record<string, unknown>, resolutions: DeliveredResolution[] = []): StartMessage {
  return {
    type: 'start',
    run_id: 'run-1',
    task: { id: 'task-1', created_at: '2026-01-01T00:00:00Z', ...task },
    context: null,
    resume: { checkpoint: null, handoff: null, resolutions },
    budget: { remaining: { steps: 10, tool_calls: 10, tokens: 10_000, cost_usd: 1, runtime_ms: 60_000 } },
  };
}

function modelResult(id: string, content: string): DaemonMessage {
  return {
    type: 'model_result',
    id,
    ok: true,
    response: { content, tool_calls: [] },
    usage: { input_tokens: 5, output_tokens: 7, cost_usd: 0.0001 },
    model: 'mock/echo',
    replayed: false,
  };
}

/** An agent script in a temp folder that imports the built SDK by file URL. */
async function inlineAgent(body: string): Promise<{ script: string; dir: string }> {
  const dir = await cleanup.tempDir('agentd-sdk-');
  const script = path.join(dir, 'agent.mjs');
  await writeFile(script, `import { runAgent, AgentdError } from ${JSON.stringify(sdkUrl)};\n${body}\n`);
  return { script, dir };
}

async function spawnInline(body: string): Promise<FakeDaemon> {
  const { script, dir } = await inlineAgent(body);
  return FakeDaemon.node(script, dir);
}

test('the hello agent asks the model with the task goal, checkpoints, and returns the reply as its result', TIMEOUT, async () => {
  const agent = FakeDaemon.node('agent.js', path.join(demo, 'agents/hello'));
  const welcome = JSON.parse(await readFile(path.join(demo, 'agents/hello/inbox/welcome.json'), 'utf8')) as Record<string, unknown>;
  agent.send(startMessage(welcome));

  const call = await agent.expect('model');
  assert.deepEqual(call.request.messages.at(-1), { role: 'user', content: 'Say hello to the operator' });
  agent.send(modelResult(call.id, 'mock reply: Say hello to the operator'));

  assert.deepEqual((await agent.expect('checkpoint')).state, { answered: true, model: 'mock/echo' });
  assert.deepEqual((await agent.expect('result')).output, { answer: 'mock reply: Say hello to the operator' });
  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(unread, []);
  assert.deepEqual(agent.noise, []);
});

test('an error reply rejects the call with an AgentdError carrying the code and message', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  try {
    await ctx.tool('send_email', { to: 'x' });
    return { caught: false };
  } catch (err) {
    return { isAgentdError: err instanceof AgentdError, name: err.name, code: err.code, message: err.message };
  }
});`);
  agent.send(startMessage({ goal: 'mail' }));
  const call = await agent.expect('tool');
  assert.equal(call.name, 'send_email');
  assert.deepEqual(call.args, { to: 'x' });
  agent.send({ type: 'error', id: call.id, code: 'not_allowed', message: 'tool "send_email" is not in this agent\'s tools' });

  const result = await agent.expect('result');
  assert.deepEqual(result.output, { isAgentdError: true, name: 'AgentdError', code: 'not_allowed', message: 'tool "send_email" is not in this agent\'s tools' });
  assert.equal((await agent.end()).exit.code, 0);
});

test('requests get distinct ids and replies are matched by id, whatever their order', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  const [reply, looked] = await Promise.all([
    ctx.model({ messages: [{ role: 'user', content: 'first' }] }),
    ctx.tool('lookup', { q: 'second' }),
  ]);
  return { content: reply.content, looked };
});`);
  agent.send(startMessage({ goal: 'both' }));
  const model = await agent.expect('model');
  const tool = await agent.expect('tool');
  assert.notEqual(model.id, tool.id);
  agent.send({ type: 'tool_result', id: tool.id, ok: true, result: { found: 'second' }, replayed: false });
  agent.send(modelResult(model.id, 'answer to first'));

  assert.deepEqual((await agent.expect('result')).output, { content: 'answer to first', looked: { found: 'second' } });
});

test('a budget_warning updates ctx.budget.remaining to the limits minus what was used', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  const before = ctx.budget.remaining.steps;
  await ctx.model({ messages: [{ role: 'user', content: 'go' }] });
  return { before, after: ctx.budget.remaining };
});`);
  agent.send(startMessage({ goal: 'go' }));
  const call = await agent.expect('model');
  agent.send({
    type: 'budget_warning',
    used: { steps: 8, tool_calls: 0, tokens: 900, cost_usd: 0.25, runtime_ms: 1000 },
    limits: { steps: 10, tool_calls: 5, tokens: 1000, cost_usd: 1, runtime_ms: 60_000 },
  });
  agent.send(modelResult(call.id, 'ok'));

  const { output } = await agent.expect('result');
  assert.deepEqual(output, { before: 10, after: { steps: 2, tool_calls: 5, tokens: 100, cost_usd: 0.75, runtime_ms: 59_000 } });
});

test('after a budget_warning the SDK cost left is capped by the daily cost left, as the daemon computes it', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  await ctx.model({ messages: [{ role: 'user', content: 'go' }] });
  return ctx.budget.remaining;
});`);
  agent.send(startMessage({ goal: 'go' }));
  const call = await agent.expect('model');
  const warning = {
    type: 'budget_warning' as const,
    used: { steps: 8, tool_calls: 0, tokens: 900, cost_usd: 0.25, runtime_ms: 1000 },
    limits: { steps: 10, tool_calls: 5, tokens: 1000, cost_usd: 1, runtime_ms: 60_000 },
    // The agent spent 4.9 of its 5 USD today: 0.1 is left, not the task's 0.75.
    daily: { used_usd: 4.9, limit_usd: 5 },
  };
  agent.send(warning);
  agent.send(modelResult(call.id, 'ok'));
  const { output } = await agent.expect('result');
  const daemonSays = remaining(
    { steps: 10, toolCalls: 5, tokens: 1000, costUsd: 1, runtimeMs: 60_000, dailyCostUsd: 5 },
    { steps: 8, toolCalls: 0, tokens: 900, costUsd: 0.25, runtimeMs: 1000, dailyCostUsd: 4.9 },
  );
  assert.deepEqual(output, daemonSays);
  assert.ok(Math.abs((output as { cost_usd: number }).cost_usd - 0.1) < 1e-9);
  assert.deepEqual(budgetWarning({ steps: 10, toolCalls: 5, tokens: 1000, costUsd: 1, runtimeMs: 60_000, dailyCostUsd: 5 }, { steps: 8, toolCalls: 0, tokens: 900, costUsd: 0.25, runtimeMs: 1000, dailyCostUsd: 4.9 }), warning, 'the daemon sends the daily cap in the warning');
});

test('a stop rejects the pending call with code stopping, aborts the signal, sends the handler\'s handoff and exits 0', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  const pending = ctx.model({ messages: [{ role: 'user', content: 'long' }] });
  ctx.onStop(async (reason) => {
    const code = await pending.then(() => 'resolved', (err) => err.code);
    return { summary: 'stopped halfway', next_steps: ['finish the report'], state: { reason, code, aborted: ctx.signal.aborted, stopReason: ctx.stopReason } };
  });
  await pending;
  return 'should not be sent';
});`);
  agent.send(startMessage({ goal: 'long job' }));
  await agent.expect('model');
  agent.send({ type: 'stop', reason: 'max_runtime', grace_ms: 5000 });

  const handoff = await agent.expect('handoff');
  assert.deepEqual(handoff, {
    type: 'handoff',
    summary: 'stopped halfway',
    next_steps: ['finish the report'],
    state: { reason: 'max_runtime', code: 'stopping', aborted: true, stopReason: 'max_runtime' },
  });
  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(unread, [], 'no result after a stop');
});

test('without a stop handler the handoff says "stopped: <reason>" and carries the last checkpointed state', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  await ctx.checkpoint({ page: 3 }, { seen: ['a'] });
  await ctx.model({ messages: [{ role: 'user', content: 'next page' }] });
  return 'unreachable';
});`);
  agent.send(startMessage({ goal: 'read pages' }));
  assert.deepEqual(await agent.expect('checkpoint'), { type: 'checkpoint', state: { page: 3 }, context: { seen: ['a'] } });
  await agent.expect('model');
  agent.send({ type: 'stop', reason: 'shutdown', grace_ms: 5000 });

  assert.deepEqual(await agent.expect('handoff'), { type: 'handoff', summary: 'stopped: shutdown', state: { page: 3 } });
  assert.deepEqual((await agent.end()).exit, { code: 0, signal: null });
});

test('an uncaught budget_exhausted error waits for the stop and hands off instead of crashing', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  await ctx.checkpoint({ done: 4 });
  await ctx.model({ messages: [{ role: 'user', content: 'one more' }] });
  return 'unreachable';
});`);
  agent.send(startMessage({ goal: 'spend' }));
  await agent.expect('checkpoint');
  const call = await agent.expect('model');
  agent.send({ type: 'error', id: call.id, code: 'budget_exhausted', message: 'budget exhausted: max_steps' });
  agent.send({ type: 'stop', reason: 'max_steps', grace_ms: 5000 });

  assert.deepEqual(await agent.expect('handoff'), { type: 'handoff', summary: 'stopped: max_steps', state: { done: 4 } });
  assert.deepEqual((await agent.end()).exit, { code: 0, signal: null });
});

test('when stdin closes the agent exits at once, even with a call pending and a timer keeping it alive', TIMEOUT, async () => {
  const agent = await spawnInline(`
setInterval(() => undefined, 60_000);
runAgent(async (ctx) => {
  await ctx.model({ messages: [{ role: 'user', content: 'never answered' }] });
  return 'unreachable';
});`);
  agent.send(startMessage({ goal: 'wait' }));
  await agent.expect('model');
  agent.closeStdin();

  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(unread, []);
});

test('console.log and process.stdout.write in agent code go to stderr, so stdout carries only protocol lines', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async (ctx) => {
  console.log('hello from user code', { goal: ctx.task.goal });
  console.info('info line');
  process.stdout.write('raw write\\n');
  ctx.log('warn', 'a protocol log line');
  return { ok: true };
});`);
  agent.send(startMessage({ goal: 'print' }));

  assert.deepEqual(await agent.expect('log'), { type: 'log', level: 'warn', msg: 'a protocol log line' });
  assert.deepEqual((await agent.expect('result')).output, { ok: true });
  assert.equal((await agent.end()).exit.code, 0);
  assert.deepEqual(agent.noise, []);
  assert.match(agent.stderr, /hello from user code/);
  assert.match(agent.stderr, /info line/);
  assert.match(agent.stderr, /raw write/);
});

test('an agent function that throws exits 1 with the error on stderr and sends no result', TIMEOUT, async () => {
  const agent = await spawnInline(`
runAgent(async () => {
  throw new Error('the invoice is unreadable');
});`);
  agent.send(startMessage({ goal: 'fail' }));

  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 1, signal: null });
  assert.deepEqual(unread, []);
  assert.match(agent.stderr, /agent failed: Error: the invoice is unreadable/);
});

test('an agent function that returns nothing sends a null output rather than an invalid result', TIMEOUT, async () => {
  const agent = await spawnInline(`runAgent(async () => {});`);
  agent.send(startMessage({ goal: 'nothing' }));
  assert.deepEqual(await agent.expect('result'), { type: 'result', output: null });
  assert.equal((await agent.end()).exit.code, 0);
});

test('the cautious agent escalates a refund without an amount and sends no result', TIMEOUT, async () => {
  const agent = FakeDaemon.node('agent.js', path.join(demo, 'agents/cautious'));
  const refund = JSON.parse(await readFile(path.join(demo, 'agents/cautious/inbox/refund-1.json'), 'utf8')) as Record<string, unknown>;
  agent.send(startMessage(refund));

  const escalation = await agent.expect('uncertain');
  assert.equal(escalation.reason, 'the refund request has no amount');
  assert.equal(escalation.question, 'How much (in USD) should be refunded for order 1042?');
  assert.deepEqual(escalation.blockers, ['input.amount is missing']);
  assert.deepEqual(escalation.state, { order_id: '1042', step: 'awaiting_amount' });
  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(unread, [], 'return ctx.uncertain(...) must not also send a result');
});

test('the cautious agent completes the refund with the amount a person answered', TIMEOUT, async () => {
  const agent = FakeDaemon.node('agent.js', path.join(demo, 'agents/cautious'));
  const refund = JSON.parse(await readFile(path.join(demo, 'agents/cautious/inbox/refund-1.json'), 'utf8')) as Record<string, unknown>;
  const answer: DeliveredResolution = {
    item_id: 'ob-1',
    kind: 'uncertain',
    reason: 'the refund request has no amount',
    decision: 'answer',
    answer: 'Refund $25.50, the full price',
    by: 'operator',
  };
  agent.send(startMessage(refund, [answer]));

  assert.deepEqual((await agent.expect('checkpoint')).state, { order_id: '1042', amount_usd: 25.5, step: 'approved' });
  const call = await agent.expect('model');
  assert.match(call.request.messages.at(-1)?.content ?? '', /25\.5 USD for order 1042/);
  agent.send(modelResult(call.id, 'Your refund of $25.50 is on its way.'));

  const result = await agent.expect('result');
  assert.deepEqual(result.output, { order_id: '1042', amount_usd: 25.5, status: 'approved', note: 'Your refund of $25.50 is on its way.' });
  assert.equal((await agent.end()).exit.code, 0);
});

test('the Python example agent speaks the protocol without any SDK', { ...TIMEOUT, skip: hasPython ? false : 'python3 is not installed' }, async () => {
  const agent = new FakeDaemon('python3', ['agent.py'], path.join(REPO_ROOT, 'examples/python-agent'));
  agent.send(startMessage({ goal: 'Say hello in Python' }));

  assert.deepEqual(await agent.expect('log'), { type: 'log', level: 'info', msg: 'working on: Say hello in Python' });
  const call = await agent.expect('model');
  assert.deepEqual(call.request.messages, [{ role: 'user', content: 'Say hello in Python' }]);
  agent.send({ type: 'budget_warning', used: { steps: 1, tool_calls: 0, tokens: 0, cost_usd: 0, runtime_ms: 0 }, limits: { steps: 1, tool_calls: 0, tokens: 1, cost_usd: 1, runtime_ms: 1 } });
  agent.send(modelResult(call.id, 'mock reply: Say hello in Python'));

  assert.deepEqual((await agent.expect('checkpoint')).state, { step: 'answered' });
  assert.deepEqual((await agent.expect('result')).output, { answer: 'mock reply: Say hello in Python' });
  const { exit, unread } = await agent.end();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(unread, []);
  assert.deepEqual(agent.noise, []);
  assert.match(agent.stderr, /starting task task-1/);
});

test('the Python example answers a stop with a handoff and exits 0', { ...TIMEOUT, skip: hasPython ? false : 'python3 is not installed' }, async () => {
  const agent = new FakeDaemon('python3', ['agent.py'], path.join(REPO_ROOT, 'examples/python-agent'));
  agent.send(startMessage({ goal: 'Say hello in Python' }));
  await agent.expect('log');
  await agent.expect('model');
  agent.send({ type: 'stop', reason: 'max_steps', grace_ms: 5000 });

  assert.deepEqual(await agent.expect('handoff'), { type: 'handoff', summary: 'stopped: max_steps', next_steps: ['ask the model again'] });
  assert.deepEqual((await agent.end()).exit, { code: 0, signal: null });
});
