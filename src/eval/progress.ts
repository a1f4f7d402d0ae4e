/**
 * A one-line progress bar on a terminal; nothing at all when the stream is
 * not a TTY (CI logs, pipes), so output there stays clean.
 */

export interface Progress {
  /** One more case run finished. */
  tick(label: string, passed: boolean): void;
  /** Erase the bar. */
  end(): void;
}

const WIDTH = 24;

/** Pure: the bar's text for `done` of `total`. */
export function progressLine(done: number, total: number, failed: number, label: string): string {
  const filled = total === 0 ? WIDTH : Math.round((done / total) * WIDTH);
  const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
  return `[${bar}] ${done}/${total}${failed > 0 ? ` (${failed} failed)` : ''} ${label}`;
}

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { tick: () => undefined, end: () => undefined };
  let done = 0;
  let failed = 0;
  const draw = (label: string) => {
    const columns = stream.columns || 80;
    stream.write(`\r\x1b[K${progressLine(done, total, failed, label).slice(0, columns - 1)}`);
  };
  draw('');
  return {
    tick(label, passed) {
      done++;
      if (!passed) failed++;
      draw(label);
    },
    end() {
      stream.write('\r\x1b[K');
    },
  };
}
