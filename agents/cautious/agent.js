import { runAgent } from 'agentd/sdk';

/** The first positive number in a person's answer ("25.50", "refund $25.50"), or null. */
function amountFrom(text) {
  const match = /\d+(?:\.\d+)?/.exec(text ?? '');
  const value = match ? Number(match[0]) : NaN;
  return value > 0 ? value : null;
}

runAgent(async (ctx) => {
  const input = ctx.task.input ?? {};
  const orderId = String(input.order_id ?? 'unknown');
  // The newest answer wins: a person may have answered more than once.
  const answers = ctx.resume.resolutions.filter((r) => typeof r.answer === 'string');
  const answered = answers.length > 0 ? amountFrom(answers[answers.length - 1].answer) : null;
  const amount = typeof input.amount === 'number' && input.amount > 0 ? input.amount : answered;

  if (amount === null) {
    // Never guess a sum of money: escalate, and end the run.
    return ctx.uncertain({
      reason: answers.length > 0 ? 'the answer did not contain an amount' : 'the refund request has no amount',
      question: `How much (in USD) should be refunded for order ${orderId}?`,
      blockers: ['input.amount is missing'],
      state: { order_id: orderId, step: 'awaiting_amount' },
    });
  }

  await ctx.checkpoint({ order_id: orderId, amount_usd: amount, step: 'approved' });
  const reply = await ctx.model({
    messages: [
      { role: 'system', content: 'Write a one-line note to the customer confirming their refund.' },
      { role: 'user', content: `Refund of ${amount} USD for order ${orderId} approved.` },
    ],
    max_tokens: 200,
  });
  return { order_id: orderId, amount_usd: amount, status: 'approved', note: reply.content };
});
