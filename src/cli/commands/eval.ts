import os from 'node:os';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { EvalSetError } from '../../eval/cases.js';
import { evaluate } from '../../eval/evaluate.js';
import { createProgress } from '../../eval/progress.js';
import { formatReport } from '../../eval/report.js';
import { createLogger } from '../../observe/logger.js';
import { assertName } from '../../store/paths.js';
import { EXIT, formatTable, homeOf, printJson, runCommand, withHome } from '../common.js';

interface EvalCliOptions {
  home?: string;
  threshold: string;
  repeat: string;
  concurrency?: string;
  liveTools?: boolean;
  judgeModel?: string;
  keep?: boolean;
  json?: boolean;
  logLevel: string;
}

export function registerEval(program: Command): void {
  withHome(program.command('eval <agent>'))
    .description("run the agent's golden sets (agents/<agent>/evals/*.jsonl) in throw-away homes; exit 1 below --threshold or on a regression")
    .option('--threshold <rate>', 'pass rate from 0 to 1 below which the eval fails', '0.9')
    .option('--repeat <n>', 'runs of each case (the pass rate per case shows non-determinism)', '1')
    .option('--concurrency <n>', 'case runs at a time (default: the number of CPUs)')
    .option('--live-tools', 'run write and irreversible tools for real instead of recording them')
    .option('--judge-model <model>', 'provider/name of the model that scores judge rubrics (not the agent\'s own)')
    .option('--keep', 'keep the throw-away homes and print where they are')
    .option('--json', 'print the whole report as JSON')
    .option('--log-level <level>', 'log level of the runs, on stderr', 'error')
    .action((agent: string, options: EvalCliOptions) => runCommand(() => runEval(agent, options)));
}

async function runEval(agentName: string, options: EvalCliOptions): Promise<number> {
  const agent = assertName(agentName, 'agent name');
  const threshold = number('--threshold', options.threshold, (x) => x >= 0 && x <= 1, 'a number from 0 to 1');
  const repeat = number('--repeat', options.repeat, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const concurrency = options.concurrency === undefined ? Math.max(1, os.cpus().length) : number('--concurrency', options.concurrency, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');

  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort('shutdown');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const outcome = await evaluate({
      paths: homeOf(options),
      agent,
      threshold,
      repeat,
      concurrency,
      liveTools: options.liveTools ?? false,
      judgeModel: options.judgeModel ?? null,
      keep: options.keep ?? false,
      log: createLogger({ level: options.logLevel, destination: process.stderr }).child({ agent }),
      interrupt: interrupt.signal,
      progress: (total) => createProgress(total),
    });
    if (outcome.kind === 'interrupted') {
      process.stderr.write('agentd: eval interrupted; nothing recorded\n');
      return EXIT.checkFailed;
    }
    if (options.json) printJson(outcome.report);
    else process.stdout.write(formatReport(outcome.report, formatTable));
    if (outcome.kept) process.stderr.write(`throw-away homes kept in ${outcome.kept}\n`);
    return outcome.report.ok ? EXIT.ok : EXIT.checkFailed;
  } catch (err) {
    // A golden set that cannot run as written is bad input to the command, like a bad flag.
    if (err instanceof EvalSetError) throw new UsageError(err.message, { cause: err });
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function number(flag: string, raw: string, ok: (x: number) => boolean, what: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || !ok(value)) throw new UsageError(`${flag} ${JSON.stringify(raw)} must be ${what}`);
  return value;
}
