import fs from 'node:fs/promises';
import path from 'node:path';
import { HomePaths } from '../../src/store/paths.js';
import { readAllOutboxes, resolveOutboxItem } from '../../src/store/outbox.js';
import { verifyAudit } from '../../src/observe/audit.js';
import { completion, REPO_ROOT, startStandIn, TestHome, type DaemonProcess } from '../helpers/home.js';
import { seededRandom } from '../helpers/random.js';

/**
 * The kill -9 torture test (issue 3): several agents whose tasks call the
 * model, checkpoint, append to a ledger through a side-effecting tool and
 * escalate; the daemon is SIGKILLed at random moments, many times, and
 * restarted; then a "person" resolves what the outbox asks and the books are
 * checked: every task in exactly one place, every ledger entry exactly once,
 * every JSON file readable, the audit chain intact.
 */

export interface TortureOptions {
  kills: number;
  agents: number;
  tasksPerAgent: number;
  /** Longest time the daemon lives before a kill. */
  maxLifeMs: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface TortureReport {
  kills: number;
  tasks: number;
  done: number;
  deadLettered: number;
  lost: string[];
  inTwoPlaces: string[];
  ledgerEntries: number;
  duplicatedEntries: string[];
  missingEntries: string[];
  unreadableFiles: string[];
  resolutions: Record<string, number>;
  modelRequests: number;
  /** Model calls whose completed answer was journaled and that were still made again. */
  modelCallsPaidTwice: number;
  auditOk: boolean;
  /** What `agentd audit verify` found, when the chain does not verify. */
  auditProblem?: string;
}

const LEDGER_TOOL = path.join(REPO_ROOT, 'test', 'fixtures', 'ledger-tool.mjs');

export async function runTorture(options: TortureOptions): Promise<TortureReport> {
  const random = seededRandom(options.seed ?? Date.now());
  const say = options.log ?? (() => undefined);
  const standIn = await startStandIn((body) => {
    const messages = body.messages as { content: string }[];
    return { body: completion(`ack ${messages.at(-1)?.content ?? ''}`), delayMs: Math.floor(Math.random() * 15) };
  });
  const home = await TestHome.create(`
providers:
  standin: { kind: openai, base_url: ${standIn.url}, api_key_env: TORTURE_KEY, timeout: 10s }
models:
  standin/m: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }
defaults:
  retry: { attempts: 3, base_delay: 10ms, max_delay: 100ms }
  stop_grace: 500ms
  max_attempts: 5
lock_stale: 2s
max_parallel_runs: 4
`);
  const paths = new HomePaths(home.root);
  const env = { TORTURE_KEY: 'sk-torture-0000' };
  const taskIds: { agent: string; id: string; dedupe: boolean }[] = [];
  try {
    for (let a = 0; a < options.agents; a++) {
      const dedupe = a % 2 === 0;
      const agent = `${dedupe ? 'idem' : 'plain'}-${a}`;
      await home.scriptedAgent(agent, {
        model: 'standin/m',
        tools: { ledger: { command: ['node', LEDGER_TOOL], effect: 'write', idempotent: dedupe, timeout: '10s', input_schema: { type: 'object', required: ['entry'] } } },
        budget: { max_steps: 20, max_tool_calls: 10, max_runtime: '5m' },
      });
      for (let t = 0; t < options.tasksPerAgent; t++) {
        const id = `${agent}-t${t}`;
        const asks = t % 4 === 3;
        const work = [
          { model: { messages: [{ role: 'user', content: `${id} step 1` }] } },
          { checkpoint: { step: 1 } },
          { tool: 'ledger', args: { entry: id, dedupe } },
          { sleep: 50 + Math.floor(random() * 200) },
          { model: { messages: [{ role: 'user', content: `${id} step 2` }] } },
          { sleep: Math.floor(random() * 100) },
          { result: { id } },
        ];
        const script = asks ? [{ model: { messages: [{ role: 'user', content: `${id} asks` }] } }, { uncertain: { reason: 'needs a person', question: 'go?' } }] : work;
        await home.inbox(agent, id, { goal: `torture ${id}`, input: { script, after_resolution: work } });
        taskIds.push({ agent, id, dedupe });
      }
    }

    // The kills.
    for (let k = 0; k < options.kills; k++) {
      const daemon = home.startDaemon(env);
      await daemon.started();
      await new Promise((r) => setTimeout(r, Math.floor(random() * options.maxLifeMs))); // a random kill moment, on purpose
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      if ((k + 1) % 10 === 0) say(`kills: ${k + 1}/${options.kills}`);
    }

    // The end: a person answers the outbox until every task has finished.
    const resolutions: Record<string, number> = {};
    const daemon = home.startDaemon(env);
    try {
      await daemon.started();
      await settle(daemon, paths, taskIds, resolutions, home);
    } finally {
      await daemon.stop();
    }
    return await audit(home, paths, taskIds, options.kills, resolutions, standIn.requests.length);
  } finally {
    await standIn.close();
    if (!process.env.TORTURE_KEEP) await home.remove();
    else say(`home kept at ${home.root}`);
  }
}

async function settle(daemon: DaemonProcess, paths: HomePaths, tasks: { agent: string; id: string }[], resolutions: Record<string, number>, home: TestHome): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const finished = await countFinished(home, tasks);
    if (finished === tasks.length) return;
    if (Date.now() > deadline) throw new Error(`only ${finished} of ${tasks.length} tasks finished`);
    const { items } = await readAllOutboxes(paths);
    const ledger = await readLedger(home);
    for (const item of items.filter((i) => i.status === 'open' && i.kind !== 'config_error' && i.kind !== 'budget_alert')) {
      let decision: 'continue' | 'approve' | 'retry' | 'answer' = 'continue';
      if (item.kind === 'unsure_side_effect') decision = ledger.some((l) => l.task === item.task_id) ? 'approve' : 'retry';
      if (item.kind === 'uncertain') decision = 'answer';
      // A limit is resumed with more budget: each crash may spend one more call than the task needs.
      const extend = item.kind === 'limit' ? { extend: { steps: 10, tool_calls: 10 } } : {};
      await resolveOutboxItem(paths, item.id, { decision, ...(decision === 'answer' ? { answer: 'go' } : {}), ...extend, by: 'torture', at: new Date().toISOString() });
      resolutions[`${item.kind}:${decision}`] = (resolutions[`${item.kind}:${decision}`] ?? 0) + 1;
    }
    // Wake on the daemon's next word about a run, or look again after a second.
    await daemon.waitForLog((l) => l.msg === 'run ended' || l.msg === 'escalated to the outbox', 'progress', 1000).catch(() => undefined);
    daemon.logs.length = 0;
  }
}

async function countFinished(home: TestHome, tasks: { agent: string; id: string }[]): Promise<number> {
  let n = 0;
  for (const t of tasks) {
    if ((await home.exists(`state/${t.agent}/done/${t.id}.json`)) || (await home.exists(`state/dead-letter/${t.agent}/${t.id}.json`))) n++;
  }
  return n;
}

async function readLedger(home: TestHome): Promise<{ entry: string; key: string; task: string }[]> {
  return home.readLines('ledger.jsonl');
}

async function audit(
  home: TestHome,
  paths: HomePaths,
  tasks: { agent: string; id: string; dedupe: boolean }[],
  kills: number,
  resolutions: Record<string, number>,
  modelRequests: number,
): Promise<TortureReport> {
  const report: TortureReport = {
    kills,
    tasks: tasks.length,
    done: 0,
    deadLettered: 0,
    lost: [],
    inTwoPlaces: [],
    ledgerEntries: 0,
    duplicatedEntries: [],
    missingEntries: [],
    unreadableFiles: [],
    resolutions,
    modelRequests,
    modelCallsPaidTwice: 0,
    auditOk: false,
  };
  const ledger = await readLedger(home);
  report.ledgerEntries = ledger.length;
  const counts = new Map<string, number>();
  for (const l of ledger) counts.set(l.entry, (counts.get(l.entry) ?? 0) + 1);
  for (const t of tasks) {
    const places = [
      await home.exists(`state/${t.agent}/done/${t.id}.json`),
      await home.exists(`state/dead-letter/${t.agent}/${t.id}.json`),
      await home.exists(`agents/${t.agent}/inbox/${t.id}.json`),
      await home.exists(`state/${t.agent}/waiting/${t.id}.json`), // parked while it waits on a person (README "Tasks")
      (await home.exists(`agents/${t.agent}/current-task.json`)) && (await home.readJson<{ id: string }>(`agents/${t.agent}/current-task.json`)).id === t.id,
    ].filter(Boolean).length;
    if (places === 0) report.lost.push(t.id);
    if (places > 1) report.inTwoPlaces.push(t.id);
    const done = await home.exists(`state/${t.agent}/done/${t.id}.json`);
    if (done) report.done++;
    if (await home.exists(`state/dead-letter/${t.agent}/${t.id}.json`)) report.deadLettered++;
    const n = counts.get(t.id) ?? 0;
    if (n > 1) report.duplicatedEntries.push(`${t.id} x${n}`);
    if (done && n === 0) report.missingEntries.push(t.id);
  }
  for (const t of tasks) {
    // The same call (place and request) answered live twice: replay should have answered the second.
    const completed = new Map<string, number>();
    for (const r of await home.readLines<{ kind: string; phase: string; seq: number; request_hash: string; replayed?: boolean }>(`state/${t.agent}/journal/${t.id}.jsonl`).catch(() => [])) {
      const key = `${r.seq}:${r.request_hash}`;
      if (r.kind === 'model' && r.phase === 'completed' && !r.replayed) completed.set(key, (completed.get(key) ?? 0) + 1);
    }
    for (const n of completed.values()) if (n > 1) report.modelCallsPaidTwice += n - 1;
  }
  for (const file of await jsonFiles(home.root)) {
    try {
      JSON.parse(await fs.readFile(file, 'utf8'));
    } catch {
      report.unreadableFiles.push(path.relative(home.root, file));
    }
  }
  const verified = await verifyAudit(paths);
  report.auditOk = verified.ok;
  if (!verified.ok) report.auditProblem = `line ${verified.line}: ${verified.problem}`;
  return report;
}

async function jsonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await jsonFiles(full)));
    else if (entry.name.endsWith('.json')) out.push(full);
  }
  return out;
}
