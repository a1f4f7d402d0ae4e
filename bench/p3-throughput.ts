import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileDurable } from '../src/store/durable.js';
import { verdict, type FigureResult, type Sizes } from './figure.js';
import { BenchHome, DaemonChild, agentNames, bareRun, cpuMs, fmt, fmtSpread, nowMs, spread, type LogLine, type Spread } from './support.js';

/**
 * P3 — throughput of trivial tasks (the agent answers at once) with
 * max_parallel_runs = os.cpus().length, against the machine's limit for the
 * same work: min(spawn rate of the same agent command at the same
 * parallelism, durable-sync rate ÷ syncs per task). Goal ≥ 70%.
 *
 * Syncs per task are counted, not guessed: a separate pass runs the daemon
 * under `strace -f` (every file-name call, fsync and fdatasync, with paths) and
 * counts the calls on the home between 'daemon started' and the last 'run ended'. The
 * durable rate is src/store/durable.ts writeFileDurable itself (write-file-
 * atomic with fsync, then an fsync of the folder: 2 syncs) at the same
 * parallelism, so limit = 2 × writeFileDurable/s ÷ syncs per task.
 */
export async function throughput(sizes: Sizes): Promise<FigureResult> {
  const parallel = os.cpus().length;
  const scratch = await BenchHome.create({});
  let spawnRate: number;
  let durableRate: number;
  let spawnCpu: { self: number; children: number };
  try {
    const before = cpuMs('self');
    spawnRate = await withWorkers(parallel, sizes.p3SpawnSamples, () => bareRun(scratch.root));
    const after = cpuMs('self');
    spawnCpu = { self: (after.self - before.self) / sizes.p3SpawnSamples, children: (after.children - before.children) / sizes.p3SpawnSamples };
    const dirs = Array.from({ length: parallel }, (_, k) => scratch.path('durable', `w${k}`));
    const data = JSON.stringify({ v: 1, pad: 'x'.repeat(900) });
    let next = 0;
    durableRate = await withWorkers(parallel, sizes.p3DurableWrites, () => writeFileDurable(path.join(dirs[next++ % parallel]!, 'state.json'), data));
  } finally {
    await scratch.remove();
  }

  const perAgent = Math.max(1, Math.round(sizes.p3Tasks / sizes.p3Agents));
  const count = await countSyncs(parallel, Math.max(1, Math.round(sizes.p3CountTasks / perAgent)), perAgent);
  const timed = await timedRun(parallel, sizes.p3Agents, sizes.p3Tasks);

  const durableLimit = (2 * durableRate) / count.syncsPerTask;
  const limit = Math.min(spawnRate, durableLimit);
  const ratio = timed.rate / limit;
  const bound = spawnRate <= durableLimit ? 'spawn' : 'durable';
  return {
    rows: [
      {
        figure: `P3 throughput, trivial tasks (max_parallel_runs ${parallel})`,
        measured: `${fmt(timed.rate, 1)} tasks/s`,
        limit: `${fmt(limit, 1)} tasks/s (${bound}-bound)`,
        ratio: `${fmt(ratio * 100, 0)}%`,
        goal: '≥ 70%',
        verdict: verdict(ratio >= 0.7),
        values: { tasks_per_s: timed.rate, limit_per_s: limit, spawn_per_s: spawnRate, durable_writes_per_s: durableRate, syncs_per_task: count.syncsPerTask, durable_limit_per_s: durableLimit, ratio },
      },
    ],
    details: [
      `P3  ${sizes.p3Tasks} trivial tasks over ${sizes.p3Agents} agents (${perAgent} each, spare: ${String(process.env.P3_SPARE !== 'off')}), all in the inboxes before the start; ${timed.done}/${sizes.p3Tasks} done in ${fmt(timed.elapsedMs / 1000)} s after 'daemon started' → ${fmt(timed.rate, 1)} tasks/s.`,
      `    spawn of the agent command (${parallel} at a time, start message → first line → exit): ${fmt(spawnRate, 1)}/s`,
      `    run started → the agent's first line (the spawn on the task's path, or not: README "Warm agents"): ${timed.toFirst ? fmtSpread(timed.toFirst) : 'not measured'}`,
      `    CPU per task: daemon ${fmt(timed.cpu.self, 1)} ms + agent (and the spawner that starts it) ${fmt(timed.cpu.children, 1)} ms; per bare spawn: spawner ${fmt(spawnCpu.self, 1)} ms + agent ${fmt(spawnCpu.children, 1)} ms` +
        ` → CPU-bound rates on ${parallel} CPUs: daemon ${fmt((parallel * 1000) / (timed.cpu.self + timed.cpu.children), 1)}/s, bare ${fmt((parallel * 1000) / (spawnCpu.self + spawnCpu.children), 1)}/s`,
      `    writeFileDurable (${parallel} at a time, 1 KB): ${fmt(durableRate, 0)}/s = ${fmt(2 * durableRate, 0)} syncs/s`,
      `    syncs per task (strace pass, ${count.tasks} tasks): ${fmt(count.syncsPerTask, 2)} → durable limit ${fmt(durableLimit, 1)} tasks/s`,
      `    durable operations per task: ${count.ops}`,
      `    claims per task (lock of state/<agent> taken): ${fmt(count.claimsPerTask, 2)}; file-name system calls in the home per task: ${count.fileCalls}`,
      `    of which the daemon's: ${count.daemonFileCalls}; the agent processes' (from their fork on): ${count.agentFileCalls}`,
      '    every sync per task, by call and file:',
      ...count.breakdown.map((line) => `      ${line}`),
    ],
  };
}

/** Run `job` `total` times, `parallel` at a time; returns jobs per second. */
async function withWorkers(parallel: number, total: number, job: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const t0 = nowMs();
  const worker = async () => {
    while (started < total) {
      started++;
      await job();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return total / ((nowMs() - t0) / 1000);
}

async function homeWithTasks(parallel: number, agents: number, tasks: number): Promise<BenchHome> {
  const home = await BenchHome.create({ max_parallel_runs: parallel, defaults: { stop_grace: '2s' } });
  const names = agentNames('w', agents);
  // The bench agent reads its task from `start` only, so it may be started ahead (README "Warm agents": spare).
  // P3_SPARE=off: without spares, every run spawns its process on the task's path (the code before them).
  await home.agents(names, { spare: process.env.P3_SPARE !== 'off' });
  for (let i = 0; i < tasks; i++) await home.writeTask(names[i % agents]!, { id: `t${i}`, input: { mode: 'result' } });
  return home;
}

const ended = (l: LogLine) => l.msg === 'run ended';

interface Timed {
  rate: number;
  elapsedMs: number;
  done: number;
  cpu: { self: number; children: number };
  /** From each run's 'run started' line to its agent's first line (the done record's output.first_at). */
  toFirst: Spread | null;
}

async function timedRun(parallel: number, agents: number, tasks: number): Promise<Timed> {
  const home = await homeWithTasks(parallel, agents, tasks);
  // P3_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile the timed daemon of this figure alone.
  const nodeArgs = process.env.P3_DAEMON_NODE_ARGS?.split(' ').filter(Boolean);
  const daemon = new DaemonChild(home, { nodeArgs });
  try {
    const started = await daemon.started();
    const before = cpuMs(daemon.pid);
    const lines = await daemon.waitCount(ended, tasks, 'run ended', 60_000 + tasks * 500);
    const after = cpuMs(daemon.pid);
    const elapsedMs = Math.max(...lines.map((l) => l.time)) - started.time;
    const cpu = { self: (after.self - before.self) / tasks, children: (after.children - before.children) / tasks };
    const toFirst = await startedToFirstLine(home, daemon.lines((l) => l.msg === 'run started'));
    return { rate: tasks / (elapsedMs / 1000), elapsedMs, done: lines.filter((l) => l.outcome === 'done').length, cpu, toFirst };
  } finally {
    await daemon.stop();
    await home.remove();
  }
}

/** Per run: its 'run started' log time (whole ms) to the first line its agent wrote (output.first_at, wall clock). */
async function startedToFirstLine(home: BenchHome, started: LogLine[]): Promise<Spread | null> {
  const samples: number[] = [];
  for (const line of started) {
    if (typeof line.agent !== 'string' || typeof line.task_id !== 'string') continue;
    const done = await home.readJson<{ output?: { first_at?: number } }>('state', line.agent, 'done', `${line.task_id}.json`).catch(() => null);
    if (typeof done?.output?.first_at === 'number') samples.push(done.output.first_at - line.time);
  }
  return samples.length > 0 ? spread(samples) : null;
}

interface SyncCount {
  tasks: number;
  syncsPerTask: number;
  /** Claims of an agent (a lock taken on state/<agent>) per task. */
  claimsPerTask: number;
  /** File-name system calls (strace %file) on paths in the home, per task. */
  fileCalls: string;
  /** Of those, the daemon's own (its threads), and the agent processes' (what they do after their exec). */
  daemonFileCalls: string;
  agentFileCalls: string;
  ops: string;
  breakdown: string[];
}

/** The daemon under strace: every durable call between 'daemon started' and the last 'run ended', per task. */
async function countSyncs(parallel: number, agents: number, perAgent: number): Promise<SyncCount> {
  const tasks = agents * perAgent;
  const home = await homeWithTasks(parallel, agents, tasks);
  const traceFile = path.join(os.tmpdir(), `agentd-bench-strace-${process.pid}.txt`);
  // execve and clone as well: they tell the daemon's threads from the agent processes it starts.
  const daemon = new DaemonChild(home, { straceTo: traceFile, straceCalls: ['%file', 'fsync', 'fdatasync', 'execve', 'clone', 'clone3', 'fork', 'vfork'] });
  try {
    const started = await daemon.started();
    const lines = await daemon.waitCount(ended, tasks, 'run ended', 120_000 + tasks * 2000);
    const until = Math.max(...lines.map((l) => l.time)) + 1;
    await daemon.stop();
    const text = await fs.readFile(traceFile, 'utf8');
    // P3_STRACE_KEEP=FILE keeps the trace, to look at the calls one by one.
    if (process.env.P3_STRACE_KEEP) await fs.writeFile(process.env.P3_STRACE_KEEP, text);
    const agentTids = agentProcessTids(text);
    const traced = parseStrace(text, home.root).filter((c) => c.atMs >= started.time && c.atMs <= until && c.inHome && !PROCESS_CALLS.has(c.call));
    const calls = traced.filter((c) => ['fsync', 'fdatasync', 'rename', 'link', 'unlink'].includes(c.call));
    const syncs = calls.filter((c) => c.call === 'fsync' || c.call === 'fdatasync');
    const by = new Map<string, number>();
    for (const c of calls) by.set(`${c.call.padEnd(9)} ${c.path}`, (by.get(`${c.call.padEnd(9)} ${c.path}`) ?? 0) + 1);
    const byCall = new Map<string, number>();
    for (const c of traced) byCall.set(c.call, (byCall.get(c.call) ?? 0) + 1);
    const ofAgents = traced.filter((c) => agentTids.has(c.pid));
    const ofDaemon = traced.filter((c) => !agentTids.has(c.pid));
    const daemonByCall = new Map<string, number>();
    for (const c of ofDaemon) daemonByCall.set(c.call, (daemonByCall.get(c.call) ?? 0) + 1);
    const claims = traced.filter((c) => c.call === 'mkdir' && c.path === 'state/<agent>.lock').length / tasks;
    const n = (call: string, pathFilter: (p: string) => boolean = () => true) => calls.filter((c) => c.call === call && pathFilter(c.path)).length / tasks;
    const isTemp = (p: string) => p.endsWith('.<tmp>');
    const ops = [
      `${fmt(n('rename'), 2)} writeFileDurable (renames)`,
      `${fmt(n('fdatasync'), 2)} appendLine (fdatasyncs)`,
      `${fmt(n('link'), 2)} linkDurable (links)`,
      `${fmt(n('unlink', (p) => !isTemp(p)), 2)} removeDurable (unlinks)`,
    ].join(' + ');
    return {
      tasks,
      syncsPerTask: syncs.length / tasks,
      claimsPerTask: claims,
      fileCalls: `${fmt(traced.length / tasks, 1)} (${[...byCall.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v / tasks, 1)}`).join(', ')})`,
      daemonFileCalls: `${fmt(ofDaemon.length / tasks, 1)} (${[...daemonByCall.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v / tasks, 1)}`).join(', ')})`,
      agentFileCalls: fmt(ofAgents.length / tasks, 1),
      ops,
      breakdown: [...by.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${fmt(v / tasks, 2).padStart(6)}  ${k}`),
    };
  } finally {
    await daemon.stop();
    await fs.rm(traceFile, { force: true });
    await home.remove();
  }
}

interface TracedCall {
  /** The thread that made the call (strace -f). */
  pid: number;
  atMs: number;
  call: string;
  inHome: boolean;
  /** Relative to the home, agent names and task ids replaced by <agent> and <task>, temp suffixes by <tmp>. */
  path: string;
}

/** Lines of `strace -f -ttt -y -o FILE`: "PID SECONDS.MICROS call(args) = result". */
export function parseStrace(text: string, home: string): TracedCall[] {
  const calls: TracedCall[] = [];
  for (const line of text.split('\n')) {
    const m = /^(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+)\s+(\w+)\((.*)$/.exec(line);
    if (!m) continue; // "<... resumed>" halves and signals: the call was counted at its start
    const [, pid, seconds, call, args] = m;
    const quoted = /"([^"]*)"(?:,\s*"([^"]*)")?/.exec(args!);
    const described = /<([^>]*)>/.exec(args!);
    // rename/link name their target second; fsync names its fd's file.
    const raw = quoted ? (quoted[2] ?? quoted[1]!) : (described?.[1] ?? '?');
    calls.push({ pid: Number(pid), atMs: Number(seconds) * 1000, call: call!, inHome: raw.startsWith(home), path: normalize(raw, home) });
  }
  return calls;
}

/** Calls traced only to tell processes apart: not counted as file calls. */
const PROCESS_CALLS = new Set(['execve', 'clone', 'clone3', 'fork', 'vfork']);

/**
 * The threads of processes the daemon started: a thread that called execve,
 * and every thread cloned from one. The daemon's own threads (its main thread,
 * the libuv pool) never exec. A forked child's calls before its exec (libuv's
 * chdir) count as the agent's: they are the spawn's.
 */
export function agentProcessTids(text: string): Set<number> {
  const parent = new Map<number, number>();
  const execed = new Set<number>();
  for (const line of text.split('\n')) {
    const m = /^(?:\[pid\s+)?(\d+)\]?\s+\d+\.\d+\s+(?:<\.\.\.\s+)?(\w+)/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const call = m[2]!;
    if (call === 'execve') execed.add(pid); // the daemon's own exec (strace's child) has no parent here: see below
    else if (PROCESS_CALLS.has(call)) {
      const child = /=\s+(\d+)\s*$/.exec(line);
      if (child && Number(child[1]) > 0) parent.set(Number(child[1]), pid);
    }
  }
  const tids = new Set<number>();
  for (const pid of execed) if (!parent.has(pid)) execed.delete(pid); // the daemon itself, started by strace
  for (const tid of new Set([...parent.keys(), ...execed])) {
    for (let at: number | undefined = tid, hops = 0; at !== undefined && hops < 64; at = parent.get(at), hops++) {
      if (execed.has(at)) {
        tids.add(tid);
        break;
      }
    }
  }
  return tids;
}

function normalize(file: string, home: string): string {
  let rel = file.startsWith(home) ? path.relative(home, file) || '.' : file;
  rel = rel.replace(/\bw\d+\b/g, '<agent>').replace(/\bt\d+\b/g, '<task>').replace(/\br-\d{14}-[0-9a-f]{8}\b/g, '<run>');
  rel = rel.replace(/(\.jsonl?)\.\d+$/, '$1.<tmp>');
  return rel === '.' ? '(home)/' : rel;
}
