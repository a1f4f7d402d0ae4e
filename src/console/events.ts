import fs from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { listDir } from '../store/durable.js';
import { isReservedAgentName, isValidName, type HomePaths } from '../store/paths.js';
import type { ConsoleView } from './data.js';

/** How often the home is checked for changes while a console is open, ms. */
const CHECK_MS = 1000;
/** A comment line that keeps proxies from closing an idle stream, ms. */
const HEARTBEAT_MS = 15_000;

type Topic = 'items' | 'runs' | 'live' | 'dead_letters';

/**
 * Server-sent events for the console: `change` with the topics that changed
 * (outbox files, history, runs in flight and circuits, dead letters), so the
 * page fetches again only what moved. The home is checked once a second,
 * and only while a page is listening.
 */
export class ChangeFeed {
  private readonly clients = new Set<http.ServerResponse>();
  private last: Record<Topic, string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly paths: HomePaths,
    private readonly view: ConsoleView,
    private readonly log: Logger,
  ) {}

  subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    req.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.pause();
    });
    if (!this.timer) {
      this.timer = setInterval(() => this.poke(), CHECK_MS);
      this.heartbeat = setInterval(() => this.broadcast(': ping\n\n'), HEARTBEAT_MS);
      this.timer.unref();
      this.heartbeat.unref();
    }
  }

  /** Check now (after a change made here). Never throws. */
  poke(): void {
    if (this.clients.size === 0 || this.checking) return;
    this.checking = true;
    this.check()
      .catch((err: unknown) => this.log.warn({ err }, 'console change check failed'))
      .finally(() => (this.checking = false));
  }

  close(): void {
    this.pause();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private pause(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.timer = this.heartbeat = null;
    this.last = null;
  }

  private async check(): Promise<void> {
    const now = await this.fingerprints();
    const before = this.last;
    this.last = now;
    if (!before) return;
    const changed = (Object.keys(now) as Topic[]).filter((t) => now[t] !== before[t]);
    if (changed.length > 0) this.broadcast(`event: change\ndata: ${JSON.stringify({ topics: changed })}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }

  private async fingerprints(): Promise<Record<Topic, string>> {
    const outbox = await this.stats(this.paths.outboxRoot(), (agent) => this.paths.outboxFile(agent));
    const runs = await this.stats(this.paths.stateRoot(), (agent) => this.paths.history(agent));
    const snapshot = await this.view.snapshot();
    const live = JSON.stringify([
      snapshot.runs.map((r) => [r.run_id, r.steps, r.tool_calls, r.cost_usd]),
      snapshot.circuits.map((c) => [c.model, c.state]),
      this.view.toolCircuits().map((c) => [c.model, c.state]),
      snapshot.agents,
    ]);
    const deadLetters: string[] = [];
    for (const agent of await listDir(this.paths.deadLetterRoot())) {
      if (isValidName(agent)) deadLetters.push(`${agent}:${(await listDir(path.join(this.paths.deadLetterRoot(), agent))).sort().join(',')}`);
    }
    return { items: outbox, runs, live, dead_letters: deadLetters.sort().join('|') };
  }

  /** `agent:mtime:size` of one file per agent folder under `root`. */
  private async stats(root: string, fileOf: (agent: string) => string): Promise<string> {
    const parts: string[] = [];
    for (const agent of (await listDir(root)).sort()) {
      if (!isValidName(agent) || isReservedAgentName(agent)) continue;
      const stat = await fs.stat(fileOf(agent)).catch(() => null);
      if (stat) parts.push(`${agent}:${stat.mtimeMs}:${stat.size}`);
    }
    return parts.join('|');
  }
}
