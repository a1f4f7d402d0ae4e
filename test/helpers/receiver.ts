import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a webhook receiver got. */
export interface Received {
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** How the receiver answers the next request: a status, or never (the connection hangs). */
export type Answer = number | 'hang';

/**
 * A webhook receiver on 127.0.0.1: records every POST and answers as
 * `answer(n)` says for the n-th request (0-based). Tests await requests, never sleep.
 */
export class Receiver {
  readonly requests: Received[] = [];
  private readonly events = new EventEmitter();
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(
    private readonly server: http.Server,
    public answer: (n: number) => Answer,
  ) {}

  static async start(answer: (n: number) => Answer = () => 200): Promise<Receiver> {
    let self: Receiver | null = null;
    const server = http.createServer((req, res) => self!.onRequest(req, res));
    self = new Receiver(server, answer);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let text = '';
    req.setEncoding('utf8').on('data', (c: string) => (text += c));
    req.on('end', () => {
      const n = this.requests.length;
      this.requests.push({ headers: req.headers, body: JSON.parse(text) as unknown });
      const answer = this.answer(n);
      if (answer === 'hang') this.hanging.add(res);
      else res.writeHead(answer).end();
      this.events.emit('request');
    });
  }

  /** Resolves once `count` requests have arrived. */
  until(count: number, timeoutMs = 20_000): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver: ${this.requests.length} of ${count} requests arrived`)), timeoutMs);
      const check = () => {
        if (this.requests.length < count) return;
        clearTimeout(timer);
        this.events.off('request', check);
        resolve();
      };
      this.events.on('request', check);
    });
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
