import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker, CircuitRegistry } from '../src/model/circuit-breaker.js';

const options = { failureThreshold: 3, windowMs: 10_000, cooldownMs: 5000 };
function breaker() {
  const clock = { t: 1_000_000 };
  return { clock, circuit: new CircuitBreaker('local/m', options, () => clock.t) };
}

test('a circuit opens after the threshold of failures within the window', () => {
  const { clock, circuit } = breaker();
  circuit.recordFailure();
  circuit.recordFailure();
  assert.equal(circuit.acquire(), 'allowed');
  clock.t += 100;
  circuit.recordFailure();
  assert.deepEqual(circuit.info(), { model: 'local/m', state: 'open', failures: 3, opened_at: 1_000_100 });
  assert.equal(circuit.acquire(), 'rejected');
});

test('failures older than the window do not count towards opening', () => {
  const { clock, circuit } = breaker();
  circuit.recordFailure();
  circuit.recordFailure();
  clock.t += 10_000;
  circuit.recordFailure();
  assert.equal(circuit.info().state, 'closed');
  assert.equal(circuit.info().failures, 1);
});

test('after the cooldown exactly one caller probes while the others are rejected', () => {
  const { clock, circuit } = breaker();
  for (let i = 0; i < 3; i++) circuit.recordFailure();
  clock.t += 4999;
  assert.equal(circuit.acquire(), 'rejected');
  clock.t += 1;
  assert.equal(circuit.info().state, 'half_open');
  assert.equal(circuit.acquire(), 'probe');
  assert.equal(circuit.acquire(), 'rejected');
});

test('a successful probe closes the circuit and clears its failures', () => {
  const { clock, circuit } = breaker();
  for (let i = 0; i < 3; i++) circuit.recordFailure();
  clock.t += 5000;
  assert.equal(circuit.acquire(), 'probe');
  circuit.recordSuccess();
  assert.deepEqual(circuit.info(), { model: 'local/m', state: 'closed', failures: 0, opened_at: null });
  assert.equal(circuit.acquire(), 'allowed');
});

test('a failed probe re-opens the circuit for another cooldown', () => {
  const { clock, circuit } = breaker();
  for (let i = 0; i < 3; i++) circuit.recordFailure();
  clock.t += 5000;
  assert.equal(circuit.acquire(), 'probe');
  circuit.recordFailure();
  assert.equal(circuit.info().state, 'open');
  assert.equal(circuit.info().opened_at, 1_005_000);
  clock.t += 4999;
  assert.equal(circuit.acquire(), 'rejected');
});

test('a released probe lets the next caller probe', () => {
  const { clock, circuit } = breaker();
  for (let i = 0; i < 3; i++) circuit.recordFailure();
  clock.t += 5000;
  assert.equal(circuit.acquire(), 'probe');
  circuit.release();
  assert.equal(circuit.acquire(), 'probe');
});

test('the registry keeps one circuit per model and lists them sorted', () => {
  const registry = new CircuitRegistry(options, () => 0);
  assert.equal(registry.get('b/x'), registry.get('b/x'));
  registry.get('a/y').recordFailure();
  assert.deepEqual(registry.list(), [
    { model: 'a/y', state: 'closed', failures: 1, opened_at: null },
    { model: 'b/x', state: 'closed', failures: 0, opened_at: null },
  ]);
});
