// Resume of a task with a long journal (issue 3): a task makes N model calls
// and escalates; after the answer its agent starts over and every call is
// answered from the journal. Prints the journal fold time and the replay rate
// next to the rate of the same calls made live, measured in the same run.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readJournal } from '../src/store/journal.js';
import { runCli, SCRIPTED_AGENT } from '../test/helpers/home.js';

const calls = Number(process.argv[2] ?? 5000);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-bench-journal-'));
try {
  await fs.mkdir(path.join(home, 'agents', 'long'), { recursive: true });
  await fs.writeFile(
    path.join(home, 'agents', 'long', 'agent.json'),
    JSON.stringify({ command: ['node', SCRIPTED_AGENT], model: 'mock/echo', budget: { max_steps: 10_000, max_tokens: 50_000_000, max_runtime: '1h' } }),
  );
  const work = [{ models: calls }];
  await fs.writeFile(
    path.join(home, 'agents', 'long', 'current-task.json'),
    JSON.stringify({ id: 'long', goal: 'many calls', input: { script: [...work, { uncertain: { reason: 'pause here' } }], after_resolution: [...work, { result: 'done' }] } }),
  );
  let t = performance.now();
  const live = await runCli(['run', 'long', '--home', home]);
  const liveMs = performance.now() - t;
  const journalFile = path.join(home, 'state', 'long', 'journal', 'long.jsonl');
  t = performance.now();
  const summary = await readJournal(journalFile);
  const foldMs = performance.now() - t;
  const outbox = JSON.parse(await fs.readFile(path.join(home, 'outbox', 'long', 'outbox.json'), 'utf8')) as { items: { id: string }[] };
  await runCli(['resolve', outbox.items[0]!.id, '--continue', '--home', home]);
  t = performance.now();
  const resumed = await runCli(['run', 'long', '--home', home]);
  const replayMs = performance.now() - t;
  if (live.code !== 1 || resumed.code !== 0) throw new Error(`unexpected exits ${live.code} ${resumed.code}: ${live.stderr}${resumed.stderr}`);
  console.log(`journal records: ${summary.records} (${calls} model calls, started + completed)`);
  console.log(`fold of the journal: ${foldMs.toFixed(1)} ms`);
  console.log(`live run of ${calls} calls: ${liveMs.toFixed(0)} ms; resume answering all ${calls} from the journal: ${replayMs.toFixed(0)} ms`);
  console.log(`replay is ${(liveMs / replayMs).toFixed(1)}x the speed of making the calls live (mock provider, no network)`);
} finally {
  await fs.rm(home, { recursive: true, force: true });
}
