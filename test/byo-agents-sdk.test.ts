import { libraryScenarios } from './helpers/byo.js';

// An agent written with the OpenAI Agents SDK (chat completions), run unmodified under agentd (test/fixtures/byo/agents-sdk-agent.mjs).
libraryScenarios('the OpenAI Agents SDK (chat completions)', 'agents-sdk-agent.mjs');
