import type { DaemonConfig } from '../config/types.js';

/**
 * The daemon's secrets: provider keys (`api_key_env`) and the variables
 * agentd.yaml lists under `secrets:`. Their names are kept out of every
 * agent's and tool's environment; their values are masked wherever the
 * daemon writes text (log lines, files), as a last line of defence behind
 * not putting them there in the first place.
 */

/** What a masked secret value becomes. No quote or backslash, so masking JSON text keeps it JSON. */
export const SECRET_MASK = '[redacted:secret]';

/**
 * Values shorter than this are not masked in text (a 3-letter "secret" would
 * mask every word that contains it); they are still kept out of environments.
 */
export const MIN_MASKED_LENGTH = 8;

/** Every variable name that holds a secret: `secrets:` and each provider's `api_key_env`, sorted. */
export function secretNames(config: Pick<DaemonConfig, 'secrets' | 'providers'>): string[] {
  const names = new Set(config.secrets);
  for (const provider of Object.values(config.providers)) if (provider.apiKeyEnv) names.add(provider.apiKeyEnv);
  return [...names].sort();
}

/** Where a secret name comes from, for error messages: `secrets` or `providers.<name>.api_key_env`. */
export function secretSource(config: Pick<DaemonConfig, 'secrets' | 'providers'>, name: string): string | null {
  if (config.secrets.includes(name)) return 'secrets';
  const provider = Object.values(config.providers).find((p) => p.apiKeyEnv === name);
  return provider ? `providers.${provider.name}.api_key_env` : null;
}

/**
 * Masks secret values in text. One instance per process (`secretCensor`),
 * set when the daemon loads agentd.yaml, read by the logger and the durable
 * writers, which exist before the config is known.
 */
export class SecretCensor {
  private names = new Set<string>();
  /** The values and their JSON-escaped forms, longest first (a value inside another is masked with it). */
  private forms: string[] = [];

  /** Take the secrets `names` names, with their values from `env`, and `values` read elsewhere (key files). */
  set(names: string[], env: NodeJS.ProcessEnv = process.env, values: string[] = []): void {
    this.names = new Set(names);
    const forms = new Set<string>();
    for (const value of [...names.map((name) => env[name]), ...values]) {
      if (value === undefined || value.length < MIN_MASKED_LENGTH) continue;
      forms.add(value);
      forms.add(JSON.stringify(value).slice(1, -1)); // as it appears inside a JSON string
    }
    this.forms = [...forms].sort((a, b) => b.length - a.length);
  }

  /** True when `name` is a secret variable: it never goes into a child's environment. */
  isSecret(name: string): boolean {
    return this.names.has(name);
  }

  get active(): boolean {
    return this.forms.length > 0;
  }

  /** `text` with every secret value replaced by SECRET_MASK. */
  mask(text: string): string {
    let out = text;
    for (const form of this.forms) if (out.includes(form)) out = out.split(form).join(SECRET_MASK);
    return out;
  }

  /** Like `mask`, converting only when a value is actually there. */
  maskData(data: string | Buffer): string | Buffer {
    if (!this.active) return data;
    if (typeof data === 'string') return this.mask(data);
    return this.forms.some((form) => data.includes(form)) ? Buffer.from(this.mask(data.toString('utf8'))) : data;
  }
}

/** The process's censor: empty (a no-op) until the daemon or `agentd run` loads its config. */
export const secretCensor = new SecretCensor();
