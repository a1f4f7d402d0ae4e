import assert from 'node:assert/strict';
import { libraryScenarios } from './helpers/byo.js';

// An agent written with the official openai client, run unmodified under agentd (test/fixtures/byo/openai-agent.mjs).
libraryScenarios('the official openai client (non-streamed and streamed, tool calls, json_schema response_format)', 'openai-agent.mjs', {
  streamed: true,
  request: (body) => {
    const { response_format: format, tool_choice: choice, parallel_tool_calls: parallel, seed, top_p: topP, max_completion_tokens: maxOut } = body;
    assert.deepEqual({ type: (format as { type: string }).type, choice, parallel, seed, topP, maxOut }, { type: 'json_schema', choice: 'auto', parallel: false, seed: 7, topP: 1, maxOut: 300 }, 'every field reaches the provider');
    assert.equal(body.stream, undefined, 'the provider is asked without streaming');
  },
});
