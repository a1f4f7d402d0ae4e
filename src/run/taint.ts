import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { scanForInjection, type InjectionRule } from '../security/injection.js';

/**
 * Untrusted content entering a run (README "Security"): the task input at
 * start and every tool result. Content that looks like an injected
 * instruction taints the run: from then on its write and irreversible tools
 * need a person's approval (tools/approval.ts), and a person is shown what
 * was flagged and where it came from.
 */

/** One flagged piece of content, as the outbox item `suspected_injection` shows it. */
export interface SuspectedInjection {
  /** Where it came from: `task input`, `tool result of lookup (call 3)`. */
  source: string;
  /** Inside that value: `body`, `items[2].note`, or '' for the value itself. */
  path: string;
  rule: InjectionRule;
  hiddenBy: string | null;
  /** The flagged text, truncated. */
  excerpt: string;
  /** Same content from the same place → same fingerprint, so a replay does not report it twice. */
  fingerprint: string;
}

export class RunTaint {
  constructor(
    private flagged: boolean,
    private readonly report: (found: SuspectedInjection[]) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** True once flagged content has entered this task (in this run or an earlier one). */
  get tainted(): boolean {
    return this.flagged;
  }

  /** Check `value` from `source`; report and taint when it looks like an injected instruction. */
  async inspect(value: unknown, source: string): Promise<void> {
    const located = scanForInjection(value);
    if (located.length === 0) return;
    this.flagged = true;
    const found = located.map(({ path, finding }) => ({
      source,
      path,
      rule: finding.rule,
      hiddenBy: finding.hiddenBy,
      excerpt: finding.excerpt,
      fingerprint: createHash('sha256').update(`${source}\0${path}\0${finding.rule}\0${finding.excerpt}`).digest('hex').slice(0, 16),
    }));
    this.log.warn({ source, rules: found.map((f) => f.rule) }, 'content that looks like an injected instruction entered the run');
    // The run is tainted whether or not the report could be written (a hand-broken outbox.json, say).
    await this.report(found).catch((err: unknown) => this.log.error({ err }, 'could not report the suspected injection'));
  }
}
