import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { AuditLine } from '../src/observe/audit.js';
import type { OutboxItem } from '../src/store/outbox.js';
import { TestHome, type DaemonProcess } from './helpers/home.js';
import { FAST_CONFIG } from './helpers/support.js';

/**
 * The web console (README "Console") in a real headless Chromium (Debian's
 * chromium, driven by playwright-core): the whole review loop without a
 * terminal, against a real daemon.
 */

const CHROMIUM = process.env.AGENTD_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = 'Which total? <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
const PAY_TOOL = {
  pay: {
    command: ['node', '-e', "const fs=require('fs');const a=JSON.parse(fs.readFileSync(0,'utf8'));fs.appendFileSync('paid-'+a.amount,'x');process.stdout.write(JSON.stringify({paid:a.amount}))"],
    input_schema: { type: 'object', required: ['amount'], properties: { amount: { type: 'number' } } },
    effect: 'irreversible',
  },
};

describe('the console in a real browser', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let browser: BrowserContext;
  let base: string;
  let token: string;
  const items = async (agent: string) => (await home.readJson<{ items: OutboxItem[] }>(`outbox/${agent}/outbox.json`)).items;

  before(async () => {
    home = await TestHome.create(FAST_CONFIG);
    await home.scriptedAgent('unsure');
    await home.inbox('unsure', 'ask', { goal: 'ask', input: { script: [{ uncertain: { reason: 'two totals', question: HOSTILE } }], after_resolution: [{ result: 'answered' }] } });
    await home.scriptedAgent('payer', { tools: PAY_TOOL });
    await home.inbox('payer', 'pay', { goal: 'pay', input: { script: [{ tool: 'pay', args: { amount: 10 } }, { result: '$last' }] } });
    daemon = home.startDaemon({}, ['--http', '127.0.0.1:0']);
    const listening = await daemon.waitForLog((l) => l.msg === 'http listening', 'http listening');
    base = `http://127.0.0.1:${listening.port as number}`;
    token = (await fs.readFile(home.path('state/console.token'), 'utf8')).trim();
    browser = await chromium.launchPersistentContext(await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1000, height: 700 },
    });
    assert.equal((await daemon.runEnded('unsure')).outcome, 'escalated');
    assert.equal((await daemon.runEnded('payer')).outcome, 'approval');
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await home?.remove();
  });

  const open = async (hash = ''): Promise<Page> => {
    const page = await browser.newPage();
    const response = await page.goto(`${base}/?token=${token}${hash}`);
    assert.equal(response?.status(), 200);
    return page;
  };

  it('a wrong or missing token gets 401, and a change is never made by GET', async () => {
    const page = await browser.newPage();
    assert.equal((await page.goto(`${base}/?token=wrong-${token}`))?.status(), 401);
    assert.equal((await page.goto(`${base}/`))?.status(), 401);
    assert.equal((await page.goto(`${base}/api/items`))?.status(), 401);
    const [item] = await items('unsure');
    const get = await fetch(`${base}/api/items/${encodeURIComponent(item!.id)}/resolve`, { headers: { 'x-agentd-token': token } });
    assert.equal(get.status, 405);
    const wrong = await fetch(`${base}/api/items/${encodeURIComponent(item!.id)}/resolve`, { method: 'POST', headers: { 'x-agentd-token': 'nope' }, body: '{"decision":"cancel"}' });
    assert.equal(wrong.status, 401);
    assert.equal((await items('unsure'))[0]?.status, 'open');
    await page.close();
  });

  it('an item whose question holds a script tag shows it as text and runs nothing; no secret is on the page', async () => {
    const page = await open();
    const question = page.locator('.item .question', { hasText: 'Which total?' });
    await question.waitFor();
    assert.equal(await question.textContent(), HOSTILE);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator('.item img').count(), 0);
    const html = await page.content();
    assert.ok(!html.includes(token), 'the token is not written into the page');
    if (process.env.AGENTD_SCREENSHOT) await page.screenshot({ path: process.env.AGENTD_SCREENSHOT, fullPage: false });
    const shot = await page.screenshot();
    assert.deepEqual([...shot.subarray(1, 4)], [...Buffer.from('PNG')]);
    await page.close();
  });

  it('answering in the browser resolves the item as agentd resolve would, and another open page sees the task finish live', async () => {
    const runs = await open('#runs');
    await runs.locator('table').waitFor();
    await runs.evaluate(() => ((globalThis as unknown as { __same?: boolean }).__same = true)); // gone if the page reloads
    const page = await open();
    await page.fill('#by', 'alice');
    await page.dispatchEvent('#by', 'change');
    const card = page.locator('.item', { hasText: 'Which total?' });
    await card.locator('textarea').fill('Use 120, page 2 is a draft');
    await card.locator('button[data-decision=answer]').click();
    await card.waitFor({ state: 'detached' });

    const [item] = await items('unsure');
    assert.equal(item?.status, 'resolved');
    assert.deepEqual(Object.keys(item!.resolution!).sort(), ['answer', 'at', 'by', 'decision']);
    assert.deepEqual([item?.resolution?.decision, item?.resolution?.answer, item?.resolution?.by], ['answer', 'Use 120, page 2 is a draft', 'alice']);

    assert.equal((await daemon.runEnded('unsure', 2)).outcome, 'done');
    await runs.locator('tr', { hasText: 'ask' }).locator('.pill.done').waitFor();
    assert.equal(await runs.evaluate(() => (globalThis as unknown as { __same?: boolean }).__same), true, 'updated without a reload');
    await runs.locator('tr', { hasText: 'ask' }).locator('.pill.done').click();
    await runs.locator('.timeline .tl').first().waitFor();
    await page.close();
    await runs.close();
  });

  it('approving an approval item shows the exact call first, and the tool runs exactly once', async () => {
    const page = await open();
    const card = page.locator('.item', { hasText: 'approval' });
    assert.equal(await card.locator('[data-test=call]').textContent(), 'pay({\n  "amount": 10\n})');
    await page.fill('#by', 'bob');
    await page.dispatchEvent('#by', 'change');
    await card.locator('button[data-decision=approve]').click();
    await card.waitFor({ state: 'detached' });
    assert.equal((await daemon.runEnded('payer', 2)).outcome, 'done');
    assert.equal(await fs.readFile(home.path('agents/payer/paid-10'), 'utf8'), 'x', 'the tool ran exactly once');
    const audit = await home.readLines<AuditLine>('state/audit.jsonl');
    assert.equal(audit.find((l) => l.event === 'approval')?.by, 'bob');
    assert.equal(audit.filter((l) => l.event === 'tool_call' && (l.details as { phase: string }).phase === 'completed').length, 1);
    const [item] = (await items('payer')).filter((i) => i.kind === 'approval');
    assert.deepEqual([item?.resolution?.decision, item?.resolution?.by], ['approve', 'bob']);
    await page.close();
  });

  it('dead letters are listed with Retry, which puts the task back in the inbox; agents, circuits and spend are served', async () => {
    await home.write('state/dead-letter/payer/refund-7.json', {
      v: 1, agent: 'payer', task: { id: 'refund-7', created_at: new Date().toISOString(), goal: 'refund order 7', input: { script: [{ result: 'refunded' }] } },
      error: { category: 'crash', message: 'exit 1' }, attempts: 3, runs: [], source: 'current', dead_lettered_at: new Date().toISOString(),
    });
    const page = await open('#dead-letters');
    const row = page.locator('tr', { hasText: 'refund-7' });
    await row.locator('button').click();
    await row.waitFor({ state: 'detached' });
    await daemon.waitForLog((l) => l.msg === 'run started' && l.task_id === 'refund-7', 'the requeued task to run');
    assert.equal(await home.exists('state/dead-letter/payer/refund-7.json'), false);

    await page.goto(`${base}/?token=${token}#agents`);
    await page.locator('.card', { hasText: 'payer' }).waitFor();
    await page.locator('h3', { hasText: 'Tool circuits' }).waitFor();
    assert.match((await page.locator('main').textContent()) ?? '', /Model circuits.*Tool circuits/s);
    await page.goto(`${base}/?token=${token}#spend`);
    await page.locator('h2', { hasText: 'Spend per agent and day' }).waitFor();
    await page.close();
  });
});
