import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareTable } from '../bench/compare.js';
import type { Row } from '../bench/figure.js';

const row = (figure: string, measured: string, ratio: string, verdict: Row['verdict']): Row => ({ figure, measured, limit: '-', ratio, goal: '-', verdict, values: {} });

describe('bench --compare', () => {
  it('puts each figure beside the same figure of the saved run, matched by name before any parenthesis', () => {
    const table = compareTable(
      [row('P1 step overhead (via agentd)', '0.5 ms', '2.00×', 'PASS'), row('P3 throughput, trivial tasks (max_parallel_runs 4)', '40 tasks/s', '80%', 'PASS'), row('P7 deep inbox', '30 tasks/s', '90%', 'PASS')],
      [row('P1 step overhead (via agentd)', '1.1 ms', '7.78×', 'MISS'), row('P3 throughput, trivial tasks (max_parallel_runs 2)', '31.8 tasks/s', '47%', 'MISS')],
    );
    const lines = table.split('\n');
    assert.match(lines[0]!, /^figure +\| now +\| ratio now +\| before +\| ratio before +\| verdict now \/ before$/);
    assert.match(lines[2]!, /^P1 step overhead \(via agentd\) +\| 0\.5 ms +\| 2\.00× +\| 1\.1 ms +\| 7\.78× +\| PASS \/ MISS$/);
    assert.match(lines[3]!, /\| 40 tasks\/s +\| 80% +\| 31\.8 tasks\/s +\| 47% +\| PASS \/ MISS$/);
    assert.match(lines[4]!, /^P7 deep inbox +\| 30 tasks\/s +\| 90% +\| \(not in that run\) +\| — +\| PASS \/ —$/);
  });
});
