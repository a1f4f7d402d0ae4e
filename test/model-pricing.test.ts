import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costUsd, estimateRequestTokens, isPriced } from '../src/model/pricing.js';

const prices = { 'local/big': { inputUsdPerMtok: 2.5, outputUsdPerMtok: 10, contextWindow: null } };

test('cost is input and output tokens times their price per million', () => {
  assert.equal(costUsd(prices, 'local/big', { input_tokens: 1_000_000, output_tokens: 0 }), 2.5);
  assert.equal(costUsd(prices, 'local/big', { input_tokens: 0, output_tokens: 500_000 }), 5);
  // 1200·2.5/1e6 + 300·10/1e6 = 0.003 + 0.003
  assert.ok(Math.abs(costUsd(prices, 'local/big', { input_tokens: 1200, output_tokens: 300 }) - 0.006) < 1e-12);
});

test('a model missing from the price table costs nothing and is reported as unpriced', () => {
  assert.equal(costUsd(prices, 'local/other', { input_tokens: 1000, output_tokens: 1000 }), 0);
  assert.equal(isPriced(prices, 'local/other'), false);
  assert.equal(isPriced(prices, 'local/big'), true);
  assert.equal(isPriced(prices, 'toString'), false, 'prototype keys are not prices');
});

test('a request is estimated at a quarter token per character of its messages and tools JSON', () => {
  const request = { messages: [{ role: 'user' as const, content: 'hello' }] };
  assert.equal(estimateRequestTokens(request), Math.ceil(JSON.stringify(request.messages).length / 4));
  const tools = [{ type: 'function' as const, function: { name: 'lookup', description: 'find a vendor' } }];
  assert.equal(estimateRequestTokens({ ...request, tools }), Math.ceil((JSON.stringify(request.messages).length + JSON.stringify(tools).length) / 4));
});
