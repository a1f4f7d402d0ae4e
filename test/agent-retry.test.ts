import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoneRecord } from '../src/store/done-records.js';
import { completion, startStandIn } from './helpers/home.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';

/** An agent's own `retry:` governs its model calls, not only `defaults.retry` (README "Agent definitions"). */

describe("an agent's retry policy", () => {
  it('an agent with retry.attempts 3 gets its model call through two 500s, while defaults.retry allows 1 attempt', async () => {
    const standIn = await startStandIn((_body, n) => (n <= 2 ? { status: 500, body: { error: { message: 'overloaded' } } } : { body: completion('third time lucky') }));
    try {
      const config = `${FAST_CONFIG.replace('retry: { attempts: 2, base_delay: 10ms, max_delay: 50ms }', 'retry: { attempts: 1, base_delay: 10ms, max_delay: 50ms }')}
providers:
  stand:
    kind: openai
    base_url: ${standIn.url}
`;
      assert.match(config, /attempts: 1,/);
      await inHome(config, async (home) => {
        await home.scriptedAgent('patient', { model: 'stand/m1', retry: { attempts: 3, base_delay: '10ms', max_delay: '20ms' }, max_attempts: 1 });
        await home.inbox('patient', 'p1', { goal: 'ask once', input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: '$last' }] } });
        await withDaemon(home, async (daemon) => {
          assert.equal((await daemon.runEnded('patient')).outcome, 'done');
          const done = await home.readJson<DoneRecord>('state/patient/done/p1.json');
          assert.equal((done.output as { response: { content: string } }).response.content, 'third time lucky');
          assert.equal(standIn.requests.length, 3, "three attempts: the agent's policy, not defaults.retry's one");
        });
      });
    } finally {
      await standIn.close();
    }
  });
});
