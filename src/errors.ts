/**
 * One error taxonomy (README "Errors"). Every failure carries a category from
 * the README's list, whether trying again can help (`retryable`), and a
 * stable `code`. Error classes are grouped by who must act; each has a
 * literal `name`, a stable `code`, the context a person needs to fix it, and
 * the `cause` when it wraps another error.
 */

/** The categories a failure can have, as the README lists them. */
export const ERROR_CATEGORIES = [
  'rate_limit',
  'timeout',
  'provider_error',
  'auth',
  'bad_request',
  'tool_error',
  'invalid_args',
  'invalid_output',
  'bad_input',
  'budget',
  'stale',
  'crash',
  'cancelled',
] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

/**
 * Categories that fail the same way however often they are tried: the input,
 * the arguments, the credentials or the request itself is wrong, and a person
 * must change it.
 */
const NOT_RETRYABLE: ReadonlySet<string> = new Set<ErrorCategory>(['auth', 'bad_request', 'bad_input', 'invalid_args']);

/** True when trying again can succeed; false for the categories a person must fix. */
export function isRetryable(category: string): boolean {
  return !NOT_RETRYABLE.has(category);
}

/** A failure as data: what is persisted in a checkpoint, a dead letter, a status. */
export interface Failure {
  category: ErrorCategory;
  code: string;
  retryable: boolean;
  message: string;
}

/** The failure of a run that ended with `category`; its code is the category unless one is given. */
export function failureOf(category: ErrorCategory, message: string, code: string = category): Failure {
  return { category, code, retryable: isRetryable(category), message };
}

/** The base of agentd's own errors: category, retryable and code on every one. */
export abstract class AgentdFailure extends Error {
  abstract override readonly name: string;
  abstract readonly code: string;
  abstract readonly category: ErrorCategory;
  /** What a person needs to find the problem (a file, an id, a field). */
  readonly context: Readonly<Record<string, unknown>>;

  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.context = context;
  }

  get retryable(): boolean {
    return isRetryable(this.category);
  }

  toFailure(): Failure {
    return { category: this.category, code: this.code, retryable: this.retryable, message: this.message };
  }
}

/** A name (agent, task id, path) that could escape the home or is malformed. */
export class BadNameError extends AgentdFailure {
  override readonly name = 'BadNameError';
  readonly code = 'bad_name';
  readonly category = 'bad_input';
  constructor(
    readonly what: string,
    readonly value: string,
    reason = 'must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$ and stay inside the home',
  ) {
    super(`${what} ${JSON.stringify(value)} ${reason}`, { what, value });
  }
}

/** A file a person wrote is invalid. The operator must act. */
export class ConfigError extends AgentdFailure {
  override readonly name = 'ConfigError';
  readonly code = 'config_error';
  /** `bad_input`, or `auth` when a provider key is missing. */
  readonly category: 'bad_input' | 'auth';
  constructor(
    /** The file, relative to the home. */
    readonly file: string,
    /** One line per problem, each naming the field. */
    readonly problems: string[],
    /** `category`: what kind of mistake, when it is known (`auth`: a provider key is missing). */
    options?: { cause?: unknown; category?: 'auth' },
  ) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'), { file, problems }, options);
    this.category = options?.category ?? 'bad_input';
  }
}

/** A task file that is not JSON or does not match the task schema. */
export class BadTaskError extends AgentdFailure {
  override readonly name = 'BadTaskError';
  readonly code = 'bad_input';
  readonly category = 'bad_input';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'), { file, problems });
  }
}

/** The command line was used wrongly: exit code 2. */
export class UsageError extends AgentdFailure {
  override readonly name = 'UsageError';
  readonly code = 'usage';
  readonly category = 'bad_input';
}

/** Something a person asked for does not exist (an outbox item, a dead letter). */
export class NotFoundError extends AgentdFailure {
  override readonly name = 'NotFoundError';
  readonly code = 'not_found';
  readonly category = 'bad_input';
}

/** An outbox item someone (a person, another `resolve`) already resolved. */
export class AlreadyResolvedError extends AgentdFailure {
  override readonly name = 'AlreadyResolvedError';
  readonly code = 'already_resolved';
  readonly category = 'bad_input';
  constructor(
    readonly itemId: string,
    readonly decision: string | undefined,
  ) {
    super(`outbox item ${itemId} is already resolved (${decision ?? '?'})`, { item_id: itemId, decision });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
