#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { EXIT } from './common.js';

const program = new Command('agentd')
  .description('a file-based supervisor daemon for LLM agents')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

type Register = (program: Command) => void;

/** Each command's module, loaded only when needed: `agentd start` loads no eval, trace or stats code (README.md, Benchmark: P4). */
const COMMANDS: [string, () => Promise<Register>][] = [
  ['start', async () => (await import('./commands/start.js')).registerStart],
  ['run', async () => (await import('./commands/run.js')).registerRun],
  ['submit', async () => (await import('./commands/submit.js')).registerSubmit],
  ['status', async () => (await import('./commands/status.js')).registerStatus],
  ['top', async () => (await import('./commands/top.js')).registerTop],
  ['outbox', async () => (await import('./commands/outbox.js')).registerOutbox],
  ['resolve', async () => (await import('./commands/resolve.js')).registerResolve],
  ['dlq', async () => (await import('./commands/dlq.js')).registerDlq],
  ['runs', async () => (await import('./commands/runs.js')).registerRuns],
  ['trace', async () => (await import('./commands/trace.js')).registerTrace],
  ['stats', async () => (await import('./commands/stats.js')).registerStats],
  ['tools', async () => (await import('./commands/tools.js')).registerTools],
  ['validate', async () => (await import('./commands/validate.js')).registerValidate],
  ['eval', async () => (await import('./commands/eval.js')).registerEval],
  ['init', async () => (await import('./commands/init.js')).registerInit],
  ['audit', async () => (await import('./commands/audit.js')).registerAudit],
];

// A known command name first on the line registers that command alone; anything else (help, a typo) registers all.
const named = COMMANDS.find(([name]) => name === process.argv[2]);
for (const [, load] of named ? [named] : COMMANDS) (await load())(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; everything else is bad usage.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`agentd: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = EXIT.checkFailed;
  }
}
