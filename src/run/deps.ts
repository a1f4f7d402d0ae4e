import type { Logger } from 'pino';
import type { DaemonConfig } from '../config/types.js';
import { ModelCache } from '../model/cache.js';
import { ModelGateway, type GatewayOptions } from '../model/gateway.js';
import type { ModelProvider } from '../model/types.js';
import { appendAudit } from '../observe/audit.js';
import type { HomePaths } from '../store/paths.js';
import { ToolRunner } from '../tools/tool-runner.js';
import type { PriceRate } from './budget.js';
import type { Clock } from './clock.js';
import type { RunnerDeps } from './runner.js';
import type { RunEndpoint } from '../endpoint/server.js';

/** The per-token price of `model` from the price table, or null when it has none. */
export function priceRate(config: DaemonConfig, model: string): PriceRate | null {
  const price = config.models[model];
  return price ? { inputUsdPerToken: price.inputUsdPerMtok / 1e6, outputUsdPerToken: price.outputUsdPerMtok / 1e6 } : null;
}

export function createGateway(
  paths: HomePaths,
  config: DaemonConfig,
  clock: Clock,
  random: () => number,
  log: Logger,
  providers?: Record<string, ModelProvider>,
  onCall?: GatewayOptions['onCall'],
): ModelGateway {
  return new ModelGateway({
    config,
    clock,
    random,
    logger: log,
    ...(providers ? { providers } : {}),
    circuit: { failureThreshold: config.circuit.failures, windowMs: config.circuit.windowMs, cooldownMs: config.circuit.cooldownMs },
    ...(onCall ? { onCall } : {}),
    ...(config.cache.enabled ? { cache: new ModelCache(paths, config.cache.ttlMs, clock) } : {}),
  });
}

/** What a claim needs, wired the same way for the daemon and for `agentd run`. */
export function createRunnerDeps(options: {
  paths: HomePaths;
  config: DaemonConfig;
  log: Logger;
  clock: Clock;
  random: () => number;
  gateway: ModelGateway;
  tools?: ToolRunner;
  interrupt: AbortSignal;
  endpoint?: RunEndpoint;
}): RunnerDeps {
  const { paths, config, clock } = options;
  return {
    paths,
    config,
    log: options.log,
    clock,
    random: options.random,
    models: options.gateway,
    tools: options.tools ?? new ToolRunner(paths.root, options.log.child({ component: 'tools' })),
    priceOf: (model) => priceRate(config, model),
    interrupt: options.interrupt,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    audit: async (entry) => {
      await appendAudit(paths, entry, new Date(clock.now()));
    },
  };
}
