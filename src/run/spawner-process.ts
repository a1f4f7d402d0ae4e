import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { spawnPiped, type SpawnReply, type SpawnRequest } from './spawner.js';

/**
 * The spawner: a small process the daemon forks once, which starts agent
 * processes for it and hands their stdin, stdout and stderr back over its IPC
 * channel (README.md, "The spawner"). A fork copies the page tables of the process that forks, and
 * node waits for the child's exec before spawn() returns: about 10 ms of the
 * daemon's main thread per agent, where this process's are a few.
 *
 * It holds no environment of its own (the daemon forks it with none): each
 * agent's comes with its request. It exits when the daemon goes.
 */

process.on('disconnect', () => process.exit(0));
// Node holds back 'disconnect' until the handles queued for the daemon are sent, and a daemon killed in the middle
// of a hand-over never takes them: so its going is also seen as this process's parent changing. The daemon's pid
// comes as the argument, not from process.ppid here: a daemon killed right after the fork is gone before this runs.
const daemonPid = Number(process.argv[2]);
setInterval(() => process.ppid !== daemonPid && process.exit(0), 500).unref();

process.on('message', (request: SpawnRequest) => {
  const reply = (message: SpawnReply, handle?: Socket): void => {
    process.send?.(message, handle);
  };
  let child;
  try {
    child = spawnPiped(request);
  } catch (err) {
    reply({ kind: 'failed', id: request.id, message: (err as Error).message, code: (err as NodeJS.ErrnoException).code ?? null });
    return;
  }
  child.once('error', (err: NodeJS.ErrnoException) => reply({ kind: 'failed', id: request.id, message: err.message, code: err.code ?? null }));
  if (child.pid === undefined) return; // 'error' follows
  const pipes = { stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr! };
  // Node starts reading a pipe as it makes it; what this process read would be lost with the handle. Stopped in
  // the turn that made them, before the event loop runs a read.
  stopReading(pipes.stdout);
  stopReading(pipes.stderr);
  // At a process's exit node destroys its stdin and drains its stdout and stderr. These are the daemon's, and may
  // not all be sent yet when an agent exits at once (handles go one at a time, each after the last was taken).
  Object.assign(child, { stdin: null, stdout: null, stderr: null, stdio: [null, null, null] });
  // One handle per message; each is closed here once sent, so the daemon holds the only other ends.
  for (const which of ['stdin', 'stdout', 'stderr'] as const) reply({ kind: 'stdio', id: request.id, pid: child.pid, which }, pipes[which] as unknown as Socket);
  // A handle the daemon cannot take (at its open-file limit) is dropped by node after three tries, and neither side
  // hears of it: this message, sent after the three, tells the daemon the hand-over is over, so it knows what did not come.
  reply({ kind: 'handed', id: request.id, pid: child.pid });
  child.once('exit', (code, signal) => reply({ kind: 'exit', id: request.id, code, signal }));
});

/** Stop the read node started on a pipe (its handle's readStop: no public call stops reading at the handle). */
function stopReading(pipe: Readable): void {
  (pipe as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
}
