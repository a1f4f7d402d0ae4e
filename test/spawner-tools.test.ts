import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ToolDefinition } from '../src/config/types.js';
import { runToolCommand } from '../src/tools/tool-runner.js';

// Tool commands are started by the spawner as agents are (README.md, "The spawner"); these run real tools through it.

function tool(command: string[], timeoutMs: number): ToolDefinition {
  return {
    name: 'bg',
    description: 'a tool with a background child',
    command,
    inputSchema: {},
    effect: 'read',
    idempotent: true,
    approval: 'never',
    approvalTtlMs: 0,
    timeoutMs,
    circuit: { failures: 5, windowMs: 60_000, cooldownMs: 30_000 },
    shared: false,
  };
}

describe('tool commands through the spawner', () => {
  it('a tool that prints its result and exits, leaving a background child on its stdout, is answered at its exit, not at its timeout', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-spawner-tools-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    // The background sleep inherits the tool's stdout: the call's end waits for every end of that pipe.
    const run = await runToolCommand(tool(['/bin/sh', '-c', 'sleep 600 & printf \'{"ok":1}\''], 20_000), dir, {}, {});
    assert.deepEqual(run, { ok: true, result: { ok: 1 } });
  });
});
