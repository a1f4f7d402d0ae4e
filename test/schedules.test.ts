import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { AgentDefinition, ScheduleEntry } from '../src/config/types.js';
import { cronProblem, fireTimes } from '../src/daemon/cron-times.js';
import { decideFire, missedFires, scheduledTask, scheduleTaskId, type TaskPlace } from '../src/daemon/schedule-rules.js';
import { nodeCronTimer, type CronTimer, type ScheduleStore } from '../src/daemon/schedule-ports.js';
import { Schedules } from '../src/daemon/schedules.js';
import type { ScheduleState } from '../src/store/schedule-state.js';
import type { Task } from '../src/store/tasks.js';
import { REPO_ROOT, TestHome, type LogLine } from './helpers/home.js';
import { FAST_CONFIG } from './helpers/support.js';

const local = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => new Date(y, mo - 1, d, h, mi, s);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('cron fire times', () => {
  it('lists the fire times between two instants, after the first and up to the second', () => {
    // Friday 2026-11-20 10:00 to Tuesday 2026-11-24 09:00: Monday and Tuesday 09:00.
    assert.deepEqual(iso(fireTimes('0 9 * * 1-5', local(2026, 11, 20, 10), local(2026, 11, 24, 9))), iso([local(2026, 11, 23, 9), local(2026, 11, 24, 9)]));
    assert.deepEqual(fireTimes('0 9 * * *', local(2026, 11, 20, 9), local(2026, 11, 20, 10)), [], 'the start is exclusive');
  });

  it('knows seconds, last days of the month and nth weekdays, as node-cron does', () => {
    assert.equal(fireTimes('*/10 * * * * *', local(2026, 1, 1), local(2026, 1, 1, 0, 1)).length, 6);
    assert.deepEqual(
      fireTimes('0 0 L * *', local(2026, 1, 1), local(2026, 4, 1)).map((d) => d.getDate()),
      [31, 28, 31],
    );
    assert.deepEqual(iso(fireTimes('0 12 * * 5#2', local(2026, 1, 1), local(2026, 3, 1))), iso([local(2026, 1, 9, 12), local(2026, 2, 13, 12)]));
  });

  it('stops at the limit, so years of a busy cron cost no more than the limit', () => {
    const times = fireTimes('* * * * *', local(2020, 1, 1), local(2026, 1, 1), 50);
    assert.equal(times.length, 50);
    assert.deepEqual(times[49], local(2020, 1, 1, 0, 50));
  });

  it('names what is wrong with a bad expression', () => {
    assert.equal(cronProblem('0 9 * * 1-5'), null);
    assert.equal(cronProblem('61 * * * *'), '61 is a invalid expression for minute');
    assert.match(cronProblem('every day') ?? '', /expected 5 or 6 fields/);
  });
});

describe('schedule decisions', () => {
  it('a task id is the entry index and the due minute in UTC, seconds only when there are some', () => {
    assert.equal(scheduleTaskId(0, new Date('2026-11-22T09:00:00Z')), 'cron-0-202611220900');
    assert.equal(scheduleTaskId(3, new Date('2026-11-22T09:00:30Z')), 'cron-3-20261122090030');
  });

  it('a scheduled task is the template with a fixed id, created_at at the due time and cron metadata', () => {
    const entry: ScheduleEntry = { cron: '0 9 * * *', task: { goal: 'digest', priority: 2, metadata: { team: 'ops' } } };
    const task = scheduledTask(entry, 1, new Date('2026-11-22T09:00:00Z'));
    assert.deepEqual(task, {
      id: 'cron-1-202611220900',
      created_at: '2026-11-22T09:00:00.000Z',
      goal: 'digest',
      priority: 2,
      metadata: { team: 'ops', trigger: 'cron', schedule: '0 9 * * *', due: '2026-11-22T09:00:00.000Z' },
    });
  });

  it('writes a due time once, skips it while the same entry has a task pending, and ignores other entries', () => {
    const due = new Date('2026-11-22T09:00:00Z');
    assert.deepEqual(decideFire(0, due, 'done', []), { kind: 'exists', taskId: 'cron-0-202611220900', where: 'done' });
    assert.deepEqual(decideFire(0, due, null, ['manual-1', 'cron-0-202611210900']), { kind: 'pending', taskId: 'cron-0-202611220900', pendingId: 'cron-0-202611210900' });
    assert.deepEqual(decideFire(0, due, null, ['cron-0-202611210900-r1a2b3c4d']).kind, 'pending', 'a requeued copy is still pending');
    assert.deepEqual(decideFire(1, due, null, ['cron-0-202611210900', 'cron-10-202611210900']), { kind: 'write', taskId: 'cron-1-202611220900' });
  });

  it('counts the fire times missed since schedule.json last accounted for them (fixture)', async () => {
    const state = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'v1', 'schedule-state.json'), 'utf8')) as ScheduleState;
    const [quarterly, weekdays] = state.schedules;
    const missed = missedFires(quarterly, '*/15 * * * *', new Date('2026-11-22T10:07:00Z'));
    assert.deepEqual(iso(missed!.times), ['2026-11-22T09:15:00.000Z', '2026-11-22T09:30:00.000Z', '2026-11-22T09:45:00.000Z', '2026-11-22T10:00:00.000Z']);
    assert.equal(missed!.capped, false);
    assert.equal(missedFires(quarterly, '*/5 * * * *', new Date('2026-11-22T10:07:00Z')), null, 'a changed cron reports nothing');
    assert.equal(missedFires(undefined, '*/15 * * * *', new Date('2026-11-22T10:07:00Z')), null, 'a new entry reports nothing');
    assert.equal(weekdays?.missed?.count, 3);
    const capped = missedFires(quarterly, '*/15 * * * *', new Date('2027-11-22T10:07:00Z'), 10);
    assert.equal(capped!.times.length, 10);
    assert.equal(capped!.capped, true);
  });
});

/** Files as a map; `where` says where each task id is. Fails loudly on an agent it was not told about. */
class FakeStore implements ScheduleStore {
  readonly where = new Map<string, TaskPlace>();
  readonly written: Task[] = [];
  readonly outboxPending: string[] = [];
  state: ScheduleState | null = null;

  async locate(agent: string, id: string) {
    this.check(agent);
    return this.where.get(id) ?? null;
  }
  async pendingIds(agent: string) {
    this.check(agent);
    return [...[...this.where].filter(([, place]) => place === 'inbox' || place === 'current').map(([id]) => id), ...this.outboxPending];
  }
  async write(agent: string, task: Task) {
    this.check(agent);
    this.written.push(task);
    this.where.set(task.id, 'inbox');
  }
  async readState(agent: string) {
    this.check(agent);
    return this.state && structuredClone(this.state);
  }
  async writeState(agent: string, state: ScheduleState) {
    this.check(agent);
    this.state = structuredClone(state);
  }
  private check(agent: string) {
    if (agent !== 'digest') throw new Error(`unexpected agent ${agent}`);
  }
}

/** Jobs that fire when the test says so. */
class ManualTimer implements CronTimer {
  readonly jobs: { cron: string; name: string; onDue: (due: Date) => Promise<void>; stopped: boolean }[] = [];
  start(cron: string, name: string, onDue: (due: Date) => Promise<void>) {
    const job = { cron, name, onDue, stopped: false };
    this.jobs.push(job);
    return { stop: () => void (job.stopped = true) };
  }
  running() {
    return this.jobs.filter((j) => !j.stopped);
  }
}

/** Only the fields the schedules read; the rest of a definition does not matter here. */
function definition(schedule: ScheduleEntry[]): AgentDefinition {
  return { name: 'digest', schedule } as unknown as AgentDefinition;
}

function setup(nowIso = '2026-11-22T10:07:00Z') {
  const store = new FakeStore();
  const timer = new ManualTimer();
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const written: string[] = [];
  let now = Date.parse(nowIso);
  const schedules = new Schedules({ store, timer, now: () => now, log, onWritten: (agent) => written.push(agent) });
  return { store, timer, logs, written, schedules, setNow: (n: string) => (now = Date.parse(n)) };
}

const ENTRY: ScheduleEntry = { cron: '*/15 * * * *', task: { goal: 'send the digest' } };

describe('schedule jobs (manual timer, fake files, fixed clock)', () => {
  it('a due time writes one inbox task and records the fire; the same due time again writes nothing', async () => {
    const { store, timer, written, schedules } = setup();
    await schedules.sync([definition([ENTRY])]);
    assert.equal(timer.running().length, 1);
    const due = new Date('2026-11-22T10:15:00Z');
    assert.deepEqual(await schedules.fire('digest', 0, ENTRY, due), { kind: 'write', taskId: 'cron-0-202611221015' });
    assert.deepEqual(store.written.map((t) => [t.id, t.metadata?.trigger]), [['cron-0-202611221015', 'cron']]);
    assert.deepEqual(written, ['digest'], 'the agent is poked at once');
    assert.deepEqual(await schedules.fire('digest', 0, ENTRY, due), { kind: 'exists', taskId: 'cron-0-202611221015', where: 'inbox' });
    assert.equal(store.written.length, 1);
    assert.equal(store.state?.schedules[0]?.last_fired, '2026-11-22T10:15:00.000Z');
    assert.equal(store.state?.schedules[0]?.last_outcome, 'exists');
  });

  it('skips a fire while the previous task of the same entry is pending, and writes again once it is done', async () => {
    const { store, logs, schedules } = setup();
    await schedules.sync([definition([ENTRY])]);
    await timerFire(schedules, '2026-11-22T10:15:00Z');
    store.where.set('cron-0-202611221015', 'current');
    assert.equal((await timerFire(schedules, '2026-11-22T10:30:00Z'))?.kind, 'pending');
    assert.ok(logs.some((l) => l.msg === 'schedule fired; skipped while its previous task is pending' && l.pending_task_id === 'cron-0-202611221015'));
    store.where.set('cron-0-202611221015', 'done');
    store.outboxPending.push('cron-0-202611221015'); // an open outbox item still holds it
    assert.equal((await timerFire(schedules, '2026-11-22T10:45:00Z'))?.kind, 'pending');
    store.outboxPending.length = 0;
    assert.equal((await timerFire(schedules, '2026-11-22T11:00:00Z'))?.kind, 'write');
    assert.deepEqual(store.written.map((t) => t.id), ['cron-0-202611221015', 'cron-0-202611221100']);
    assert.equal(store.state?.schedules[0]?.last_outcome, 'written');
  });

  it('reports fire times missed while the daemon was down, with their count, and replays none', async () => {
    const { store, logs, schedules } = setup('2026-11-22T10:07:00Z');
    store.state = { v: 1, schedules: [{ index: 0, cron: ENTRY.cron, last_fired: '2026-11-22T09:00:00.000Z', last_task_id: 'cron-0-202611220900', last_outcome: 'written', accounted_until: '2026-11-22T09:00:00.000Z', missed: null }] };
    await schedules.sync([definition([ENTRY])]);
    const warning = logs.find((l) => l.msg === 'schedule missed fire times while the daemon was down; not replayed');
    assert.equal(warning?.missed, 4);
    assert.equal(warning?.first, '2026-11-22T09:15:00.000Z');
    assert.equal(store.written.length, 0, 'nothing is replayed');
    const record = store.state.schedules[0]!;
    assert.deepEqual(record.missed, { count: 4, capped: false, first: '2026-11-22T09:15:00.000Z', last: '2026-11-22T10:00:00.000Z', reported_at: '2026-11-22T10:07:00.000Z' });
    assert.equal(record.accounted_until, '2026-11-22T10:07:00.000Z', 'a second restart does not report them again');
    assert.equal(record.last_fired, '2026-11-22T09:00:00.000Z');
  });

  it('does not count as missed a fire whose task was written just before a crash', async () => {
    const { store, logs, schedules } = setup('2026-11-22T10:07:00Z');
    store.state = { v: 1, schedules: [{ index: 0, cron: ENTRY.cron, last_fired: '2026-11-22T09:00:00.000Z', last_task_id: null, last_outcome: 'written', accounted_until: '2026-11-22T09:00:00.000Z', missed: null }] };
    store.where.set('cron-0-202611220915', 'done');
    await schedules.sync([definition([ENTRY])]);
    assert.equal(logs.find((l) => l.msg === 'schedule missed fire times while the daemon was down; not replayed')?.missed, 3);
  });

  it('rebuilds jobs only when the schedule changes, and stops them when the agent goes or the daemon stops', async () => {
    const { timer, schedules } = setup();
    await schedules.sync([definition([ENTRY])]);
    await schedules.sync([definition([ENTRY])]);
    assert.equal(timer.jobs.length, 1, 'an unchanged schedule keeps its job');
    const hourly: ScheduleEntry = { cron: '0 * * * *', task: { goal: 'hourly' } };
    await schedules.sync([definition([ENTRY, hourly])]);
    assert.deepEqual(timer.running().map((j) => j.cron), ['*/15 * * * *', '0 * * * *']);
    assert.equal(timer.jobs[0]!.stopped, true, 'the old job is stopped');
    await schedules.sync([]);
    assert.deepEqual(timer.running(), []);
    await schedules.sync([definition([hourly])]);
    assert.equal(timer.running().length, 1);
    await schedules.stop();
    assert.deepEqual(timer.running(), []);
    assert.equal(await schedules.fire('digest', 0, hourly, new Date('2026-11-22T11:00:00Z')), null, 'a fire after stop does nothing');
  });

  /** Fires the only running job, as node-cron would at `due`. */
  async function timerFire(schedules: Schedules, due: string) {
    return schedules.fire('digest', 0, ENTRY, new Date(due));
  }
});

describe('node-cron jobs', () => {
  it('call back with the due time; fire times reached late after a stall are logged once and only the last is handled', async () => {
    const logs: LogLine[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
    const dues: Date[] = [];
    let onFirst!: () => void;
    const first = new Promise<void>((resolve) => (onFirst = resolve));
    let onLate!: () => void;
    const lateHandled = new Promise<void>((resolve) => (onLate = resolve));
    const job = nodeCronTimer(log).start('* * * * * *', 'test#0', async (due) => {
      dues.push(due);
      if (dues.length === 1) onFirst();
      if (logs.some((l) => l.msg === 'schedule fire times reached late; the last one is handled')) onLate();
    });
    try {
      await first;
      assert.equal(dues[0]!.getTime() % 1000, 0, 'the due time is the whole second, not when the callback ran');
      const before = dues.length;
      const until = Date.now() + 3500;
      while (Date.now() < until); // block the event loop, as a stall would, past node-cron's 1 s tolerance
      await lateHandled;
      const late = logs.filter((l) => l.msg === 'schedule fire times reached late; the last one is handled');
      assert.equal(late.length, 1, 'one line for the whole stall');
      assert.ok((late[0]!.late as number) >= 2);
      assert.ok(dues.length - before <= 2, `at most the late one and the regular one are handled, not ${dues.length - before}`);
    } finally {
      job.stop();
    }
  });
});

describe('schedules in the daemon', () => {
  it('a cron expression node-cron rejects makes the definition invalid, naming the field', async () => {
    const home = await TestHome.create();
    try {
      await home.scriptedAgent('bad', { schedule: [{ cron: '61 * * * *', task: { goal: 'x' } }, { cron: '0 * * * *', task: { priority: 1 } }] });
      const result = await home.cli(['validate']);
      assert.equal(result.code, 1);
      assert.match(result.stdout + result.stderr, /schedule\[0\]\.cron "61 \* \* \* \*": 61 is a invalid expression for minute/);
      assert.match(result.stdout + result.stderr, /schedule\[1\]\.task: goal is required/);
    } finally {
      await home.remove();
    }
  });

  it('a restart after a crash between writing a cron task and recording it runs that task once, reports the fires missed while down, and replays none', async () => {
    const home = await TestHome.create(FAST_CONFIG);
    try {
      // Hourly, at a minute half an hour away from now, so no fire comes due during the test.
      const entry: ScheduleEntry = { cron: `${(new Date().getMinutes() + 30) % 60} * * * *`, task: { goal: 'hourly', input: { script: [{ result: 'ok' }] } } };
      await home.scriptedAgent('nightly', { schedule: [entry] });
      const [recordedDue, crashedDue] = fireTimes(entry.cron, new Date(Date.now() - 5 * 3_600_000), new Date()).slice(-4) as [Date, Date, Date, Date];
      const id = scheduleTaskId(0, crashedDue);
      // What a daemon left when it died after writing the task of a due time, before recording that fire; then it stayed down two more.
      await home.write(`agents/nightly/inbox/${id}.json`, scheduledTask(entry, 0, crashedDue));
      const recorded = { index: 0, cron: entry.cron, last_fired: recordedDue.toISOString(), last_task_id: scheduleTaskId(0, recordedDue), last_outcome: 'written', accounted_until: recordedDue.toISOString(), missed: null };
      await home.write('state/nightly/schedule.json', { v: 1, schedules: [recorded] });

      const daemon = home.startDaemon();
      try {
        const missed = await daemon.waitForLog((l) => l.msg === 'schedule missed fire times while the daemon was down; not replayed', 'the missed report');
        assert.equal(missed.missed, 2, 'the two fire times after the crash, not the one whose task is written');
        assert.equal((await daemon.runEnded('nightly')).outcome, 'done');
      } finally {
        await daemon.stop();
      }
      const history = await home.readLines<{ task_id: string; trigger: string }>('state/nightly/history.jsonl');
      assert.deepEqual(history.map((h) => [h.task_id, h.trigger]), [[id, 'cron']]);
      assert.deepEqual(await home.list('state/nightly/done'), [`${id}.json`], 'nothing replayed');
      assert.deepEqual(await home.list('agents/nightly/inbox'), []);
      const state = await home.readJson<ScheduleState>('state/nightly/schedule.json');
      assert.equal(state.schedules[0]?.missed?.count, 2);
      assert.ok(Date.parse(state.schedules[0]!.accounted_until) > crashedDue.getTime());
    } finally {
      await home.remove();
    }
  });

  it('a live fire whose task is already written (a restart, a second daemon) writes no duplicate; the next one writes and runs with trigger cron', async () => {
    const home = await TestHome.create(FAST_CONFIG);
    try {
      await home.scriptedAgent('tick');
      const daemon = home.startDaemon();
      try {
        await daemon.started();
        // Two fire times a few seconds ahead, as seconds of every minute.
        const first = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
        const second = new Date(first.getTime() + 1000);
        const entry: ScheduleEntry = { cron: `${first.getSeconds()},${second.getSeconds()} * * * * *`, task: { goal: 'tick', input: { script: [{ result: 'ok' }] } } };
        const firstId = scheduleTaskId(0, first);
        const secondId = scheduleTaskId(0, second);
        await home.write(`state/tick/done/${firstId}.json`, { v: 1, task: scheduledTask(entry, 0, first), status: 'done', output: 'before the restart', finished_at: new Date().toISOString(), runs: [] });
        await home.scriptedAgent('tick', { schedule: [entry] });
        daemon.child.kill('SIGHUP'); // reload now, rather than whenever the watcher sees the edit

        const exists = await daemon.waitForLog((l) => l.msg === 'schedule fired' && l.task_id === firstId, 'the first fire');
        assert.equal(exists.outcome, 'exists');
        assert.equal(exists.where, 'done');
        const wrote = await daemon.waitForLog((l) => l.msg === 'schedule fired' && l.task_id === secondId, 'the second fire');
        assert.equal(wrote.outcome, 'written');
        assert.equal((await daemon.runEnded('tick')).outcome, 'done');
      } finally {
        await daemon.stop();
      }
      const history = await home.readLines<{ task_id: string; trigger: string }>('state/tick/history.jsonl');
      assert.deepEqual(history.map((h) => h.trigger), ['cron']);
      const done = await home.readJson<{ task: Task }>(`state/tick/done/${history[0]!.task_id}.json`);
      assert.equal(done.task.metadata?.trigger, 'cron');
      assert.equal((await home.list('state/tick/done')).length, 2, 'the task written before is not run again');
      assert.deepEqual(await home.list('agents/tick/inbox'), []);
    } finally {
      await home.remove();
    }
  });
});
