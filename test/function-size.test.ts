import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * No function in src/ is longer than MAX_LINES (README "Development"): the
 * TypeScript sources are parsed, and every function, method, constructor,
 * accessor, arrow and function expression is measured from its first line to
 * its last, both included. No file in src/ is longer than MAX_FILE_LINES
 * either: a longer one is a module of more than one concept waiting for its
 * split (docs/architecture.md).
 */

const MAX_LINES = 80;
const MAX_FILE_LINES = 400;
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SRC = path.join(REPO, 'src');

/**
 * Functions known to be longer, outside the run path and the store, each
 * waiting for its split: `file:name`. Empty for src/run/ and src/store/, and
 * it only shrinks; an entry that is no longer too long fails the test too, so
 * the list stays true.
 */
const ALLOWED: ReadonlySet<string> = new Set<string>([]);

interface Measured {
  where: string;
  lines: number;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

function nameOf(node: ts.Node, source: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(source);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))) return parent.name.getText(source);
  const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  return `<anonymous@${line}>`;
}

export function measureFunctions(file: string): Measured[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const rel = path.relative(REPO, file).split(path.sep).join('/');
  const found: Measured[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ where: `${rel}:${nameOf(node, source)}`, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** A file's lines as `wc -l` counts them: its newlines, plus a last line without one. */
export function fileLines(file: string): number {
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

describe('function size', () => {
  const all = sourceFiles(SRC).flatMap(measureFunctions);

  it(`no function in src/ is over ${MAX_LINES} lines, except the listed ones`, () => {
    const long = all.filter((f) => f.lines > MAX_LINES && !ALLOWED.has(f.where));
    assert.deepEqual(long.map((f) => `${f.where} (${f.lines} lines)`), []);
  });

  it('the allowlist names only functions that are still too long, and none in src/run/ or src/store/', () => {
    const long = new Set(all.filter((f) => f.lines > MAX_LINES).map((f) => f.where));
    assert.deepEqual([...ALLOWED].filter((w) => !long.has(w)), [], 'split already: take it off the list');
    assert.deepEqual([...ALLOWED].filter((w) => w.startsWith('src/run/') || w.startsWith('src/store/')), []);
  });

  it(`no file in src/ is over ${MAX_FILE_LINES} lines`, () => {
    const long = sourceFiles(SRC)
      .map((file) => ({ file: path.relative(REPO, file).split(path.sep).join('/'), lines: fileLines(file) }))
      .filter((f) => f.lines > MAX_FILE_LINES);
    assert.deepEqual(long.map((f) => `${f.file} (${f.lines} lines)`), []);
  });

  it('the measure sees functions of every form', () => {
    const dir = fs.mkdtempSync(path.join(REPO, 'dist', 'fsize-'));
    try {
      const file = path.join(dir, 'sample.ts');
      const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
      fs.writeFileSync(file, `function f() {\n${body(3)}\n}\nconst g = () => {\n${body(1)}\n};\nclass C {\n  m() {\n${body(2)}\n  }\n}\n`);
      const measured = measureFunctions(file).map((m) => [m.where.split(':')[1], m.lines]);
      assert.deepEqual(measured, [['f', 5], ['g', 3], ['m', 4]]);
      assert.equal(fileLines(file), 14);
      fs.writeFileSync(file, 'a\nb');
      assert.equal(fileLines(file), 2, 'a last line without a newline counts');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
