/**
 * A throw-away home folder for one test, and the way into the rest of the
 * helpers: the CLI (cli.ts), the daemon as a child process (process.ts), the
 * stand-in provider (provider.ts). Those are re-exported here so that a test
 * needs one import for the common case.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HomePaths } from '../../src/store/paths.js';
import { runCli, type CliResult } from './cli.js';
import { DaemonProcess } from './process.js';
import { SCRIPTED_AGENT } from './paths.js';

export { runCli, type CliResult } from './cli.js';
export { CLI, REPO_ROOT, SCRIPTED_AGENT } from './paths.js';
export { DaemonProcess, type LogLine } from './process.js';
export { completion, startStandIn, type StandIn, type ProviderHandler as StandInHandler } from './provider.js';

/** A throw-away home folder. */
export class TestHome {
  /** Every daemon started on this home, so that `close` can stop the ones a test left running. */
  private readonly daemons: DaemonProcess[] = [];

  private layout: HomePaths | null = null;

  constructor(readonly root: string) {}

  /** The store's view of this home's layout: one per home, since the store caches by it (realRoot). */
  get paths(): HomePaths {
    return (this.layout ??= new HomePaths(this.root));
  }

  static async create(config?: string): Promise<TestHome> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-test-'));
    await fs.mkdir(path.join(root, 'agents'));
    if (config !== undefined) await fs.writeFile(path.join(root, 'agentd.yaml'), config);
    return new TestHome(root);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async write(rel: string, content: string | object): Promise<void> {
    const file = this.path(rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }

  /** An agent run by the scripted test agent; `definition` overrides or adds keys. */
  async scriptedAgent(name: string, definition: Record<string, unknown> = {}): Promise<void> {
    await this.write(`agents/${name}/agent.json`, { version: '1', command: ['node', SCRIPTED_AGENT], model: 'mock/echo', ...definition });
  }

  async inbox(agent: string, id: string, task: Record<string, unknown>): Promise<void> {
    await this.write(`agents/${agent}/inbox/${id}.json`, { id, created_at: new Date().toISOString(), ...task });
  }

  async readJson<T = Record<string, unknown>>(rel: string): Promise<T> {
    return JSON.parse(await fs.readFile(this.path(rel), 'utf8')) as T;
  }

  async readLines<T = Record<string, unknown>>(rel: string): Promise<T[]> {
    const text = await fs.readFile(this.path(rel), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as T);
  }

  async exists(rel: string): Promise<boolean> {
    return fs.access(this.path(rel)).then(
      () => true,
      () => false,
    );
  }

  async list(rel: string): Promise<string[]> {
    return fs.readdir(this.path(rel)).catch(() => []);
  }

  /** Run the built CLI against this home. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return runCli([...args, '--home', this.root], env);
  }

  /** `wrap`: a command the daemon is started through (it must exec the rest, e.g. `unshare --mount -- sh -c ...`). */
  startDaemon(env: NodeJS.ProcessEnv = {}, args: string[] = [], wrap: string[] = []): DaemonProcess {
    const daemon = new DaemonProcess(this.root, env, args, wrap);
    this.daemons.push(daemon);
    return daemon;
  }

  async remove(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }

  /**
   * Stops every daemon started on this home that still runs, then removes the
   * home. A daemon that has not exited 60 s after SIGTERM is killed, and close
   * fails saying so: a teardown must end, and a daemon that ignores SIGTERM is
   * a bug to see, not a suite that hangs.
   */
  async close(): Promise<void> {
    const stuck: number[] = [];
    await Promise.all(
      this.daemons.splice(0).map(async (daemon) => {
        const killer = setTimeout(() => {
          stuck.push(daemon.child.pid ?? -1);
          daemon.child.kill('SIGKILL');
        }, 60_000);
        await daemon.stop();
        clearTimeout(killer);
      }),
    );
    await this.remove();
    if (stuck.length > 0) throw new Error(`daemon ${stuck.join(', ')} did not exit within 60 s of SIGTERM; killed (home ${this.root})`);
  }
}

