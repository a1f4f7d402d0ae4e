import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../src/errors.js';
import { parseByteSize, parseFileCount, RotatingLogFile } from '../src/observe/log-file.js';
import { TestHome } from './helpers/home.js';
import { FAST_CONFIG } from './helpers/support.js';

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-logs-'));
  try {
    await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const line = (n: number) => JSON.stringify({ n, msg: 'x'.repeat(80) }) + '\n';

describe('the rotating log file', () => {
  it('rotates by size into PATH.1 ... PATH.N, keeps N, and never splits a line', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'agentd.log');
      const log = new RotatingLogFile({ path: file, maxBytes: 1024, files: 2 });
      for (let n = 0; n < 40; n++) log.write(line(n));
      log.close();
      assert.deepEqual((await fs.readdir(dir)).sort(), ['agentd.log', 'agentd.log.1', 'agentd.log.2']);
      const kept: number[] = [];
      for (const name of ['agentd.log.2', 'agentd.log.1', 'agentd.log']) {
        const text = await fs.readFile(path.join(dir, name), 'utf8');
        assert.ok(Buffer.byteLength(text) <= 1024, `${name} is within the size`);
        kept.push(...text.trimEnd().split('\n').map((l) => (JSON.parse(l) as { n: number }).n));
      }
      assert.equal(kept.at(-1), 39, 'the newest line is in PATH');
      assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 40 - kept.length + i), 'the files hold the newest lines, in order, none missing');
    }));

  it('appends to an existing file and counts what it already holds', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'agentd.log');
      await fs.writeFile(file, 'y'.repeat(1000) + '\n');
      const log = new RotatingLogFile({ path: file, maxBytes: 1024, files: 1 });
      log.write(line(1));
      log.close();
      assert.equal((await fs.readFile(path.join(dir, 'agentd.log.1'), 'utf8')).length, 1001, 'the old content rotated whole');
      assert.equal(await fs.readFile(file, 'utf8'), line(1));
    }));

  it('reads sizes and counts as a person writes them, and refuses the rest', () => {
    assert.equal(parseByteSize('10MB'), 10 * 1024 * 1024);
    assert.equal(parseByteSize('512kb'), 512 * 1024);
    assert.equal(parseByteSize('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(parseByteSize('65536'), 65536);
    assert.throws(() => parseByteSize('ten'), (err) => err instanceof UsageError && err.message === '--log-max-size "ten" is not a size like 10MB, 512KB or 1048576');
    assert.throws(() => parseByteSize('100B'), (err) => err instanceof UsageError && /below the minimum of 1KB/.test(err.message));
    assert.equal(parseFileCount('5'), 5);
    assert.throws(() => parseFileCount('0'), (err) => err instanceof UsageError && err.message === '--log-files "0" is not a whole number of at least 1');
  });
});

describe('agentd start --log-file', () => {
  it('writes JSON logs to the file as well as stdout, rotated at --log-max-size, keeping --log-files', async () => {
    const home = await TestHome.create(FAST_CONFIG);
    try {
      await home.scriptedAgent('a');
      const chatter = Array.from({ length: 20 }, (_, i) => ({ log: `line ${i} ${'x'.repeat(100)}` })); // about 5 KB of log lines
      await home.inbox('a', 't1', { goal: 'x', input: { script: [...chatter, { result: 'ok' }] } });
      const file = home.path('logs', 'agentd.log');
      const daemon = home.startDaemon({}, ['--log-file', file, '--log-max-size', '1KB', '--log-files', '2']);
      try {
        await daemon.runEnded('a');
      } finally {
        await daemon.stop();
      }
      assert.ok(daemon.logs.some((l) => l.msg === 'daemon started'), 'stdout still has the logs');
      const names = (await home.list('logs')).sort();
      assert.deepEqual(names, ['agentd.log', 'agentd.log.1', 'agentd.log.2'], `rotated, two kept: ${names.join(', ')}`);
      const lines = [];
      for (const name of names) {
        const text = await fs.readFile(home.path('logs', name), 'utf8');
        lines.push(...text.trimEnd().split('\n').map((l) => JSON.parse(l) as { msg: string }));
      }
      assert.ok(lines.some((l) => l.msg === 'daemon stopped'), 'the last line reached the file');
      assert.ok(lines.some((l) => l.msg === 'run ended'));
    } finally {
      await home.remove();
    }
  });

  it('a bad --log-max-size is bad usage (exit 2)', async () => {
    const home = await TestHome.create();
    try {
      const result = await home.cli(['start', '--log-file', home.path('x.log'), '--log-max-size', 'ten']);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--log-max-size "ten" is not a size/);
    } finally {
      await home.remove();
    }
  });
});
