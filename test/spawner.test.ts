import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AgentProcess, startProblem } from '../src/run/agent-process.js';
import { launch, spawnerPid, type Launched } from '../src/run/spawner.js';
import { isAlive, pidsWith } from './helpers/process.js';
import { untilTrue } from './helpers/byo.js';

// Agent processes are started by the spawner (run/spawner.ts, README.md "The spawner"), a process of its
// own, which hands their pipes back to the daemon. These run it for real: real processes, real pipes.

const SPAWNER_MODULE = fileURLToPath(new URL('../src/run/spawner.js', import.meta.url));

/** Echoes each stdin line as `echo:<line>`, then its environment's X and its parent's pid; exits 3 at stdin's end. */
const ECHO = `
process.stdin.setEncoding('utf8');
let rest = '';
process.stdin.on('data', (c) => { rest += c; let i; while ((i = rest.indexOf('\\n')) !== -1) { process.stdout.write('echo:' + rest.slice(0, i) + '\\n'); rest = rest.slice(i + 1); } });
process.stdin.on('end', () => { process.stdout.write('x:' + process.env.X + ' ppid:' + process.ppid + '\\n'); process.exitCode = 3; });
`;

/** Runs until its stdin ends. */
const UNTIL_EOF = `process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;

function lines(stream: NodeJS.ReadableStream): { all: string[]; ended: Promise<void> } {
  const all: string[] = [];
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    rest += chunk;
    for (let i = rest.indexOf('\n'); i !== -1; i = rest.indexOf('\n')) {
      all.push(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  });
  return { all, ended: new Promise((resolve) => stream.once('end', () => resolve())) };
}

function tmp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-spawner-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A stand-in daemon: `source`, an ES module, run in a forked process with an IPC channel; killed when the test ends. */
function standInDaemon(t: { after(fn: () => void): void }, cwd: string, source: string, options: { env?: NodeJS.ProcessEnv; detached?: boolean } = {}): ChildProcess {
  const script = path.join(cwd, 'daemon.mjs');
  fs.writeFileSync(script, source);
  const daemon = fork(script, [], { ...options, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => daemon.kill('SIGKILL'));
  return daemon;
}

/** The next message `child` sends. */
function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
}

/** The process group of a live process (/proc/<pid>/stat, field 5). */
function processGroup(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('the spawner', () => {
  it('starts a process with exactly its environment, in its own process group, and hands back its pipes and its exit code', async (t) => {
    const launched: Launched = await launch({ file: process.execPath, args: ['-e', ECHO], cwd: tmp(t), env: { X: 'from-request' } });
    const out = lines(launched.stdout);
    assert.equal(processGroup(launched.pid), launched.pid, 'the leader of a group of its own, so a kill of the group reaches all it starts');
    launched.stdin.write('a\nb\n');
    launched.stdin.end();
    assert.deepEqual(await launched.exit, { code: 3, signal: null });
    await out.ended;
    const spawner = spawnerPid();
    assert.ok(spawner !== null && spawner !== process.pid);
    assert.deepEqual(out.all, ['echo:a', 'echo:b', `x:from-request ppid:${spawner}`], 'started by the spawner, not by this process');
  });

  it('closes the stdin it handed over at the exit, as node does for its own children, even when a process the agent left holds the other end', async (t) => {
    const cwd = tmp(t);
    // The agent starts a process in a session of its own (out of its group's kill) that keeps its stdin, and exits.
    const agent = `const c = require('child_process').spawn('/bin/sleep', ['600'], { detached: true, stdio: ['inherit', 'ignore', 'ignore'] }); c.unref(); console.log(c.pid);`;
    const launched = await launch({ file: process.execPath, args: ['-e', agent], cwd, env: {} });
    const out = lines(launched.stdout);
    launched.stderr.resume();
    await launched.exit;
    await out.ended;
    t.after(() => process.kill(Number(out.all[0]), 'SIGKILL'));
    assert.ok(isAlive(Number(out.all[0])), 'the process it left runs on, holding the other end');
    assert.equal(launched.stdin.destroyed, true, 'the daemon keeps no descriptor of a run that ended');
  });

  it('refuses a command that is not there, and an agent process of it exits 127', async (t) => {
    const cwd = tmp(t);
    await assert.rejects(launch({ file: path.join(cwd, 'no-such-agent'), args: [], cwd, env: {} }), /ENOENT/);
    const agent = new AgentProcess({ command: [path.join(cwd, 'no-such-agent')], cwd, passEnv: [], agentdEnv: { AGENTD_AGENT: 'a' } }, pino({ level: 'silent' }), () => undefined);
    assert.deepEqual(await agent.exited, { code: 127, signal: null });
    assert.equal(await agent.started, null);
    assert.match(agent.startFailure() ?? '', /no-such-agent ENOENT \(no such file/);
    // Found but not executable: 126, as a shell says, and never spawned.
    fs.writeFileSync(path.join(cwd, 'agent.sh'), '#!/bin/sh\necho never\n', { mode: 0o644 });
    const noexec = new AgentProcess({ command: ['./agent.sh'], cwd, passEnv: [], agentdEnv: { AGENTD_AGENT: 'a' } }, pino({ level: 'silent' }), () => undefined);
    assert.deepEqual(await noexec.exited, { code: 126, signal: null });
    assert.match(noexec.startFailure() ?? '', /agent\.sh EACCES \(not executable/);
    // Under run_as the account's right to execute it is not the daemon's: only a file that is not there is refused early.
    assert.equal(startProblem('./agent.sh', path.join(cwd, 'agent.sh'), true), null);
    assert.equal(startProblem('./gone.sh', path.join(cwd, 'gone.sh'), true)?.exitCode, 127);
  });

  it('delivers messages sent before the process was started, in order', async (t) => {
    const got: string[] = [];
    const agent = new AgentProcess({ command: [process.execPath, '-e', ECHO], cwd: tmp(t), passEnv: [], agentdEnv: { AGENTD_AGENT: 'a' } }, pino({ level: 'silent' }), (line) => got.push(line));
    assert.equal(agent.pid, null, 'not started yet: the spawner answers later');
    for (const n of [1, 2, 3]) agent.send({ type: 'stop', reason: `r${n}` } as never);
    agent.closeStdin();
    assert.deepEqual(await agent.exited, { code: 3, signal: null });
    assert.deepEqual(
      got.slice(0, 3).map((l) => (JSON.parse(l.slice('echo:'.length)) as { reason: string }).reason),
      ['r1', 'r2', 'r3'],
    );
    assert.equal(typeof (await agent.started), 'number');
  });

  it('killed mid-run: the running process ends once its pipes close, and the next one is started by a new spawner', async (t) => {
    const cwd = tmp(t);
    const running = await launch({ file: process.execPath, args: ['-e', UNTIL_EOF], cwd, env: {} });
    const first = spawnerPid()!;
    process.kill(first, 'SIGKILL');
    await untilTrue(() => !isAlive(first), 'the spawner to be gone', 20_000);
    assert.ok(isAlive(running.pid), 'the process it started runs on');
    running.stdin.end();
    assert.deepEqual(await running.exit, { code: null, signal: null }, 'no status to report: its end is when its pipes close');
    const next = await launch({ file: process.execPath, args: ['-e', 'process.exit(5)'], cwd, env: {} });
    assert.deepEqual(await next.exit, { code: 5, signal: null });
    assert.notEqual(spawnerPid(), first);
  });

  it('holds no environment of its own, and exits when the daemon is killed', async (t) => {
    const cwd = tmp(t);
    // A stand-in daemon: it starts a long-running process through the spawner, says the pids, and waits to be killed.
    const daemon = standInDaemon(t, cwd, `import { launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
const l = await launch({ file: process.execPath, args: ['-e', ${JSON.stringify(UNTIL_EOF)}], cwd: ${JSON.stringify(cwd)}, env: {} });
process.send({ spawner: spawnerPid(), agent: l.pid });
setInterval(() => {}, 1000);`, { env: { ...process.env, SECRET_OF_THE_DAEMON: 'sk-should-not-travel' } });
    const pids = await nextMessage<{ spawner: number; agent: number }>(daemon);
    t.after(() => {
      try {
        process.kill(-pids.agent, 'SIGKILL');
      } catch {
        // gone
      }
    });
    const environ = fs.readFileSync(`/proc/${pids.spawner}/environ`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(environ.filter((v) => !v.startsWith('NODE_CHANNEL_')), [], 'forked with no variables but the IPC ones node sets');
    daemon.kill('SIGKILL');
    await untilTrue(() => !isAlive(pids.spawner), 'the spawner to exit after the daemon', 20_000);
    // The agent lost its stdin's other end with the daemon: it ends as it would have without a spawner.
    await untilTrue(() => !isAlive(pids.agent), 'the agent to see its stdin end', 20_000);
  });

  it('exits when the daemon is killed in the middle of handing pipes over, and the processes it started end', async (t) => {
    const cwd = tmp(t);
    const marker = `agentd-spawner-test-${process.pid}-${Date.now()}`;
    const daemon = standInDaemon(t, cwd, `import { launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
for (let i = 0; i < 16; i++) void launch({ file: process.execPath, args: ['-e', ${JSON.stringify(UNTIL_EOF)}, ${JSON.stringify(marker)}], cwd: ${JSON.stringify(cwd)}, env: {} });
process.send({ spawner: spawnerPid() });
// A daemon frozen from here on (the requests and this message are written already): it never takes a pipe, so the
// spawner's hand-over waits until the kill.
for (;;);`);
    const { spawner } = await nextMessage<{ spawner: number }>(daemon);
    // Killed once the first process exists: the spawner is then handing its pipes over, and waits for the daemon.
    await untilTrue(() => pidsWith(marker).length > 0, 'the first process to start', 20_000);
    daemon.kill('SIGKILL');
    await untilTrue(() => !isAlive(spawner), 'the spawner to exit after the daemon', 20_000);
    await untilTrue(() => pidsWith(marker).length === 0, 'every process it started to see its stdin end', 20_000);
  });

  it('exits when the daemon is killed right after forking it, before it ran', async (t) => {
    const cwd = tmp(t);
    const marker = `agentd-spawner-early-${process.pid}-${Date.now()}`;
    const daemon = standInDaemon(t, cwd, `import { launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
for (let i = 0; i < 4; i++) void launch({ file: process.execPath, args: ['-e', ${JSON.stringify(UNTIL_EOF)}, ${JSON.stringify(marker)}], cwd: ${JSON.stringify(cwd)}, env: {} });
process.send({ spawner: spawnerPid() }, () => process.kill(process.pid, 'SIGKILL')); // gone before the spawner has loaded`);
    const { spawner } = await nextMessage<{ spawner: number }>(daemon);
    await untilTrue(() => !isAlive(spawner), 'the spawner to exit after the daemon', 20_000);
    await untilTrue(() => pidsWith(marker).length === 0, 'every process it started to see its stdin end', 20_000);
  });

  it('hands over every pipe and exit of processes that write and exit at once, many started together', async (t) => {
    const cwd = tmp(t);
    const all = Array.from({ length: 16 }, (_, i) => i + 1);
    // sh: it writes and exits within a millisecond of its start, while the pipes of the others are still being handed over.
    const started = await Promise.all(all.map((n) => launch({ file: '/bin/sh', args: ['-c', `printf err-${n} >&2; printf out-${n}; exit ${n}`], cwd, env: {} })));
    const seen = await Promise.all(
      started.map(async (l) => {
        const read = (stream: NodeJS.ReadableStream) => {
          let text = '';
          stream.setEncoding('utf8');
          stream.on('data', (c: string) => (text += c));
          return new Promise<string>((resolve) => stream.once('end', () => resolve(text)));
        };
        const [out, err, exit] = await Promise.all([read(l.stdout), read(l.stderr), l.exit]);
        return `${out} ${err} ${exit.code}`;
      }),
    );
    assert.deepEqual(seen, all.map((n) => `out-${n} err-${n} ${n}`), 'nothing the spawner read, nothing lost with a process that ended before its pipes were handed over');
  });

  it('a daemon at its open-file limit, which cannot take the pipes: the launch fails and the process is killed, instead of waiting forever', { timeout: 60_000 }, async (t) => {
    const cwd = tmp(t);
    const marker = `agentd-spawner-emfile-${process.pid}-${Date.now()}`;
    const script = path.join(cwd, 'daemon.mjs');
    // A stand-in daemon with a low open-file limit: once the spawner runs, it takes every descriptor left, so the
    // pipes of the next process cannot reach it (node then drops each handle after three tries, telling no one).
    fs.writeFileSync(script, `import fs from 'node:fs';
import { launch } from ${JSON.stringify(SPAWNER_MODULE)};
const first = await launch({ file: process.execPath, args: ['-e', '0'], cwd: ${JSON.stringify(cwd)}, env: {} });
first.stdout.resume(); first.stderr.resume(); await first.exit;
const taken = [];
for (;;) { try { taken.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
// It runs until killed, whatever becomes of its pipes (as an agent that reads its task from a file may).
const outcome = await launch({ file: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)', ${JSON.stringify(marker)}], cwd: ${JSON.stringify(cwd)}, env: {} }).then(() => 'launched', (err) => err.name + ' ' + err.code);
for (const fd of taken) fs.closeSync(fd);
process.send({ outcome }, () => process.exit(0));`);
    const daemon = spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$1"', process.execPath, script], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    t.after(() => daemon.kill('SIGKILL'));
    t.after(() => pidsWith(marker).forEach((pid) => process.kill(pid, 'SIGKILL')));
    const said = await nextMessage<{ outcome: string }>(daemon);
    assert.equal(said.outcome, 'LaunchError no_pipe');
    await untilTrue(() => pidsWith(marker).length === 0, 'the process whose pipes did not come to be killed', 20_000);
  });

  it("is out of a terminal's reach: a Ctrl-C to the daemon's process group leaves it running", async (t) => {
    const cwd = tmp(t);
    const daemon = standInDaemon(t, cwd, `import { closed, launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
process.on('SIGINT', () => undefined); // the daemon decides what a Ctrl-C does
const parentOf = async () => { const l = await launch({ file: process.execPath, args: ['-e', 'console.log(process.ppid)'], cwd: ${JSON.stringify(cwd)}, env: {} }); let out = ''; l.stdout.setEncoding('utf8').on('data', (c) => (out += c)); await l.exit; await closed(l.stdout); return Number(out.trim()); };
const first = await parentOf();
process.send({ first, spawner: spawnerPid() });
process.on('message', async () => process.send({ second: await parentOf() }));`, { detached: true });
    const said = await nextMessage<{ first: number; spawner: number }>(daemon);
    assert.equal(said.first, said.spawner);
    process.kill(-daemon.pid!, 'SIGINT'); // what a terminal sends its foreground group
    const again = nextMessage<{ second: number }>(daemon);
    daemon.send('again');
    assert.equal((await again).second, said.spawner, 'the same spawner started the next process');
  });

  it('never answering (it could not start), it is given up: the processes are started by the daemon itself', async (t) => {
    const cwd = tmp(t);
    const daemon = standInDaemon(t, cwd, `import { closed, launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
const parentOf = async (l) => { let out = ''; l.stdout.setEncoding('utf8').on('data', (c) => (out += c)); await l.exit; await closed(l.stdout); return Number(out.trim()); };
const spec = { file: process.execPath, args: ['-e', 'console.log(process.ppid)'], cwd: ${JSON.stringify(cwd)}, env: {} };
const pending = launch(spec);
process.kill(spawnerPid(), 'SIGKILL'); // before it could answer anything
const first = await parentOf(await pending);
const second = await parentOf(await launch(spec));
// Exits once the message is written: without a 'message' listener the channel would not keep this process alive.
process.send({ first, second, self: process.pid, spawner: spawnerPid() }, () => process.exit(0));`);
    const said = await nextMessage<{ first: number; second: number; self: number; spawner: number | null }>(daemon);
    assert.deepEqual(said, { first: said.self, second: said.self, self: said.self, spawner: null });
  });

  it('with AGENTD_SPAWNER=off, the daemon starts the process itself', async (t) => {
    const cwd = tmp(t);
    const daemon = standInDaemon(t, cwd, `import { closed, launch, spawnerPid } from ${JSON.stringify(SPAWNER_MODULE)};
const l = await launch({ file: process.execPath, args: ['-e', 'console.log(process.ppid)'], cwd: ${JSON.stringify(cwd)}, env: {} });
let out = ''; l.stdout.setEncoding('utf8').on('data', (c) => (out += c));
await l.exit; await closed(l.stdout);
process.send({ parent: Number(out.trim()), self: process.pid, spawner: spawnerPid() }, () => process.exit(0));`, { env: { ...process.env, AGENTD_SPAWNER: 'off' } });
    const said = await nextMessage<{ parent: number; self: number; spawner: number | null }>(daemon);
    assert.deepEqual(said, { parent: said.self, self: said.self, spawner: null });
  });
});
