import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * Where this installation of agentd lives: the package root (the clone, or
 * `<prefix>/lib/node_modules/agentd-supervisor` after `npm install -g`), and
 * the files in it that agents use. Compiled to dist/src/config/, three levels
 * below the root.
 */

/** The package root: the folder holding agentd's package.json. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/[\\/]$/, '');

/** The folder of the stdlib-only Python module (`import agentd`), put on every process agent's PYTHONPATH. */
export const PYTHON_MODULE_DIR = path.join(PACKAGE_ROOT, 'python');

