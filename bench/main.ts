import fs from 'node:fs';
import os from 'node:os';
import { FULL, QUICK, type FigureResult, type Row, type Sizes } from './figure.js';
import { stepOverhead } from './p1-step-overhead.js';
import { pickUp } from './p2-pick-up.js';
import { warmPickUp } from './p2c-warm.js';
import { throughput } from './p3-throughput.js';
import { startAndMemory } from './p4-start-memory.js';
import { restartAfterKill } from './p5-restart.js';
import { endpointOverhead } from './p6-endpoint.js';
import { deepInbox } from './p7-deep-inbox.js';
import { daemonCommand, fmt, nowMs } from './support.js';
import { compareTable, readSaved } from './compare.js';

/**
 * `npm run bench [-- --quick] [-- --json] [-- --only p1,p3] [-- --save FILE] [-- --compare FILE]`: every figure of
 * issue 7 beside the machine's own limit, measured in the same run, as a ratio
 * with the goal and PASS/MISS. --quick uses small sizes (CI: the bench still
 * runs end to end). --save writes the run as JSON (what --json prints);
 * --compare prints each figure beside the same figure of a saved run. Exit 1 when a figure could not be measured, 2 on bad
 * usage; a MISS is reported, not an exit status.
 */
const FIGURES: Record<string, { title: string; run: (sizes: Sizes) => Promise<FigureResult> }> = {
  p1: { title: 'P1 step overhead', run: stepOverhead },
  p2: { title: 'P2 pick-up latency', run: pickUp },
  p2c: { title: 'P2c pick-up with a warm agent', run: warmPickUp },
  p3: { title: 'P3 throughput', run: throughput },
  p4: { title: 'P4 start time and memory', run: startAndMemory },
  p5: { title: 'P5 restart after kill -9', run: restartAfterKill },
  p6: { title: 'P6 run endpoint overhead', run: endpointOverhead },
  p7: { title: 'P7 deep inbox', run: deepInbox },
};

interface Args {
  quick: boolean;
  json: boolean;
  only: string[];
  save: string | null;
  compare: string | null;
}

const USAGE = `usage: npm run bench -- [--quick] [--json] [--only ${Object.keys(FIGURES).join(',')}] [--save FILE] [--compare FILE]`;

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, json: false, only: Object.keys(FIGURES), save: null, compare: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') args.quick = true;
    else if (arg === '--json') args.json = true;
    else if (arg === '--save') args.save = argv[++i] ?? usage('--save needs a file');
    else if (arg === '--compare') args.compare = argv[++i] ?? usage('--compare needs a file');
    else if (arg === '--only') args.only = (argv[++i] ?? '').split(',').map((s) => s.trim().toLowerCase());
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else usage(`unknown argument ${arg}`);
  }
  for (const name of args.only) if (!FIGURES[name]) usage(`unknown figure ${name} (${Object.keys(FIGURES).join(', ')})`);
  return args;
}

function usage(problem: string): never {
  process.stderr.write(`bench: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

function table(rows: Row[]): string {
  const head = ['figure', 'measured', 'machine limit', 'ratio', 'goal', 'PASS/MISS'];
  const cells = rows.map((r) => [r.figure, r.measured, r.limit, r.ratio, r.goal, r.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)].join('\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  // Read before the run, so a wrong path fails at once and not after minutes of measuring.
  const earlier = args.compare ? readSaved(args.compare) : null;
  const sizes = args.quick ? QUICK : FULL;
  const t0 = nowMs();
  const say = (text: string) => {
    if (!args.json) process.stdout.write(text + '\n');
  };
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  say(`agentd bench (${args.quick ? 'quick' : 'full'}) — ${os.cpus().length} × ${cpu}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, node ${process.version}, tmp ${os.tmpdir()}`);
  say(daemonCommand().note);
  say(`load average at start: ${os.loadavg().map((l) => fmt(l)).join(' ')} (other work on the machine skews every figure)`);
  const rows: Row[] = [];
  const details: string[] = [];
  const errors: { figure: string; error: string }[] = [];
  const timings: Record<string, number> = {};
  for (const name of args.only) {
    const figure = FIGURES[name]!;
    const started = nowMs();
    say(`… ${figure.title}`);
    try {
      const result = await figure.run(sizes);
      rows.push(...result.rows);
      details.push(...result.details);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      errors.push({ figure: figure.title, error: message });
      rows.push({ figure: figure.title, measured: 'ERROR', limit: '—', ratio: '—', goal: '—', verdict: 'MISS', values: {} });
      details.push(`${figure.title}: could not be measured: ${message}`);
    }
    timings[name] = (nowMs() - started) / 1000;
    say(`  done in ${fmt(timings[name], 1)} s`);
  }
  const totalS = (nowMs() - t0) / 1000;
  const saved = { mode: args.quick ? 'quick' : 'full', sizes, machine: { cpus: os.cpus().length, cpu, node: process.version, loadavg_end: os.loadavg() }, daemon: daemonCommand().note, rows, details, errors, seconds: { ...timings, total: totalS } };
  if (args.save) fs.writeFileSync(args.save, JSON.stringify(saved, null, 2) + '\n');
  if (args.json) {
    process.stdout.write(JSON.stringify(saved, null, 2) + '\n');
  } else {
    say('');
    say(details.join('\n'));
    say('');
    say(table(rows));
    say('');
    if (earlier) {
      say(`beside ${args.compare} (${earlier.mode} run${earlier.mode !== saved.mode ? `, NOT ${saved.mode}: sizes differ` : ''}):`);
      say(compareTable(rows, earlier.rows));
      say('');
    }
    const misses = rows.filter((r) => r.verdict === 'MISS').length;
    say(`load average at the end: ${os.loadavg().map((l) => fmt(l)).join(' ')}`);
    say(`${rows.length} figures, ${misses} MISS, ${errors.length} errors; ${fmt(totalS, 1)} s${args.quick ? ' (quick sizes: the verdicts are for the full sizes only)' : ''}`);
    if (args.save) say(`saved to ${args.save}`);
  }
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
