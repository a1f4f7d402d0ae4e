import { spawn } from 'node:child_process';
import type { SpawnReply, SpawnRequest } from './spawner.js';

/**
 * The spawner: a small process the daemon forks once, which starts agent
 * processes for it and hands their stdin, stdout and stderr back over its IPC
 * channel (README.md, "Warm agents and spares": the spawn off the daemon's
 * event loop). A fork copies the page tables of the process that forks, and
 * node waits for the child's exec before spawn() returns: about 10 ms of the
 * daemon's main thread per agent, where this process's are a few.
 *
 * It holds no environment of its own (the daemon forks it with none): each
 * agent's comes with its request. It exits when the daemon goes.
 */

process.on('disconnect', () => process.exit(0));

process.on('message', (request: SpawnRequest) => {
  const reply = (message: SpawnReply, handle?: import('node:net').Socket): void => {
    process.send?.(message, handle);
  };
  let child;
  try {
    child = spawn(request.file, request.args, {
      cwd: request.cwd,
      env: request.env,
      ...(request.uid !== undefined ? { uid: request.uid } : {}),
      ...(request.gid !== undefined ? { gid: request.gid } : {}),
      detached: true, // its own process group, so a kill reaches everything it started
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    reply({ kind: 'failed', id: request.id, message: (err as Error).message });
    return;
  }
  child.once('error', (err) => reply({ kind: 'failed', id: request.id, message: err.message }));
  if (child.pid === undefined) return; // 'error' follows
  // One handle per message; each is closed here once sent, so the daemon holds the only other ends.
  reply({ kind: 'stdio', id: request.id, pid: child.pid, which: 'stdin' }, child.stdin as unknown as import('node:net').Socket);
  reply({ kind: 'stdio', id: request.id, pid: child.pid, which: 'stdout' }, child.stdout as unknown as import('node:net').Socket);
  reply({ kind: 'stdio', id: request.id, pid: child.pid, which: 'stderr' }, child.stderr as unknown as import('node:net').Socket);
  child.once('exit', (code, signal) => reply({ kind: 'exit', id: request.id, code, signal }));
});
