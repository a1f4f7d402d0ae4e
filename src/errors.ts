/**
 * Errors are grouped by who must act. Each has a literal `name`, a stable
 * `code`, and the context a person needs to fix it.
 */

/** A name (agent, task id, path) that could escape the home or is malformed. */
export class BadNameError extends Error {
  override readonly name = 'BadNameError';
  readonly code = 'bad_name';
  constructor(
    readonly what: string,
    readonly value: string,
    reason = 'must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$ and stay inside the home',
  ) {
    super(`${what} ${JSON.stringify(value)} ${reason}`);
  }
}

/** A file a person wrote is invalid. The operator must act. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'config_error';
  constructor(
    /** The file, relative to the home. */
    readonly file: string,
    /** One line per problem, each naming the field. */
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'), options);
  }
}

/** A task file that is not JSON or does not match the task schema. */
export class BadTaskError extends Error {
  override readonly name = 'BadTaskError';
  readonly code = 'bad_input';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'));
  }
}

/** The command line was used wrongly: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'usage';
}

/** Something a person asked for does not exist (an outbox item, a dead letter). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly code = 'not_found';
}

/** A file in the home that is not a regular file of a sane size (a FIFO, a device, a folder): never read. */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  readonly code = 'not_regular_file';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file} ${problem}`);
  }
}

/** The home (or a folder in it) cannot be written: read-only, no permission, full. The operator must act. */
export class HomeNotWritableError extends Error {
  override readonly name = 'HomeNotWritableError';
  readonly code = 'home_not_writable';
  constructor(
    readonly dir: string,
    readonly errno: string,
    options?: { cause?: unknown },
  ) {
    super(`${dir}: cannot create it: ${ERRNO_SENTENCE[errno] ?? 'the file system refused'} (${errno}); the home must be writable`, options);
  }
}

const ERRNO_SENTENCE: Record<string, string> = {
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  ENOTDIR: 'a file is in the way of the folder',
};

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
