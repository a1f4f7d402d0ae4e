import fs from 'node:fs';

/**
 * pino's last flush at exit (sonic-boom's flushSync) retries a write that
 * fails with anything but EAGAIN forever: with stdout a file on a full disk,
 * a daemon told to stop (SIGTERM) never exits. Here the stream's flushSync
 * writes what is buffered once, retries only a busy descriptor (EAGAIN,
 * EBUSY) a bounded number of times, and drops the rest: a log line is never
 * worth a daemon that cannot stop (README "Shutdown and crashes").
 */

/** The parts of sonic-boom's state this reads; checked at run time, left alone when they differ. */
interface SonicBoomState {
  fd: number;
  _bufs: (string | Buffer)[];
  _writingBuf: string | Buffer;
  _writing: boolean;
  _len: number;
  flushSync(): void;
}

/** Tries of a busy descriptor before the rest is dropped; with BUSY_WAIT_MS, about a second. */
const BUSY_TRIES = 100;
const BUSY_WAIT_MS = 10;

export function boundExitFlush(stream: unknown): void {
  const boom = stream as Partial<SonicBoomState>;
  if (typeof boom.flushSync !== 'function' || !Array.isArray(boom._bufs) || typeof boom.fd !== 'number') return;
  const state = boom as SonicBoomState;
  state.flushSync = () => {
    if (state.fd < 0) return; // never opened: nothing was written, nothing to flush
    // A chunk whose write failed is still in _writingBuf; one in flight (_writing) is left to its own write.
    const pending = [...(state._writing ? [] : [state._writingBuf]), ...state._bufs].filter((chunk) => chunk.length > 0);
    state._bufs = [];
    if (!state._writing) state._writingBuf = '';
    state._len = 0;
    for (const chunk of pending) if (!writeWholeSync(state.fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) return;
  };
}

/** False when the descriptor refused (a full disk, a closed pipe): the caller drops what is left. */
function writeWholeSync(fd: number, data: Buffer): boolean {
  let rest = data;
  let busy = 0;
  while (rest.length > 0) {
    try {
      rest = rest.subarray(fs.writeSync(fd, rest));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EAGAIN' && code !== 'EBUSY') || ++busy > BUSY_TRIES) return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BUSY_WAIT_MS);
    }
  }
  return true;
}
