import type { ModelPrice } from '../config/types.js';
import type { ModelRequest } from '../protocol/messages.js';

/** Tokens one model call used, as the provider reported them. */
export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
}

/**
 * Cost in USD of one call to `model` (`provider/name`) from the price table.
 * A model with no price costs 0: the caller asks `isPriced` to warn about it,
 * because silently charging nothing would let a cost budget never trip.
 */
export function costUsd(prices: Readonly<Record<string, ModelPrice>>, model: string, usage: TokenUsage): number {
  const price = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (!price) return 0;
  return (usage.input_tokens * price.inputUsdPerMtok) / 1e6 + (usage.output_tokens * price.outputUsdPerMtok) / 1e6;
}

/** Whether the price table knows `model`. */
export function isPriced(prices: Readonly<Record<string, ModelPrice>>, model: string): boolean {
  return Object.hasOwn(prices, model);
}

/** The rough rule of thumb of ~4 characters per token, used wherever a tokenizer would be overkill. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/**
 * Prompt tokens a request will use, before sending it: the JSON of its
 * messages and tools at ~4 characters per token. Budget checks use it to
 * refuse a call that cannot fit; it over-counts a little (JSON punctuation),
 * which is the safe side for a budget.
 */
export function estimateRequestTokens(request: ModelRequest): number {
  const chars = JSON.stringify(request.messages).length + (request.tools ? JSON.stringify(request.tools).length : 0);
  return estimateTokens(chars);
}
