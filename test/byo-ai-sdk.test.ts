import { libraryScenarios } from './helpers/byo.js';

// An agent written with the Vercel AI SDK (ai + @ai-sdk/openai-compatible), run unmodified under agentd (test/fixtures/byo/ai-sdk-agent.mjs).
libraryScenarios('the Vercel AI SDK (ai + @ai-sdk/openai-compatible)', 'ai-sdk-agent.mjs');
