/**
 * Where things are, declared once for every test, the torture test and the
 * bench. This file compiles to dist/test/helpers/paths.js, so the repository
 * root is three folders up from it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The built CLI: tests run `agentd` as a user does. */
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** Files tests read or run, kept in the repository (test/fixtures/README.md). */
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
/** A raw-protocol agent that follows its task's input.script (see the file). */
export const SCRIPTED_AGENT = path.join(FIXTURES, 'scripted-agent.mjs');
