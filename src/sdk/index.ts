import readline from 'node:readline';
import { Session } from './session.js';
import type { AgentFunction } from './api.js';

/**
 * The agent SDK (`import { runAgent } from 'agentd/sdk'`): the protocol of
 * docs/protocol.md wrapped so an agent is one async function.
 *
 * At run time it imports only its own modules (api.ts: the types and error an
 * agent sees; session.ts: the protocol state machine; this file: the wiring
 * to the process) and the protocol codec (src/protocol/codec.ts), the
 * daemon's own encoder and budget arithmetic; from the message module it
 * takes types only. An agent process must start fast, and the protocol's
 * validators would load ajv into every agent (test/boundaries.test.ts).
 *
 * stdout belongs to the protocol. `runAgent` points `process.stdout.write`
 * (and so `console.log`, `console.info`, `console.debug`, `console.dir`, ...)
 * at stderr, which the daemon captures into its log, so a stray print cannot
 * corrupt the protocol. The redirect starts when `runAgent` is called, not on
 * import (so a unit test that imports the SDK keeps its stdout): call it before
 * printing anything. A child process the agent spawns with inherited stdio
 * still writes to the real fd 1: give it `stdio: ['ignore', 'pipe', 'inherit']`.
 */

export type {
  BudgetRemaining,
  ChatMessage,
  DeliveredResolution,
  ErrorCode,
  ModelRequest,
  StopReason,
  ToolCall,
  ToolSpec,
  Usage,
} from '../protocol/messages.js';
export {
  AgentdError,
  ESCALATED,
  type AgentContext,
  type AgentFunction,
  type AgentTask,
  type Escalated,
  type Escalation,
  type Handoff,
  type LogLevel,
  type ModelReply,
  type Resume,
  type StopHandler,
} from './api.js';

let started = false;

/**
 * Run `fn` as this process's agent: read `start` from stdin, call `fn(ctx)`,
 * send what it returns as the `result`, exit 0. A throw exits 1 with the error
 * on stderr; a `stop` sends a handoff and exits 0; the end of stdin exits 0.
 */
export function runAgent(fn: AgentFunction): void {
  if (started) throw new Error('runAgent may be called once per process');
  started = true;
  const stdout = process.stdout;
  const protocolWrite = stdout.write.bind(stdout);
  // Everything else that writes to stdout (console.log and friends) goes to stderr instead.
  stdout.write = process.stderr.write.bind(process.stderr);
  // EPIPE: the daemon is gone, and so are we.
  stdout.on('error', () => process.exit(0));

  const write = (to: (chunk: string, cb: (err?: Error | null) => void) => boolean, text: string) =>
    new Promise<void>((resolve) => to(text, () => resolve()));
  const session = new Session(
    {
      writeLine: (line) => write(protocolWrite, line),
      writeError: (text) => write(process.stderr.write.bind(process.stderr), text),
      exit: (code) => process.exit(code),
    },
    fn,
  );
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() !== '') session.onLine(line);
  });
  lines.on('close', () => session.onClose());
}
