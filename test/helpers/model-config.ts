/**
 * Configs for the model layer's unit tests, built in code rather than loaded
 * from a home. The stand-in provider is in provider.ts, the clock in clock.ts.
 */
import { BUILTIN_DEFAULTS, BUILTIN_LIMITS } from '../../src/config/daemon-config.js';
import type { DaemonConfig, ModelPrice, ProviderConfig } from '../../src/config/types.js';

export function openaiProvider(name: string, baseUrl: string, overrides: Partial<ProviderConfig> = {}): ProviderConfig {
  return { name, kind: 'openai', baseUrl, apiKeyEnv: null, timeoutMs: 5000, script: null, ...overrides };
}

export function daemonConfig(providers: ProviderConfig[], models: Record<string, ModelPrice> = {}): DaemonConfig {
  return {
    file: null,
    providers: Object.fromEntries(providers.map((p) => [p.name, p])),
    models,
    tools: {},
    defaults: { ...BUILTIN_DEFAULTS, retry: { attempts: 3, baseDelayMs: 1000, maxDelayMs: 30_000 } },
    limits: BUILTIN_LIMITS,
    maxParallelRuns: 4,
    http: null,
    httpAllowRemote: false,
    traceCapture: 'redacted',
    cache: { enabled: false, ttlMs: 3_600_000 },
    circuit: { failures: 5, windowMs: 60_000, cooldownMs: 30_000 },
    lockStaleMs: 10_000,
    outageAlertMs: 600_000,
    sweepIntervalMs: 60_000,
    quietPeriodMs: 5000,
    modelTimeoutMs: 60_000,
    secrets: [],
    maxFileBytes: 1024 * 1024,
    fileMode: { state: 0o640, outbox: 0o660 },
    notify: [],
  };
}
