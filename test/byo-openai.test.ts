import { libraryScenarios } from './helpers/byo.js';

// An agent written with the official openai client (non-streamed and streamed, tool calls, json_schema response_format), run unmodified under agentd (test/fixtures/byo/openai-agent.mjs).
libraryScenarios('the official openai client (non-streamed and streamed, tool calls, json_schema response_format)', 'openai-agent.mjs', { streamed: true });
