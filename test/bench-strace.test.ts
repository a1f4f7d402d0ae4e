import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentProcessTids, parseStrace } from '../bench/p3-throughput.js';

// Lines as `strace -f -ttt -y` writes them: the daemon (100, started by strace), a pool thread it
// cloned (101), an agent it forked (200) that execs and clones a thread of its own (201).
const TRACE = [
  '100 1.000000 execve("/usr/bin/node", ["node", "main.js"], 0x7ffd /* 9 vars */) = 0',
  '100 1.100000 clone3({flags=CLONE_VM|CLONE_THREAD, child_tid=0x7f}, 88) = 101',
  '101 1.200000 openat(AT_FDCWD</h>, "/h/state/w0/checkpoint.json", O_RDONLY) = 21</h/state/w0/checkpoint.json>',
  '100 1.300000 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>',
  '200 1.310000 chdir("/h/agents/w0") = 0',
  '100 1.320000 <... clone resumed>, child_tidptr=0x7f) = 200',
  '200 1.400000 execve("/usr/bin/node", ["node", "agent.js"], 0x55 /* 4 vars */) = 0',
  '200 1.500000 clone3({flags=CLONE_VM|CLONE_THREAD}, 88) = 201',
  '201 1.600000 openat(AT_FDCWD</h/agents/w0>, "/h/agents/w0/package.json", O_RDONLY) = -1 ENOENT (No such file or directory)',
  '100 1.700000 fsync(22</h/state/w0>) = 0',
].join('\n');

describe('the bench strace pass', () => {
  it('tells the agent processes the daemon started from the daemon and its own threads', () => {
    assert.deepEqual([...agentProcessTids(TRACE)].sort(), [200, 201]);
  });

  it('names each call with its thread, and the file it is on', () => {
    const calls = parseStrace(TRACE, '/h').filter((c) => c.inHome);
    assert.deepEqual(
      calls.map((c) => [c.pid, c.call, c.path]),
      [
        [101, 'openat', 'state/<agent>/checkpoint.json'],
        [200, 'chdir', 'agents/<agent>'],
        [201, 'openat', 'agents/<agent>/package.json'],
        [100, 'fsync', 'state/<agent>'],
      ],
    );
  });
});
