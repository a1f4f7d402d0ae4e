import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DaemonStatusFile } from '../src/store/daemon-status.js';
import { FAST_CONFIG, freePort, inHome, untilInFolder, withDaemon, readJsonOrNull } from './helpers/support.js';
import type { TestHome } from './helpers/home.js';

/** Tool circuits are visible (status, --json, state/daemon.json, /metrics) and survive a SIGHUP. */

const BROKEN_TOOL = {
  flaky: {
    command: ['node', '-e', 'process.exit(4)'],
    input_schema: { type: 'object' },
    effect: 'read',
    circuit: { failures: 2, window: '1h', cooldown: '1h' },
  },
};

/** state/daemon.json once its tool circuit for `key` is in `state`. */
function untilToolCircuit(home: TestHome, key: string, state: string, what: string): Promise<DaemonStatusFile | null> {
  return untilInFolder(
    home.path('state'),
    () => readJsonOrNull<DaemonStatusFile>(path.join(home.path('state'), 'daemon.json')),
    (s) => s?.tool_circuits?.some((c) => c.tool === key && c.state === state) ?? false,
    what,
  );
}

describe('tool circuits in the open', () => {
  it('an open tool circuit shows in state/daemon.json, agentd status (text and --json) and /metrics, and stays open after SIGHUP', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('worker', { tools: BROKEN_TOOL });
      const script = [{ tool: 'flaky' }, { tool: 'flaky' }, { tool: 'flaky' }, { result: '$last' }];
      await home.inbox('worker', 'w1', { goal: 'use a broken tool', input: { script } });
      const port = await freePort();
      await home.write('agentd.yaml', `${FAST_CONFIG}\nhttp: 127.0.0.1:${port}\n`);
      await withDaemon(
        home,
        async (daemon) => {
          assert.equal((await daemon.runEnded('worker')).outcome, 'done');
          const snapshot = await untilToolCircuit(home, 'worker/flaky', 'open', 'the open tool circuit in state/daemon.json');
          const circuit = snapshot!.tool_circuits!.find((c) => c.tool === 'worker/flaky')!;
          assert.equal(circuit.failures, 2);
          assert.match(circuit.opened_at ?? '', /^\d{4}-\d\d-\d\dT/);

          const json = await home.cli(['status', '--json']);
          assert.equal(json.code, 0, json.stderr);
          assert.deepEqual((JSON.parse(json.stdout) as { tool_circuits: unknown }).tool_circuits, snapshot!.tool_circuits);
          const text = await home.cli(['status']);
          assert.match(text.stdout, /^tool circuits: worker\/flaky OPEN \(2 failures, opened \S+\)$/m);

          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          assert.match(metrics, /^agentd_tool_circuit_state\{tool="worker\/flaky"\} 2$/m);

          daemon.child.kill('SIGHUP');
          await daemon.waitForLog((l) => l.msg === 'definitions reloaded', 'the reload');
          // daemon.json is rewritten every 2 s: wait for one written after the reload.
          const reloadedAt = Date.now();
          const after = await untilInFolder(
            home.path('state'),
            () => readJsonOrNull<DaemonStatusFile>(home.path('state', 'daemon.json')),
            (s) => s !== null && Date.parse(s.written_at) > reloadedAt,
            'a status written after SIGHUP',
          );
          assert.deepEqual(after!.tool_circuits, snapshot!.tool_circuits, 'the reload kept the open circuit');
          const metricsAfter = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          assert.match(metricsAfter, /^agentd_tool_circuit_state\{tool="worker\/flaky"\} 2$/m);
        },
      );
    }));
});
