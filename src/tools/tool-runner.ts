import { idempotencyKey } from './idempotency.js';
import type { Logger } from 'pino';
import type { ToolDefinition } from '../config/types.js';
import { toolArgsProblem } from './tool-args.js';
import { confinedWhere, killGroup, resolveExecutable, scrubbedEnv } from '../run/agent-process.js';
import { confinedSpawn, type Confinement } from '../security/sandbox.js';
import { inRunCgroup } from '../security/run-cgroup.js';
import { endOf, launch, type Launched } from '../run/spawner.js';
import type { ToolCaller } from '../run/run-host.js';
import { jsonTextTooDeep, MAX_JSON_DEPTH } from '../security/json-depth.js';
import { HomePaths } from '../store/paths.js';
import { registerGroup, unregisterGroup } from '../store/process-registry.js';
import { circuitOpenMessage, circuitRetryInMs, toolCircuitKey, ToolCircuits } from './tool-circuits.js';

/** Largest tool output accepted; more is a failure, not a memory problem. */
const MAX_TOOL_OUTPUT = 4 * 1024 * 1024;

/** `stopped`: killed because the run stopped, so it neither failed nor finished. */
export type ToolRun = { ok: true; result: unknown } | { ok: false; message: string; stopped?: true };

/** Run a tool command: args JSON on stdin, result JSON on stdout, a timeout, a scrubbed environment. */
export async function runToolCommand(
  tool: ToolDefinition,
  cwd: string,
  args: unknown,
  env: Record<string, string>,
  confinement?: Confinement,
  /** Records the tool's process group durably while it lives (store/process-registry.ts). */
  groups?: { add(pgid: number): Promise<void>; remove(pgid: number): Promise<void> },
  /** The run is stopping: the tool's group is killed and the call answered `stopped`. */
  signal?: AbortSignal,
): Promise<ToolRun> {
  const [cmd, ...rest] = tool.command;
  // Unsandboxed, the tool runs in a cgroup of its own where the daemon has one (security/run-cgroup.ts).
  const toolEnv = scrubbedEnv([], env);
  const { run, cgroup } = inRunCgroup(confinedSpawn([resolveExecutable(cmd!, cwd), ...rest], confinement, confinedWhere(cwd, env)), confinement?.sandbox ?? false, toolEnv);
  // Started by the spawner, as agents are (README.md, "The spawner"): the daemon's event loop does not wait on the fork.
  let child: Launched;
  try {
    child = await launch({ file: run.file, args: run.args, cwd, env: toolEnv, uid: run.uid, gid: run.gid });
  } catch {
    cgroup?.removeEmpty();
    return { ok: false, message: `tool ${tool.name} exited with code 127` };
  }
  const killAll = (): void => {
    killGroup(child.pid, 'SIGKILL');
    cgroup?.kill();
  };
  let stdout = '';
  let stderr = '';
  let overflow = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (stdout.length + chunk.length > MAX_TOOL_OUTPUT) overflow = true;
    else stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 4000) stderr += chunk;
  });
  child.stdin.on('error', () => undefined);
  // Its end is its exit with its pipes closed. At its exit, whatever it started goes too (its group, and its cgroup
  // for a setsid child): a background child holding stdout would keep the pipes open until the timeout.
  const closed = endOf(child, killAll).then((exit) => exit.code);
  // Recorded before it is handed its arguments: a daemon killed from here on leaves a record the restart acts on.
  const recorded = groups ? await groups.add(child.pid).then(() => true, () => false) : false;
  child.stdin.end(JSON.stringify(args));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killAll();
  }, tool.timeoutMs);
  // A stopping run (shutdown, budget) does not wait for its tool: the tool's group is killed at once.
  let stopped = false;
  const onStop = () => {
    stopped = true;
    killAll();
  };
  if (signal?.aborted) onStop();
  else signal?.addEventListener('abort', onStop, { once: true });
  const code = await closed;
  clearTimeout(timer);
  signal?.removeEventListener('abort', onStop);
  killAll(); // nothing it started outlives it
  await cgroup?.end().emptied; // its folder is removed after (security/run-cgroup.ts)
  if (stopped) {
    return { ok: false, message: `tool ${tool.name} was stopped: the run is stopping`, stopped: true };
  }
  if (recorded) await groups!.remove(child.pid).catch(() => undefined); // a leftover record of a dead group is forgotten on the next claim
  return toolOutcome(tool, { timedOut, overflow, code, stdout, stderr });
}

/** What a tool's finished process amounts to. Pure. */
function toolOutcome(tool: ToolDefinition, ended: { timedOut: boolean; overflow: boolean; code: number | null; stdout: string; stderr: string }): ToolRun {
  const { code, stdout, stderr } = ended;
  if (ended.timedOut) return { ok: false, message: `tool ${tool.name} timed out after ${tool.timeoutMs}ms` };
  if (ended.overflow) return { ok: false, message: `tool ${tool.name} printed more than ${MAX_TOOL_OUTPUT} bytes` };
  if (code !== 0) return { ok: false, message: `tool ${tool.name} exited with code ${code}${stderr ? `: ${stderr.trim().slice(0, 500)}` : ''}` };
  // Deeper JSON would overflow the stack of whatever walks it next (the journal's hash, a trace).
  if (jsonTextTooDeep(stdout)) return { ok: false, message: `tool ${tool.name} printed JSON nested more than ${MAX_JSON_DEPTH} levels deep` };
  try {
    return { ok: true, result: JSON.parse(stdout) };
  } catch {
    return { ok: false, message: `tool ${tool.name} did not print JSON on stdout` };
  }
}

/**
 * Tools as the run host sees them: only the agent's own, arguments checked
 * against input_schema before anything runs, and a circuit breaker per tool
 * shared by every run of the daemon (one ToolRunner per daemon).
 */
export class ToolRunner implements ToolCaller {
  readonly circuits: ToolCircuits;

  constructor(
    private readonly home: string,
    private readonly log: Logger,
    options: { now?: () => number; run?: typeof runToolCommand } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.runCommand = options.run ?? runToolCommand;
    this.circuits = new ToolCircuits(this.now);
    this.paths = new HomePaths(home);
  }

  private readonly now: () => number;
  private readonly runCommand: typeof runToolCommand;
  private readonly paths: HomePaths;

  async call(request: Parameters<ToolCaller['call']>[0]): ReturnType<ToolCaller['call']> {
    const tool = Object.hasOwn(request.agent.tools, request.name) ? request.agent.tools[request.name] : undefined;
    if (!tool) return { ok: false, code: 'not_allowed', message: `tool ${JSON.stringify(request.name)} is not in this agent's tools`, ran: false };
    const problem = toolArgsProblem(tool, request.args);
    if (problem) return { ok: false, code: 'invalid_args', message: problem, ran: false };
    const env = {
      AGENTD_AGENT: request.agent.name,
      AGENTD_TASK_ID: request.taskId,
      AGENTD_RUN_ID: request.runId,
      AGENTD_HOME: this.home,
      AGENTD_IDEMPOTENCY_KEY: idempotencyKey(request.agent.name, request.taskId, request.seq, tool.name),
    };
    const breaker = this.circuits.get(toolCircuitKey(request.agent.name, tool), tool.circuit);
    if (breaker.acquire() === 'rejected') {
      this.log.warn({ tool: tool.name }, 'tool circuit open, call refused');
      // Its own code, and when to try again: nothing ran, unlike a tool that failed.
      const info = breaker.info();
      return { ok: false, code: 'circuit_open', message: circuitOpenMessage(tool.name, info, tool.circuit, this.now()), retryAfterMs: circuitRetryInMs(info, tool.circuit, this.now()), ran: false };
    }
    let run: ToolRun;
    try {
      // From here the call runs: the caller journals it and counts it toward max_tool_calls.
      await request.onStart?.();
      run = await this.runCommand(tool, request.agent.dir, request.args, env, request.agent.confinement, {
        add: (pgid) => registerGroup(this.paths, request.agent.name, pgid, 'tool', request.runId),
        remove: (pgid) => unregisterGroup(this.paths, request.agent.name, pgid),
      }, request.signal);
    } catch (err) {
      breaker.release();
      throw err;
    }
    if (!run.ok && run.stopped) {
      breaker.release(); // not the tool's fault
      return { ok: false, code: 'stopped', message: run.message };
    }
    if (!run.ok) {
      breaker.recordFailure();
      this.log.warn({ tool: tool.name, problem: run.message, circuit: breaker.info().state }, 'tool failed');
      return { ok: false, code: 'tool_failed', message: run.message };
    }
    breaker.recordSuccess();
    return run;
  }
}
