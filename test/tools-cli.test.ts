import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ToolView } from '../src/cli/commands/tools.js';
import { inHome } from './helpers/support.js';

/** `agentd tools`: each agent's tools and the policies that govern them. */

const CONFIG = `
defaults:
  approval_ttl: 2h
tools:
  send_email:
    description: Send an email
    command: ["node", "tools/send.js"]
    effect: irreversible
    timeout: 10s
    circuit: { failures: 3, window: 30s, cooldown: 1m }
  lookup:
    command: ["node", "tools/lookup.js"]
`;

describe('agentd tools', () => {
  it('lists each agent’s tools with effect, idempotent, approval, approval_ttl, timeout and circuit', () =>
    inHome(CONFIG, async (home) => {
      await home.write('agents/mailer/agent.yaml', 'command: ["node", "a.js"]\ntools: [send_email, lookup]\n');
      await home.write(
        'agents/ledger/agent.yaml',
        'command: ["node", "a.js"]\ntools:\n  append: { command: ["node", "t.js"], effect: write, idempotent: true, approval: always, approval_ttl: 15m }\n',
      );
      await home.write('agents/idle/agent.yaml', 'command: ["node", "a.js"]\n');

      const json = await home.cli(['tools', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const agents = JSON.parse(json.stdout) as { agent: string; tools: ToolView[] }[];
      assert.deepEqual(agents.map((a) => a.agent), ['idle', 'ledger', 'mailer']);
      assert.deepEqual(agents[0]?.tools, []);
      assert.deepEqual(agents[1]?.tools, [
        {
          name: 'append',
          description: '',
          declared_in: 'agent',
          effect: 'write',
          idempotent: true,
          approval: 'always',
          approval_ttl_ms: 15 * 60_000,
          timeout_ms: 30_000,
          circuit: { failures: 5, window_ms: 60_000, cooldown_ms: 30_000 },
        },
      ]);
      const send = agents[2]?.tools.find((t) => t.name === 'send_email');
      assert.deepEqual(send, {
        name: 'send_email',
        description: 'Send an email',
        declared_in: 'agentd.yaml',
        effect: 'irreversible',
        idempotent: false,
        approval: 'always',
        approval_ttl_ms: 2 * 3_600_000,
        timeout_ms: 10_000,
        circuit: { failures: 3, window_ms: 30_000, cooldown_ms: 60_000 },
      });
      assert.equal(agents[2]?.tools.find((t) => t.name === 'lookup')?.approval, 'never', 'a read tool asks no one by default');

      const table = await home.cli(['tools', '--agent', 'mailer']);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^AGENT +TOOL +EFFECT +IDEMPOTENT +APPROVAL +APPROVAL_TTL +TIMEOUT +CIRCUIT$/);
      assert.match(table.stdout, /mailer +send_email +irreversible +no +always +2h +10s +3 in 30s, 1m open/);
      assert.match(table.stdout, /mailer +lookup +read +no +never +2h +30s +5 in 1m, 30s open/);
      assert.equal(lines.length, 3);
    }));

  it('a broken definition is reported on stderr with exit 1, the other agents still listed', () =>
    inHome(CONFIG, async (home) => {
      await home.write('agents/good/agent.yaml', 'command: ["node", "a.js"]\ntools: [lookup]\n');
      await home.write('agents/broken/agent.yaml', 'command: ["node", "a.js"]\ntools: [nope]\n');
      const run = await home.cli(['tools']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /agents\/broken\/agent\.yaml: tools\[0\] "nope" is not declared under tools in agentd\.yaml/);
      assert.match(run.stdout, /good +lookup +read/);
    }));

  it('an unknown agent is exit 1', () =>
    inHome(CONFIG, async (home) => {
      const run = await home.cli(['tools', '--agent', 'ghost']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /agents\/ghost has no agent\.yaml or agent\.json/);
    }));
});
