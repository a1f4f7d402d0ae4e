import type { Command } from 'commander';
import { NotFoundError } from '../../errors.js';
import type { SpanLine } from '../../observe/trace.js';
import { formatTraceTree } from '../../observe/trace-tree.js';
import { readJsonLines } from '../../store/durable.js';
import { findTraceFile } from '../../store/history-scan.js';
import { assertName } from '../../store/paths.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';

interface TraceOptions {
  home?: string;
  json?: boolean;
}

export function registerTrace(program: Command): void {
  withHome(program.command('trace <run-id>'))
    .description('a run as a tree of spans (state/<agent>/traces/<run-id>.jsonl): model calls, tool calls, checkpoints, escalations')
    .option('--json', 'print the spans as a JSON array')
    .action((runId: string, options: TraceOptions) => runCommand(() => showTrace(runId, options)));
}

async function showTrace(runId: string, options: TraceOptions): Promise<number> {
  const paths = homeOf(options);
  assertName(runId, 'task id');
  const file = await findTraceFile(paths, runId);
  if (!file) throw new NotFoundError(`no trace of run ${JSON.stringify(runId)} under state/*/traces/`);
  const spans = await readJsonLines<SpanLine>(file);
  if (options.json) printJson(spans);
  else process.stdout.write(formatTraceTree(spans));
  return EXIT.ok;
}
