import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BUILTIN_DEFAULTS } from '../src/config/daemon-config.js';
import type { TaskCheckpoint } from '../src/store/checkpoint.js';
import { REPO_ROOT, TestHome, type CliResult } from './helpers/home.js';
import { FAST_CONFIG, readJsonOrNull, untilInFolder } from './helpers/support.js';

const ECOSYSTEM = path.join(REPO_ROOT, 'deploy', 'ecosystem.config.cjs');
const UNIT = path.join(REPO_ROOT, 'deploy', 'agentd.service');
const PM2 = path.join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
/** What the daemon needs after a stop signal: the agents' grace, then 2 s to SIGKILL what is left. */
const STOP_NEEDS_MS = BUILTIN_DEFAULTS.stopGraceMs + 2000;

interface EcosystemApp {
  name: string;
  kill_timeout: number;
}

/** systemd time spans as the unit uses them: `30s`, `1min 30s`, `500ms`, or bare seconds. */
function systemdSpanMs(span: string): number {
  if (/^\d+$/.test(span)) return Number(span) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const match = /^(\d+)(ms|s|sec|min|m|h)$/.exec(part);
    if (!match) throw new Error(`not a time span: ${span}`);
    total += Number(match[1]) * units[match[2]!]!;
  }
  return total;
}

function loadEcosystem(env: NodeJS.ProcessEnv = {}): EcosystemApp[] {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const require = createRequire(import.meta.url);
    delete require.cache[ECOSYSTEM];
    return (require(ECOSYSTEM) as { apps: EcosystemApp[] }).apps;
  } finally {
    for (const key of Object.keys(env)) if (saved[key] === undefined) delete process.env[key];
  }
}

describe('deployment files', () => {
  it('pm2 kill_timeout and the unit TimeoutStopSec both exceed the default stop_grace plus 2 s', async () => {
    const [app] = loadEcosystem();
    assert.ok(app!.kill_timeout > STOP_NEEDS_MS, `kill_timeout ${app!.kill_timeout} ms must exceed ${STOP_NEEDS_MS} ms`);
    const unit = await fs.readFile(UNIT, 'utf8');
    const timeout = /^TimeoutStopSec=(.+)$/m.exec(unit)?.[1];
    assert.ok(timeout, 'the unit sets TimeoutStopSec');
    assert.ok(systemdSpanMs(timeout) > STOP_NEEDS_MS, `TimeoutStopSec ${timeout} must exceed ${STOP_NEEDS_MS} ms`);
    assert.match(unit, /^KillMode=mixed$/m);
  });
});

/** The real pm2 from node_modules, on its own PM2_HOME. */
function pm2(pm2Home: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PM2, ...args], { cwd: REPO_ROOT, env: { ...process.env, PM2_HOME: pm2Home, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number };
}

async function jlist(pm2Home: string): Promise<Pm2Process[]> {
  const result = await pm2(pm2Home, ['jlist']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.slice(result.stdout.indexOf('['))) as Pm2Process[];
}

describe('agentd under pm2', () => {
  it('after kill -9 of the daemon, pm2 restarts it and the task in flight resumes from its checkpoint and finishes', { timeout: 90_000 }, async () => {
    const home = await TestHome.create(FAST_CONFIG);
    const pm2Home = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-pm2-'));
    try {
      await home.scriptedAgent('worker');
      await home.inbox('worker', 'long', {
        goal: 'checkpoint, then work for a long time',
        input: { script: [{ checkpoint: { step: 1 } }, { sleep: 600_000 }], after_checkpoint: [{ result: 'resumed' }] },
      });
      const started = await pm2(pm2Home, ['start', ECOSYSTEM], { AGENTD_HOME: home.root });
      assert.equal(started.code, 0, `pm2 start failed: ${started.stdout}\n${started.stderr}`);

      const checkpointFile = home.path('state', 'worker', 'checkpoint.json');
      const checkpoint = await untilInFolder(
        path.dirname(checkpointFile),
        () => readJsonOrNull<TaskCheckpoint>(checkpointFile),
        (c) => c !== null && c.checkpoint_at !== null && c.active_run?.pid !== null,
        'the agent to checkpoint',
        30_000,
      );
      const [before] = await jlist(pm2Home);
      assert.equal(before?.name, 'agentd');
      assert.equal(before?.pid, checkpoint!.active_run!.daemon_pid, 'pm2 runs the daemon that runs the task');
      process.kill(before!.pid, 'SIGKILL');

      // history.jsonl gets its line after done/<id>.json is written: waiting for it waits for both.
      const history = await untilInFolder(
        home.path('state', 'worker'),
        () => home.readLines<{ status: string; trigger: string }>('state/worker/history.jsonl'),
        (lines) => lines.length >= 2,
        'the resumed run to finish',
        45_000,
      );
      assert.deepEqual(history.map((h) => [h.status, h.trigger]), [['interrupted', 'inbox'], ['done', 'resume']]);
      const done = await home.readJson<{ status: string; output: unknown }>('state/worker/done/long.json');
      assert.equal(done.status, 'done');
      assert.equal(done.output, 'resumed');
      const [after] = await jlist(pm2Home);
      assert.equal(after?.pm2_env.status, 'online');
      assert.ok(after!.pm2_env.restart_time >= 1, 'pm2 restarted it');
      assert.notEqual(after?.pid, before?.pid);

      // A stop is clean: the daemon exits on pm2's SIGINT (pm2's IPC channel does not hold it), no SIGKILL needed.
      const stopped = await pm2(pm2Home, ['stop', 'agentd']);
      assert.equal(stopped.code, 0, stopped.stderr);
      const pm2Log = await fs.readFile(path.join(pm2Home, 'pm2.log'), 'utf8');
      assert.doesNotMatch(pm2Log, /sending SIGKILL/);
      assert.match(pm2Log, /App \[agentd:0\] exited with code \[0\] via signal \[SIGINT\]/);
    } finally {
      const killed = await pm2(pm2Home, ['kill']);
      assert.equal(killed.code, 0, killed.stderr);
      await fs.rm(pm2Home, { recursive: true, force: true });
      await home.remove();
    }
  });
});
