import fs from 'node:fs';
import path from 'node:path';
import type { DaemonConfig, ProviderConfig } from '../config/types.js';

/**
 * Where a provider's API key comes from (README "Security"): a variable of
 * the daemon's environment (`api_key_env`, readable by anything running as
 * the daemon's user through /proc/<pid>/environ), a file only the daemon's
 * user may read (`api_key_file`, mode 0600), or a systemd credential
 * (`api_key_credential`, a file under $CREDENTIALS_DIRECTORY). Files are
 * read at every call, so a rotated key is picked up without a restart.
 */

export type KeySource = { kind: 'env'; name: string } | { kind: 'file'; path: string; field: string } | { kind: 'none' };

/** The file a provider's key is read from: its api_key_file, or its credential under $CREDENTIALS_DIRECTORY. */
export function keySource(provider: ProviderConfig, env: NodeJS.ProcessEnv = process.env): KeySource {
  if (provider.apiKeyFile) return { kind: 'file', path: provider.apiKeyFile, field: `providers.${provider.name}.api_key_file` };
  if (provider.apiKeyCredential) {
    const dir = env.CREDENTIALS_DIRECTORY ?? '';
    return { kind: 'file', path: path.join(dir, provider.apiKeyCredential), field: `providers.${provider.name}.api_key_credential` };
  }
  if (provider.apiKeyEnv) return { kind: 'env', name: provider.apiKeyEnv };
  return { kind: 'none' };
}

/** A key file's text without the trailing newline editors add. */
export function keyFromText(text: string): string {
  return text.replace(/\r?\n$/, '').trim();
}

/** Problems with one provider's key file, each naming file and field; none for env keys. */
export function keyFileProblems(provider: ProviderConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  if (provider.apiKeyCredential && !env.CREDENTIALS_DIRECTORY) {
    return [`providers.${provider.name}.api_key_credential ${JSON.stringify(provider.apiKeyCredential)}: $CREDENTIALS_DIRECTORY is not set (add LoadCredential=${provider.apiKeyCredential}:<file> to the unit)`];
  }
  const source = keySource(provider, env);
  if (source.kind !== 'file') return [];
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source.path);
  } catch (err) {
    return [`${source.field}: cannot read ${source.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`];
  }
  if (!stat.isFile()) return [`${source.field}: ${source.path} is not a regular file`];
  // systemd makes credentials 0400 and owned by the service's user; that is as private as 0600.
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    return [`${source.field}: ${source.path} is mode ${mode}; a key file must be readable by the daemon's user only (chmod 600 ${source.path})`];
  }
  try {
    if (keyFromText(fs.readFileSync(source.path, 'utf8')) === '') return [`${source.field}: ${source.path} is empty`];
  } catch (err) {
    return [`${source.field}: cannot read ${source.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`];
  }
  return [];
}

/** Every provider's key-file problems. */
export function providerKeyProblems(config: Pick<DaemonConfig, 'providers'>, env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.values(config.providers).flatMap((provider) => keyFileProblems(provider, env));
}

/** The keys read from files, for the censor to mask (checked by providerKeyProblems first). */
export function fileKeyValues(config: Pick<DaemonConfig, 'providers'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const values: string[] = [];
  for (const provider of Object.values(config.providers)) {
    const source = keySource(provider, env);
    if (source.kind !== 'file') continue;
    try {
      values.push(keyFromText(fs.readFileSync(source.path, 'utf8')));
    } catch {
      // reported by providerKeyProblems
    }
  }
  return values;
}

/** What no sandbox may see: every key file and the credentials folder. */
export function keyPaths(config: Pick<DaemonConfig, 'providers'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const paths = new Set<string>();
  for (const provider of Object.values(config.providers)) if (provider.apiKeyFile) paths.add(provider.apiKeyFile);
  if (env.CREDENTIALS_DIRECTORY) paths.add(env.CREDENTIALS_DIRECTORY);
  return [...paths].sort();
}
