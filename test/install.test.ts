import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DoneRecord } from '../src/store/done-records.js';
import { REPO_ROOT } from './helpers/home.js';

/**
 * The install path of README "Install", as a new user takes it: `npm pack`,
 * `npm install -g` of the tarball into a fresh prefix, `agentd init` in an
 * empty folder, and tasks run to done by a Node agent importing agentd/sdk and
 * a Python agent doing `import agentd`. Needs npm's cache or the registry for
 * the dependencies (CI has run `npm ci` first, so --prefer-offline finds them).
 */

const hasPython = spawnSync('python3', ['--version']).status === 0;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: stderr + String(err) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const PYTHON_AGENT = `import agentd

def work(ctx):
    reply = ctx.model({"messages": [{"role": "user", "content": ctx.task["goal"]}]})
    ctx.checkpoint({"answered": True})
    return {"answer": reply["content"], "module": agentd.__file__}

agentd.run_agent(work)
`;

describe('installing from a packed tarball', () => {
  it('npm pack, npm install -g into a fresh prefix, agentd init in an empty folder: a Node agent (agentd/sdk) and a Python agent (import agentd) run to done', { timeout: 600_000 }, async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-install-'));
    try {
      const packed = await run(NPM, ['pack', '--json', '--pack-destination', tmp], REPO_ROOT);
      assert.equal(packed.code, 0, packed.stderr);
      const [info] = JSON.parse(packed.stdout) as { name: string; filename: string; files: { path: string }[] }[];
      assert.equal(info!.name, 'agentd-supervisor');
      const shipped = info!.files.map((f) => f.path);
      for (const needed of ['dist/src/cli/main.js', 'dist/src/sdk/index.js', 'python/agentd.py', 'README.md']) assert.ok(shipped.includes(needed), `the tarball holds ${needed}`);
      assert.ok(!shipped.some((p) => p.startsWith('dist/test/')), 'the tests stay out of the tarball');

      const prefix = path.join(tmp, 'prefix');
      const installed = await run(NPM, ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, info!.filename)], tmp);
      assert.equal(installed.code, 0, installed.stderr);
      const agentd = path.join(prefix, 'bin', 'agentd');
      const packageRoot = path.join(prefix, 'lib', 'node_modules', 'agentd-supervisor');

      const home = path.join(tmp, 'my home');
      await fs.mkdir(home);
      // A PATH with the prefix's bin first: `agentd` is the installed one, as after a real `npm install -g`.
      const env = { PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`, AGENTD_HOME: '' };
      const init = await run('agentd', ['init'], home, env);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /^created an agentd home in /);
      assert.equal(await fs.realpath(path.join(home, 'node_modules', 'agentd')), await fs.realpath(packageRoot), 'agentd/sdk resolves to the installed package');
      assert.match(await fs.readFile(path.join(home, 'agents', 'example', 'agent.js'), 'utf8'), /from 'agentd\/sdk'/);

      const validated = await run(agentd, ['validate'], home, env);
      assert.equal(validated.code, 0, validated.stdout + validated.stderr);
      const node = await run(agentd, ['run', 'example'], home, env);
      assert.equal(node.code, 0, node.stdout + node.stderr);
      const hello = JSON.parse(await fs.readFile(path.join(home, 'state', 'example', 'done', 'hello.json'), 'utf8')) as DoneRecord;
      assert.equal(hello.status, 'done');
      assert.deepEqual(hello.output, { answer: 'mock reply: Say hello to the person on call' });

      if (!hasPython) return;
      await fs.mkdir(path.join(home, 'agents', 'py', 'inbox'), { recursive: true });
      await fs.writeFile(path.join(home, 'agents', 'py', 'agent.py'), PYTHON_AGENT);
      await fs.writeFile(path.join(home, 'agents', 'py', 'agent.yaml'), 'version: "1"\ncommand: ["python3", "agent.py"]\nmodel: mock/echo\nenv: [PATH]\n');
      await fs.writeFile(path.join(home, 'agents', 'py', 'inbox', 'p1.json'), JSON.stringify({ id: 'p1', goal: 'Say hi from Python' }));
      const py = await run(agentd, ['run', 'py'], home, env);
      assert.equal(py.code, 0, py.stdout + py.stderr);
      const done = JSON.parse(await fs.readFile(path.join(home, 'state', 'py', 'done', 'p1.json'), 'utf8')) as DoneRecord;
      assert.deepEqual(done.output, { answer: 'mock reply: Say hi from Python', module: path.join(packageRoot, 'python', 'agentd.py') });
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
