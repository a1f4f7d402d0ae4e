import type { Command } from 'commander';
import { verifyAudit } from '../../observe/audit.js';
import { EXIT, homeOf, printJson, runCommand, withHome } from '../common.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit trail (state/audit.jsonl)');
  withHome(audit.command('verify'))
    .description('check every line of the audit trail; exit 1 naming the first bad line')
    .option('--json', 'print the result as JSON')
    .action((options: { home?: string; json?: boolean }) =>
      runCommand(async () => {
        const paths = homeOf(options);
        const result = await verifyAudit(paths);
        if (options.json) printJson(result);
        else if (result.ok) process.stdout.write(`ok: ${result.lines} lines, chain intact\n`);
        else process.stdout.write(`${paths.relative(paths.audit())}:${result.line}: ${result.problem}\n`);
        return result.ok ? EXIT.ok : EXIT.checkFailed;
      }),
    );
}
