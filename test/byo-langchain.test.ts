import { libraryScenarios } from './helpers/byo.js';

// An agent written with LangChain.js (@langchain/openai), run unmodified under agentd (test/fixtures/byo/langchain-agent.mjs).
libraryScenarios('LangChain.js (@langchain/openai)', 'langchain-agent.mjs');
