import { compiledSchema } from '../schema/compiled.js';
import { formatErrors } from '../schema/validate.js';
import type { Expectations, Property } from './cases.js';

/**
 * The deterministic checks of one case run: pure functions of what the case
 * expected and what the throw-away home's files say happened.
 */

/** How a case's task ended, read from the throw-away home. */
export type ObservedStatus = 'done' | 'escalated' | 'limit' | 'dead_letter' | 'cancelled' | 'error';

export interface Observed {
  status: ObservedStatus;
  /** The task's result (done). */
  output?: unknown;
  /** The outbox item the task waits on (escalated, limit). */
  escalation?: { kind: string; reason: string; question?: string; blockers?: unknown[] };
  /** Why it failed (dead_letter), or what went wrong running the case (error). */
  error?: { category: string; message: string };
  /** Tool names the agent called, in order: journaled calls, plus a call left waiting for approval. */
  toolsCalled: string[];
}

export interface CheckResult {
  pass: boolean;
  /** Why it failed; absent when it passed. */
  reason?: string;
}

export type Checks = Partial<Record<Property, CheckResult>>;

/** The text `contains`, `not_contains` and `max_length` look at: the output (a string as is, anything else as JSON), or the escalation's reason, question and blockers. */
export function textOf(observed: Observed): string {
  if (observed.status === 'done') return typeof observed.output === 'string' ? observed.output : JSON.stringify(observed.output ?? null);
  if (observed.escalation) {
    const e = observed.escalation;
    return [e.reason, e.question ?? '', ...(e.blockers ?? []).map((b) => (typeof b === 'string' ? b : JSON.stringify(b)))].filter((s) => s !== '').join('\n');
  }
  return '';
}

const REGEX = /^\/(.+)\/([imsu]*)$/s;

/** `/regex/flags` is a regular expression; anything else a case-sensitive substring (as in mock scripts). */
export function matches(text: string, pattern: string): boolean {
  const regex = REGEX.exec(pattern);
  return regex ? new RegExp(regex[1]!, regex[2]).test(text) : text.includes(pattern);
}

/** Why a `/regex/` pattern cannot be used, or null. */
export function patternProblem(pattern: string): string | null {
  const regex = REGEX.exec(pattern);
  if (!regex) return null;
  try {
    new RegExp(regex[1]!, regex[2]);
    return null;
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
}

export function describeStatus(observed: Observed): string {
  const e = observed.escalation;
  if (e) return `${observed.status} (${e.kind}: ${e.reason})`;
  if (observed.error) return `${observed.status} (${observed.error.category}: ${observed.error.message})`;
  return observed.status;
}

const EXCERPT = 80;
function excerpt(text: string): string {
  if (text === '') return 'it is empty';
  const flat = text.replace(/\s+/g, ' ');
  return `it was ${JSON.stringify(flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}…` : flat)}`;
}

/** Every deterministic property the case expects, checked. */
export function checkCase(expect: Expectations, observed: Observed): Checks {
  const checks: Checks = {};
  const text = textOf(observed);
  const what = observed.status === 'done' ? 'the output' : observed.escalation ? 'the escalation' : 'the outcome';

  checks.status = observed.status === expect.status ? { pass: true } : { pass: false, reason: `expected ${expect.status}, got ${describeStatus(observed)}` };

  if (expect.schema) {
    if (observed.status !== 'done') checks.schema = { pass: false, reason: `no output to check (${observed.status})` };
    else {
      const validate = compiledSchema(expect.schema);
      checks.schema = validate(observed.output) ? { pass: true } : { pass: false, reason: `output does not match the schema: ${formatErrors(validate.errors ?? []).slice(0, 3).join('; ')}` };
    }
  }
  if (expect.contains) {
    const missing = expect.contains.filter((p) => !matches(text, p));
    checks.contains = missing.length === 0 ? { pass: true } : { pass: false, reason: `${missing.map((p) => JSON.stringify(p)).join(', ')} not in ${what}: ${excerpt(text)}` };
  }
  if (expect.notContains) {
    const found = expect.notContains.filter((p) => matches(text, p));
    checks.not_contains = found.length === 0 ? { pass: true } : { pass: false, reason: `${found.map((p) => JSON.stringify(p)).join(', ')} found in ${what}` };
  }
  if (expect.maxLength !== undefined) {
    checks.max_length = text.length <= expect.maxLength ? { pass: true } : { pass: false, reason: `${what} is ${text.length} characters, more than ${expect.maxLength}` };
  }
  const called = observed.toolsCalled.length > 0 ? observed.toolsCalled.join(', ') : 'none';
  if (expect.toolsCalled) {
    const missing = expect.toolsCalled.filter((t) => !observed.toolsCalled.includes(t));
    checks.tools_called = missing.length === 0 ? { pass: true } : { pass: false, reason: `${missing.join(', ')} not called (called: ${called})` };
  }
  if (expect.toolsNotCalled) {
    const found = expect.toolsNotCalled.filter((t) => observed.toolsCalled.includes(t));
    checks.tools_not_called = found.length === 0 ? { pass: true } : { pass: false, reason: `${found.join(', ')} called (called: ${called})` };
  }
  return checks;
}

export function allPassed(checks: Checks): boolean {
  return Object.values(checks).every((c) => c.pass);
}
