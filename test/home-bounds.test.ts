import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { loadDaemonConfig, resolveDaemonConfig } from '../src/config/daemon-config.js';
import { parseDocument } from '../src/config/document.js';
import type { DaemonConfig } from '../src/config/types.js';
import { BadNameError, ConfigError } from '../src/errors.js';
import { parseAgentLine } from '../src/protocol/messages.js';
import { jsonTextTooDeep, MAX_JSON_DEPTH, valueTooDeep } from '../src/security/json-depth.js';
import { dirModeFor, peopleFileMode, setDefaultFileMode, setPeopleFileMode, writeJsonAtomic } from '../src/store/durable.js';
import { escapesHome, readHomeFile, RAW_HEAD_BYTES } from '../src/store/home-file.js';
import { addOutboxItem } from '../src/store/outbox.js';
import { plainBelowHome } from '../src/store/plain-path.js';
import { readHomeFileSync } from '../src/store/home-file.js';
import { plainBelowHomeSync } from '../src/store/plain-path.js';
import { HomePaths } from '../src/store/paths.js';
import { shutGate, useInlineGate } from '../src/store/inline-calls.js';
import { parseTask } from '../src/store/tasks.js';
import { promoteNext } from '../src/store/promotion.js';
import { settleCurrentTask } from '../src/store/current-task.js';
import type { DeadLetterRecord } from '../src/store/dead-letters.js';
import { SCRIPTED_AGENT, TestHome } from './helpers/home.js';

/** Bad input never escapes the home: paths, symlinks, sizes, nesting, and the modes of what the daemon writes. */

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const NOW = new Date('2026-06-01T12:00:00Z');

describe('JSON nesting is capped without recursion', () => {
  it('the text scan finds depth past the cap and ignores brackets inside strings', () => {
    assert.equal(jsonTextTooDeep(nested(MAX_JSON_DEPTH)), false);
    assert.equal(jsonTextTooDeep(nested(MAX_JSON_DEPTH + 1)), true);
    assert.equal(jsonTextTooDeep(JSON.stringify({ s: '['.repeat(1000) + '\\"[' })), false);
    assert.equal(jsonTextTooDeep(nested(1_000_000)), true);
  });

  it('a parsed value is measured iteratively', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    assert.equal(valueTooDeep(deep), true);
    assert.equal(valueTooDeep({ a: [{ b: 1 }] }), false);
  });

  it('a task file nested 100 000 levels deep is refused with a clear problem, not a stack overflow', () => {
    const parsed = parseTask(Buffer.from(`{"goal":"x","input":${nested(100_000)}}`), () => 'id', NOW);
    assert.deepEqual(parsed, { ok: false, problems: ['is nested more than 64 levels deep (objects and arrays); refused'] });
  });

  it('a deeply nested definition (JSON or YAML) is a ConfigError naming the file', () => {
    assert.throws(() => parseDocument('agents/a/agent.json', `{"command":["x"],"x":${nested(10_000)}}`), (err: unknown) => err instanceof ConfigError && err.message === 'agents/a/agent.json: is nested more than 64 levels deep (objects and arrays); refused');
    assert.throws(() => parseDocument('agentd.yaml', `x: ${nested(200)}\n`), (err: unknown) => err instanceof ConfigError && /agentd\.yaml: is nested more than 64 levels deep/.test(err.message));
  });

  it('a protocol message nested too deeply is an invalid message answered with its id', () => {
    const line = `{"type":"tool","id":"7","name":"t","args":{"a":${nested(5000)}}}`;
    assert.deepEqual(parseAgentLine(line), { kind: 'invalid', reason: 'tool message is nested more than 64 levels deep (objects and arrays); refused', id: '7' });
  });
});

describe('paths a config names', () => {
  const paths = new HomePaths('/srv/home');
  it('a relative path inside the home is fine; ".." and absolute paths are refused', () => {
    assert.equal(paths.inside('/srv/home/agents/a', 'schemas/out.json'), '/srv/home/agents/a/schemas/out.json');
    for (const bad of ['../b/schema.json', 'schemas/../../x.json', '/etc/passwd', '/srv/home/agents/a/x.json', '..']) {
      assert.throws(() => paths.inside('/srv/home/agents/a', bad), (err: unknown) => err instanceof BadNameError && err.message === `path ${JSON.stringify(bad)} must be a relative path without ".." segments`);
    }
  });

  it('a mock script outside the home is a config error naming the field', () => {
    assert.throws(
      () => resolveDaemonConfig(paths, 'agentd.yaml', { providers: { m: { kind: 'mock', script: '../scripts/x.yaml' } } }),
      (err: unknown) => err instanceof ConfigError && err.problems[0] === 'providers.m.script "../scripts/x.yaml" must be a relative path inside the home, without ".."',
    );
  });
});

describe('files that lead out of the home, are too big or are not files', () => {
  let home: TestHome;
  let outside: string;
  let paths: HomePaths;
  let config: DaemonConfig;
  before(async () => {
    home = await TestHome.create();
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-outside-'));
    await fs.writeFile(path.join(outside, 'secret.json'), JSON.stringify({ goal: 'read me', input: 'outside data' }));
    await fs.writeFile(path.join(outside, 'agent.json'), JSON.stringify({ command: ['node', 'x.js'] }));
    await fs.writeFile(path.join(outside, 'schema.json'), JSON.stringify({ type: 'object' }));
    paths = new HomePaths(home.root);
    config = await loadDaemonConfig(paths);
  });
  after(async () => {
    await home.remove();
    await fs.rm(outside, { recursive: true, force: true });
  });

  it('readHomeFile refuses a symlink out of the home, allows one inside, and reads only the head of a big file', async () => {
    await home.write('data/inside.json', '{"a":1}');
    await fs.symlink(path.join(outside, 'secret.json'), home.path('data/out.json'));
    await fs.symlink(home.path('data/inside.json'), home.path('data/in.json'));
    await home.write('data/big.json', 'x'.repeat(100_000));
    const out = await readHomeFile(paths, home.path('data/out.json'), 1024 * 1024);
    assert.equal(out.kind, 'refused');
    assert.match(out.kind === 'refused' ? out.problem : '', /^is a symlink that resolves outside the home \(to .*secret\.json\); refused, not read$/);
    assert.equal((await readHomeFile(paths, home.path('data/in.json'), 1024)).kind, 'ok');
    const big = await readHomeFile(paths, home.path('data/big.json'), 10_000);
    assert.equal(big.kind, 'too_big');
    assert.equal(big.kind === 'too_big' && big.head.length, RAW_HEAD_BYTES);
    assert.equal(big.kind === 'too_big' && big.size, 100_000);
    assert.equal((await readHomeFile(paths, home.path('data/none.json'), 10)).kind, 'missing');
  });

  it('readHomeFile reads a small file whole, and a file at the cap exactly, with buffers sized from its stat', async () => {
    await home.write('data/small.json', '{"b":2}');
    const small = await readHomeFile(paths, home.path('data/small.json'), 1024);
    assert.equal(small.kind === 'ok' && small.bytes.toString('utf8'), '{"b":2}');
    await home.write('data/at-cap.json', 'y'.repeat(70_000));
    const atCap = await readHomeFile(paths, home.path('data/at-cap.json'), 70_000);
    assert.equal(atCap.kind === 'ok' && atCap.bytes.length, 70_000);
    assert.equal((await readHomeFile(paths, home.path('data/at-cap.json'), 69_999)).kind, 'too_big');
  });

  it('plainBelowHome: true only when no part below the home is a link (a missing part ends the walk)', async () => {
    await fs.mkdir(home.path('agents/plain/inbox'), { recursive: true });
    await fs.symlink(home.path('agents/plain'), home.path('agents/alias'));
    assert.equal(await plainBelowHome(paths, home.path('agents/plain/inbox')), true);
    assert.equal(await plainBelowHome(paths, home.path('agents/plain/inbox/not-yet/deeper')), true);
    assert.equal(await plainBelowHome(paths, home.path('agents/alias/inbox')), false); // a link inside the home: look closer
    assert.equal(await plainBelowHome(paths, path.join(outside, 'x')), false); // not under the home by name
    assert.equal(await plainBelowHome(paths, home.path('agents/plain/../../..')), false);
    assert.equal(await plainBelowHome(paths, home.root), true);
  });

  it('a FIFO is refused without blocking on it', async () => {
    execFileSync('mkfifo', [home.path('data/pipe.json')]);
    const read = await readHomeFile(paths, home.path('data/pipe.json'), 1024);
    assert.deepEqual(read, { kind: 'refused', problem: 'is not a regular file; refused' });
  });

  it('escapesHome follows the deepest part that exists', async () => {
    await fs.mkdir(home.path('agents'), { recursive: true });
    await fs.symlink(outside, home.path('agents/linked'));
    assert.match((await escapesHome(paths, home.path('agents/linked/inbox/not-yet'))) ?? '', /resolves outside the home/);
    assert.equal(await escapesHome(paths, home.path('agents/real/inbox/not-yet')), null);
  });

  it('an agent folder, a definition or an output_schema that is a symlink out of the home is refused with a clear error', async () => {
    await assert.rejects(loadAgentDefinition(paths, config, 'linked'), (err: unknown) => err instanceof ConfigError && err.file === 'agents/linked' && /resolves outside the home/.test(err.problems[0]!));

    await fs.mkdir(home.path('agents/deflink'), { recursive: true });
    await fs.symlink(path.join(outside, 'agent.json'), home.path('agents/deflink/agent.json'));
    await assert.rejects(loadAgentDefinition(paths, config, 'deflink'), (err: unknown) => err instanceof ConfigError && err.file === 'agents/deflink/agent.json' && /resolves outside the home/.test(err.problems[0]!));

    await home.write('agents/schemalink/agent.json', { command: ['node', SCRIPTED_AGENT], output_schema: 'out.json' });
    await fs.symlink(path.join(outside, 'schema.json'), home.path('agents/schemalink/out.json'));
    await assert.rejects(loadAgentDefinition(paths, config, 'schemalink'), (err: unknown) => err instanceof ConfigError && /^output_schema "out\.json" is a symlink that resolves outside the home/.test(err.problems[0]!));

    await home.write('agents/dotdot/agent.json', { command: ['node', SCRIPTED_AGENT], output_schema: '../schemalink/out.json' });
    await assert.rejects(loadAgentDefinition(paths, config, 'dotdot'), (err: unknown) => err instanceof ConfigError && err.problems[0] === 'output_schema "../schemalink/out.json" must be a relative path inside the home, without ".."');
  });

  it("the start-up load's sync reader (store/home-file.ts readHomeFileSync) answers exactly as the async one", async (t) => {
    const gate = useInlineGate(shutGate()); // readHomeFile and plainBelowHome through the thread pool (store/inline-calls.ts)
    t.after(() => useInlineGate(gate));
    await home.write('sync/inside.json', '{"a":1}');
    await fs.symlink(path.join(outside, 'secret.json'), home.path('sync/out.json'));
    await fs.symlink(home.path('sync/inside.json'), home.path('sync/in.json'));
    await home.write('sync/big.json', 'x'.repeat(100_000));
    await home.write('sync/at-cap.json', 'y'.repeat(70_000));
    execFileSync('mkfifo', [home.path('sync/pipe.json')]);
    for (const [name, max] of [['inside.json', 1024], ['out.json', 1024], ['in.json', 1024], ['big.json', 10_000], ['at-cap.json', 70_000], ['at-cap.json', 69_999], ['pipe.json', 1024], ['none.json', 10]] as const) {
      assert.deepEqual(readHomeFileSync(paths, home.path('sync', name), max), await readHomeFile(paths, home.path('sync', name), max), `${name} at ${max}`);
    }
    await fs.mkdir(home.path('agents/plain2/inbox'), { recursive: true });
    await fs.symlink(home.path('agents/plain2'), home.path('agents/alias2'));
    for (const p of [home.path('agents/plain2/inbox'), home.path('agents/plain2/inbox/not-yet/deeper'), home.path('agents/alias2/inbox'), path.join(outside, 'x'), home.path('agents/plain2/../../..'), home.root]) {
      assert.equal(plainBelowHomeSync(paths, p), await plainBelowHome(paths, p), p);
    }
    // Through loadAgentDefinition: a folder or a definition linked out of the home is refused with sync as without.
    await assert.rejects(loadAgentDefinition(paths, config, 'linked', { sync: true }), (err: unknown) => err instanceof ConfigError && err.file === 'agents/linked' && /resolves outside the home/.test(err.problems[0]!));
    await assert.rejects(loadAgentDefinition(paths, config, 'deflink', { sync: true }), (err: unknown) => err instanceof ConfigError && err.file === 'agents/deflink/agent.json' && /resolves outside the home/.test(err.problems[0]!));
    await fs.mkdir(home.path('agents/fifo'), { recursive: true });
    execFileSync('mkfifo', [home.path('agents/fifo/agent.yaml')]);
    await assert.rejects(loadAgentDefinition(paths, config, 'fifo', { sync: true }), (err: unknown) => err instanceof ConfigError && err.file === 'agents/fifo/agent.yaml' && err.problems[0] === 'is not a regular file; refused');
  });

  it('a definition larger than max_file_bytes is refused without being read', async () => {
    const small = resolveDaemonConfig(paths, 'agentd.yaml', { max_file_bytes: '2KB' });
    assert.equal(small.maxFileBytes, 2048);
    await home.write('agents/huge/agent.yaml', `command: ["node", "a.js"]\ndescription: "${'x'.repeat(5000)}"\n`);
    await assert.rejects(loadAgentDefinition(paths, small, 'huge'), (err: unknown) => err instanceof ConfigError && /^agents\/huge\/agent\.yaml: is \d+ bytes, over max_file_bytes \(2048\); refused without reading it$/.test(err.message));
  });

  it('an inbox file or current-task.json that links out of the home is dead-lettered; the link goes, its target stays', async () => {
    await fs.mkdir(home.path('agents/victim/inbox'), { recursive: true });
    await fs.symlink(path.join(outside, 'secret.json'), home.path('agents/victim/inbox/steal.json'));
    const promoted = await promoteNext(paths, 'victim', NOW);
    assert.deepEqual(promoted, { kind: 'dead_lettered', ids: ['steal'] });
    const record = JSON.parse(await fs.readFile(paths.deadLetter('victim', 'steal'), 'utf8')) as DeadLetterRecord;
    assert.match(record.error.message, /^inbox\/steal\.json is a symlink that resolves outside the home/);
    assert.equal(record.raw, undefined, 'nothing was read from outside');
    assert.equal(await home.exists('agents/victim/inbox/steal.json'), false);
    assert.ok(await fs.stat(path.join(outside, 'secret.json')), 'the target is untouched');

    await fs.symlink(path.join(outside, 'secret.json'), home.path('agents/victim/current-task.json'));
    const current = await settleCurrentTask(paths, 'victim', NOW);
    assert.equal(current.kind, 'dead_lettered');
    assert.match(current.kind === 'dead_lettered' ? current.problems[0]! : '', /^current-task\.json is a symlink that resolves outside the home/);
    assert.ok(await fs.stat(path.join(outside, 'secret.json')));
  });

  it('an inbox folder that links out of the home is refused as a whole: nothing in it is read, moved or removed', async () => {
    await fs.mkdir(home.path('agents/portal'), { recursive: true });
    await fs.mkdir(path.join(outside, 'inbox'));
    await fs.writeFile(path.join(outside, 'inbox', 't.json'), JSON.stringify({ goal: 'x' }));
    await fs.symlink(path.join(outside, 'inbox'), home.path('agents/portal/inbox'));
    const promoted = await promoteNext(paths, 'portal', NOW);
    assert.equal(promoted.kind, 'refused');
    assert.ok(await fs.stat(path.join(outside, 'inbox', 't.json')), 'the outside file was not removed');
  });

  it('an oversized inbox file is dead-lettered with its first few KB in raw', async () => {
    await home.write('agents/big/inbox/huge.json', JSON.stringify({ goal: 'x', input: 'y'.repeat(3 * 1024 * 1024) }));
    assert.deepEqual(await promoteNext(paths, 'big', NOW), { kind: 'dead_lettered', ids: ['huge'] });
    const record = JSON.parse(await fs.readFile(paths.deadLetter('big', 'huge'), 'utf8')) as DeadLetterRecord;
    assert.match(record.error.message, /^inbox\/huge\.json is 31457\d\d bytes, over max_file_bytes \(1048576\); refused without reading it$/);
    assert.equal(record.raw?.length, RAW_HEAD_BYTES);
    assert.ok(record.raw?.startsWith('{"goal":"x"'));
  });
});

describe('file modes', () => {
  it('file_mode is octal text; a mode others may write, or the owner may not, is refused', () => {
    const paths = new HomePaths('/srv/home');
    assert.deepEqual(resolveDaemonConfig(paths, null, {}).fileMode, { state: 0o640, outbox: 0o660 });
    assert.deepEqual(resolveDaemonConfig(paths, null, { file_mode: { state: '0600', outbox: '0o640' } }).fileMode, { state: 0o600, outbox: 0o640 });
    assert.throws(() => resolveDaemonConfig(paths, 'agentd.yaml', { file_mode: { outbox: '0666' } }), (err: unknown) => err instanceof ConfigError && /file_mode\.outbox "0666" lets every user write/.test(err.message));
    assert.throws(() => resolveDaemonConfig(paths, 'agentd.yaml', { file_mode: { state: 640 } }), (err: unknown) => err instanceof ConfigError && /file_mode\.state must be string/.test(err.message));
    assert.equal(dirModeFor(0o660), 0o770);
    assert.equal(dirModeFor(0o640), 0o750);
  });

  it('state files get file_mode.state; outbox.json gets file_mode.outbox and its folder is group-writable', async () => {
    const home = await TestHome.create();
    const paths = new HomePaths(home.root);
    const previousPeople = peopleFileMode();
    try {
      setDefaultFileMode(0o600);
      setPeopleFileMode(0o660);
      await writeJsonAtomic(paths.checkpoint('a'), { v: 1 });
      await addOutboxItem(paths, { id: 'a:00000001', kind: 'uncertain', agent: 'a', task_id: 't', run_id: null, created_at: NOW.toISOString(), reason: 'r', status: 'open' });
      const mode = async (rel: string) => (await fs.stat(home.path(rel))).mode & 0o777;
      assert.equal(await mode('state/a/checkpoint.json'), 0o600);
      assert.equal(await mode('outbox/a/outbox.json'), 0o660);
      assert.equal(await mode('outbox/a'), 0o770);
    } finally {
      setDefaultFileMode(0o640);
      setPeopleFileMode(previousPeople);
      await home.remove();
    }
  });
});
