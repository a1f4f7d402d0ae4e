import { runAgent } from 'agentd/sdk';

// One model call with the task's goal, a checkpoint, and the reply as the result.
runAgent(async (ctx) => {
  const reply = await ctx.model({
    messages: [
      { role: 'system', content: 'You are a friendly assistant. Answer in one sentence.' },
      { role: 'user', content: ctx.task.goal },
    ],
    max_tokens: 200,
  });
  await ctx.checkpoint({ answered: true, model: reply.model });
  return { answer: reply.content };
});
