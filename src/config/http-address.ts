import net from 'node:net';

/** Where /healthz and /metrics listen. */
export interface HttpAddress {
  /** As given to `listen`: an IPv6 address without its brackets. */
  host: string;
  port: number;
}

export type HttpAddressCheck = { ok: true; address: HttpAddress } | { ok: false; problem: string };

/** 127.0.0.0/8, ::1 and `localhost`: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (net.isIPv4(bare)) return bare.startsWith('127.');
  if (net.isIPv6(bare)) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Parse `host:port` (`[::1]:9464` for IPv6) and refuse an address other
 * machines could reach unless `allowRemote`: the endpoints have no
 * authentication, so exposing them must be a deliberate choice. Pure.
 */
export function checkHttpAddress(text: string, allowRemote: boolean, source: string): HttpAddressCheck {
  const match = /^(\[[^\]]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65_535) return { ok: false, problem: `${source} ${JSON.stringify(text)} must be host:port, e.g. 127.0.0.1:9464` };
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
  if (!allowRemote && !isLoopbackHost(host)) {
    return {
      ok: false,
      problem:
        `${source} ${JSON.stringify(text)} is not a loopback address: /healthz and /metrics have no authentication, ` +
        'so they listen on 127.0.0.1 (or ::1, localhost) only. Put a proxy in front, or pass --http-allow-remote ' +
        '(http_allow_remote: true in agentd.yaml) to listen there anyway',
    };
  }
  return { ok: true, address: { host, port } };
}
