/**
 * Setup and teardown for node:test, declared once: a test file (or a
 * describe block) calls `useHome`, `useStandIn` or `useCleanup` and gets a
 * fresh home, stand-in provider or clean-up list for each of its tests.
 *
 * Every setup pushes its teardown on one stack; after each test the stack is
 * run last-in first-out, so a home whose config names a stand-in is closed
 * (its daemons stopped, its folder removed) before that stand-in. The stack is
 * module-wide, which holds because node:test runs the tests of one file one at
 * a time unless told otherwise (no test file here asks for concurrency).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { TestHome } from './home.js';
import { startStandIn, type ProviderHandler, type StandIn, type StandInOptions } from './provider.js';

type Teardown = () => unknown;
const teardowns: Teardown[] = [];

/** Runs and forgets every teardown pushed so far, newest first; the first error is thrown after all ran. */
async function drain(): Promise<void> {
  let first: unknown = null;
  for (let t = teardowns.pop(); t; t = teardowns.pop()) {
    try {
      await t();
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}

/** Registers the drain in the current scope; every hook registers it, the first to run does the work. */
function registerDrain(): void {
  afterEach(drain);
}

/**
 * Stands for whatever `get` returns during the current test: property reads
 * and method calls go to it. Outside a test there is nothing to stand for.
 * The stand-in is one object for all tests, so it must never be a key of a
 * cache (a WeakMap): hand on what it returns instead (`home.paths`, not a
 * proxied HomePaths).
 */
function current<T extends object>(get: () => T | null, what: string): T {
  return new Proxy({} as T, {
    get(_target, key) {
      const value = get();
      if (value === null) throw new Error(`${what} exists only while a test runs (it is made in beforeEach)`);
      const member = Reflect.get(value, key, value) as unknown;
      return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).bind(value) : member;
    },
  });
}

/**
 * A fresh home for each test (TestHome.create with `config`, or with what
 * `config()` returns at that moment); after the test, every daemon started on
 * it is stopped and the folder removed. The returned value is that test's home.
 */
export function useHome(config?: string | (() => string)): TestHome {
  let home: TestHome | null = null;
  beforeEach(async () => {
    const created = await TestHome.create(typeof config === 'function' ? config() : config);
    home = created;
    teardowns.push(async () => {
      home = null;
      await created.close();
    });
  });
  registerDrain();
  return current(() => home, 'useHome’s home');
}

/** A fresh stand-in provider for each test, answering with `handler`; closed after the test. */
export function useStandIn(handler: ProviderHandler, options?: StandInOptions): StandIn {
  let standIn: StandIn | null = null;
  beforeEach(async () => {
    const started = await startStandIn(handler, options);
    standIn = started;
    teardowns.push(async () => {
      standIn = null;
      await started.close();
    });
  });
  registerDrain();
  return current(() => standIn, 'useStandIn’s provider');
}

export interface Cleanup {
  /** Runs `teardown` after the current test, before what was deferred earlier. */
  defer(teardown: Teardown): void;
  /** A new folder under the system's temp folder, removed after the current test. */
  tempDir(prefix?: string): Promise<string>;
  /** A new home (TestHome.create), closed after the current test. */
  home(config?: string): Promise<TestHome>;
}

/** What a test creates as it goes (homes, folders, processes), undone after each test. */
export function useCleanup(): Cleanup {
  registerDrain();
  const cleanup: Cleanup = {
    defer: (teardown) => void teardowns.push(teardown),
    tempDir: async (prefix = 'agentd-test-') => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
      cleanup.defer(() => fs.rm(dir, { recursive: true, force: true }));
      return dir;
    },
    home: async (config) => {
      const home = await TestHome.create(config);
      cleanup.defer(() => home.close());
      return home;
    },
  };
  return cleanup;
}

