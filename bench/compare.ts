import fs from 'node:fs';
import type { Row } from './figure.js';

/**
 * `--compare FILE`: each figure of this run beside the same figure of an
 * earlier run saved with `--save FILE`, so that a change's effect is plain.
 * Figures are matched by their name up to the first '(' (a name may carry a
 * size, e.g. max_parallel_runs), then by the whole name.
 */

export interface SavedRun {
  mode: string;
  rows: Row[];
}

export function readSaved(file: string): SavedRun {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`bench: --compare ${file}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const rows = (value as { rows?: unknown }).rows;
  if (!Array.isArray(rows)) {
    process.stderr.write(`bench: --compare ${file}: no "rows" (not a file written by --save or --json)\n`);
    process.exit(2);
  }
  return { mode: String((value as { mode?: unknown }).mode ?? '?'), rows: rows as Row[] };
}

function key(figure: string): string {
  const paren = figure.indexOf('(');
  return (paren === -1 ? figure : figure.slice(0, paren)).trim();
}

/** Pure: the comparison table as printed. */
export function compareTable(now: Row[], before: Row[]): string {
  const byName = new Map(before.map((r) => [r.figure, r]));
  const byKey = new Map(before.map((r) => [key(r.figure), r]));
  const head = ['figure', 'now', 'ratio now', 'before', 'ratio before', 'verdict now / before'];
  const cells = now.map((r) => {
    const old = byName.get(r.figure) ?? byKey.get(key(r.figure));
    return [r.figure, r.measured, r.ratio, old?.measured ?? '(not in that run)', old?.ratio ?? '—', `${r.verdict} / ${old?.verdict ?? '—'}`];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)].join('\n');
}
