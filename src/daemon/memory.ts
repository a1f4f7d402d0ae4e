import v8 from 'node:v8';

/** V8's own default for --semi-space-growth-factor. */
const DEFAULT_GROWTH_FACTOR = 2;

/**
 * Hold V8's young generation at its initial size (1 MB per semi-space) while
 * the daemon starts. Loading thousands of definitions is one long burst of
 * allocation that would grow the semi-spaces to 16 MB each, and they stay
 * reserved afterwards: about 30 MB of resident memory of an idle daemon, a
 * quarter of it with 1,000 agents (README.md, Benchmark: P4).
 * `--max-semi-space-size` only works on node's command line, which the daemon
 * does not own (systemd units, pm2, `node dist/.../main.js`); the growth factor
 * is read each time V8 would grow the space, so it can be set here. The
 * returned function restores the default once start-up is over: a small young
 * generation costs a run's steps measurable CPU (more, smaller scavenges; the
 * P1 profile), so the space may grow again once there is work to do.
 */
export function youngGenerationSmallWhileStarting(): () => void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return () => v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}
