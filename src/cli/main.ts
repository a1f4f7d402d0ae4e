#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAudit } from './commands/audit.js';
import { registerDlq } from './commands/dlq.js';
import { registerEval } from './commands/eval.js';
import { registerInit } from './commands/init.js';
import { registerOutbox } from './commands/outbox.js';
import { registerResolve } from './commands/resolve.js';
import { registerRun } from './commands/run.js';
import { registerRuns } from './commands/runs.js';
import { registerStart } from './commands/start.js';
import { registerStats } from './commands/stats.js';
import { registerStatus } from './commands/status.js';
import { registerSubmit } from './commands/submit.js';
import { registerTools } from './commands/tools.js';
import { registerTop } from './commands/top.js';
import { registerTrace } from './commands/trace.js';
import { registerValidate } from './commands/validate.js';
import { EXIT } from './common.js';

const program = new Command('agentd')
  .description('a file-based supervisor daemon for LLM agents')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

for (const register of [registerStart, registerRun, registerSubmit, registerStatus, registerTop, registerOutbox, registerResolve, registerDlq, registerRuns, registerTrace, registerStats, registerTools, registerValidate, registerEval, registerInit, registerAudit]) {
  register(program);
}

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
