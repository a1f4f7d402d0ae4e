import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The pure core, the protocol codec and the SDK reach no I/O (docs/architecture.md):
 * this walks the run-time import graph of the compiled modules (type imports
 * are erased, so they do not count) and fails on a forbidden module.
 */

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const FORBIDDEN = ['fs', 'fs/promises', 'child_process', 'net', 'http', 'https', 'ajv', 'proper-lockfile', 'write-file-atomic', 'chokidar'];

/** The core: src/core/ and the pure decision modules that live beside their I/O. */
const CORE = [
  ...fs.readdirSync(path.join(SRC, 'core')).filter((f) => f.endsWith('.js')).map((f) => `core/${f}`),
  'run/boot.js',
  'model/retry.js',
  'model/classify.js',
];
/** The decisions docs/architecture.md puts in src/core/: each must be there, so the walk covers it. */
const CORE_DECISIONS = ['budget', 'backoff', 'task-order', 'budget-merge', 'outbox-rules', 'run-retry', 'circuit-breaker', 'tool-circuits', 'approval', 'replay', 'clock'];
const CODEC = ['protocol/codec.js'];
/** Every module of the SDK (`agentd/sdk` is sdk/index.js, which re-exports the others). */
const SDK = fs.readdirSync(path.join(SRC, 'sdk')).filter((f) => f.endsWith('.js')).map((f) => `sdk/${f}`);

// The last form: a CommonJS package loaded when first needed, `createRequire(import.meta.url)('ajv')` (schema/validate.ts).
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|createRequire\(import\.meta\.url\)\(\s*['"]([^'"]+)['"]\s*\)/g;

function specifiers(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]!);
}

/** Every module reachable from `entry`, with the chain that reached it, stopping at packages and built-ins. */
function reach(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const walk = (file: string, chain: string[]) => {
    for (const spec of specifiers(file)) {
      const here = [...chain, spec];
      if (spec.startsWith('.')) {
        const next = path.resolve(path.dirname(file), spec);
        if (seen.has(next)) continue;
        seen.set(next, here);
        walk(next, here);
      } else {
        const name = spec.replace(/^node:/, '');
        if (!seen.has(name)) seen.set(name, here);
      }
    }
  };
  walk(path.join(SRC, entry), [entry]);
  return seen;
}

function violations(entries: string[]): string[] {
  const found: string[] = [];
  for (const entry of entries) {
    for (const [module, chain] of reach(entry)) {
      if (FORBIDDEN.includes(module)) found.push(`${entry} reaches ${module}: ${chain.join(' → ')}`);
    }
  }
  return found;
}

describe('module boundaries', () => {
  it('the core imports no I/O, no validator and no lock', () => {
    assert.ok(CORE.length > 10, 'the core modules are found');
    for (const name of CORE_DECISIONS) assert.ok(CORE.includes(`core/${name}.js`), `src/core/${name}.ts is in the core`);
    assert.deepEqual(violations(CORE), []);
  });

  it('the protocol codec imports no I/O and no validator', () => {
    assert.deepEqual(violations(CODEC), []);
  });

  it('the SDK imports no I/O and no validator, and imports the codec at run time', () => {
    assert.ok(SDK.includes('sdk/index.js') && SDK.includes('sdk/session.js'), 'the SDK modules are found');
    assert.deepEqual(violations(SDK), []);
    const fromIndex = reach('sdk/index.js');
    for (const module of SDK.filter((m) => m !== 'sdk/index.js')) assert.ok(fromIndex.has(path.join(SRC, module)), `agentd/sdk loads ${module}`);
    assert.ok(fromIndex.has(path.join(SRC, 'protocol/codec.js')), 'the SDK uses the codec instead of its own encoder');
  });

  it('the walk finds what it must: the store reaches fs, the message validators reach ajv', () => {
    assert.ok(violations(['store/promotion.js']).some((v) => v.includes('reaches fs')));
    assert.ok(violations(['protocol/messages.js']).some((v) => v.includes('reaches ajv')));
  });
});
