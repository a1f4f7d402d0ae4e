import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../store/host.js';
import type { ConfinedSpawn } from './sandbox.js';
import { findOnPath } from './sandbox.js';
import type { Logger } from 'pino';

/**
 * One cgroup per unsandboxed agent process and tool call, where the daemon has a
 * cgroup of its own it may write (cgroup v2; systemd's Delegate=yes; README
 * "Security", "Nothing outlives its run"). The process joins it before its
 * command starts (a shell writes its own pid to cgroup.procs, then execs), so
 * everything it starts is in it, `setsid` or not; when the process ends the
 * cgroup is killed whole and removed. Without such a cgroup, spawns are as
 * before and the daemon says so once at start.
 */

/** Where per-run cgroups go, or why there are none. */
export interface CgroupBase {
  dir: string | null;
  reason: string;
}

/** The process-wide setting: found once, when agentd.yaml first loads (setUpRunCgroups). */
let runBase: CgroupBase | null = null;

/**
 * Names this daemon's home in its run cgroups' names. Daemons of other homes
 * can share one cgroup (started from one shell, one pm2): a daemon clears only
 * what a dead daemon of its own home left, as its claims kill only its own
 * home's orphans.
 */
let homeTag = '';

/** The tag of a home in its run cgroups' names: 8 hex digits of its path's hash. */
export function homeTagOf(home: string): string {
  return createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 8);
}

/**
 * Pure: whose run cgroup `entry` is (`agentd-<home tag>-<pid>-<n>`), or null when
 * it is not one. Names without a tag (`agentd-<pid>-<n>`, before tags) belong to any home.
 */
export function runCgroupOwner(entry: string): { home: string | null; pid: number } | null {
  const tagged = /^agentd-([0-9a-f]{8})-(\d+)-\d+$/.exec(entry);
  if (tagged) return { home: tagged[1]!, pid: Number(tagged[2]) };
  const untagged = /^agentd-(\d+)-\d+$/.exec(entry);
  return untagged ? { home: null, pid: Number(untagged[1]) } : null;
}

/** The cgroup v2 path of this process: the `0::` line of /proc/self/cgroup. */
export function unifiedPath(procSelfCgroup: string): string | null {
  const line = procSelfCgroup.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3).trim() || '/' : null;
}

/** Each cgroup2 mount: where it is and which cgroup is its root (/proc/self/mountinfo). */
export function cgroup2Mounts(mountinfo: string): { mountPoint: string; root: string }[] {
  const found: { mountPoint: string; root: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right?.startsWith('cgroup2 ')) continue;
    const fields = left!.split(' ');
    found.push({ root: unescapeMount(fields[3]!), mountPoint: unescapeMount(fields[4]!) });
  }
  return found;
}

/** The folders that show `cgroupPath`, one per cgroup2 mount whose root contains it. */
export function cgroupDirs(cgroupPath: string, mounts: { mountPoint: string; root: string }[]): string[] {
  return mounts.filter((m) => m.root === '/' || cgroupPath === m.root || cgroupPath.startsWith(`${m.root}/`)).map((m) => path.join(m.mountPoint, path.relative(m.root, cgroupPath)));
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** This daemon's own cgroup, if it can make children in it (a probe child is made and removed). */
export function findCgroupBase(procDir = '/proc/self'): CgroupBase {
  let own: string | null;
  let dirs: string[];
  try {
    own = unifiedPath(fs.readFileSync(path.join(procDir, 'cgroup'), 'utf8'));
    dirs = own === null ? [] : cgroupDirs(own, cgroup2Mounts(fs.readFileSync(path.join(procDir, 'mountinfo'), 'utf8')));
  } catch (err) {
    return { dir: null, reason: `cannot read ${procDir}/cgroup or mountinfo (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  if (own === null) return { dir: null, reason: 'this process is in no cgroup v2 hierarchy' };
  if (dirs.length === 0) return { dir: null, reason: `cgroup2 is not mounted where this process can see its cgroup ${own}` };
  const failures: string[] = [];
  for (const dir of dirs) {
    const probe = path.join(dir, `agentd-probe-${process.pid}`);
    try {
      fs.mkdirSync(probe);
      fs.rmdirSync(probe);
      return { dir, reason: 'the daemon may create cgroups in its own' };
    } catch (err) {
      failures.push(`${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return { dir: null, reason: `the daemon's cgroup is not writable (${failures.join('; ')}); under systemd set Delegate=yes and ProtectControlGroups=no` };
}

/** What a shell may add to the environment it passes on. */
const SHELL_VARIABLES = ['PWD', 'OLDPWD', 'SHLVL', '_'];

/** A cgroup of one process's lifetime. */
export class RunCgroup {
  private constructor(readonly dir: string) {}

  private static seq = 0;

  /** A new empty cgroup under `base`, named after this daemon and its home so a later start can tell stale ones. */
  static create(base: string): RunCgroup {
    const dir = path.join(base, homeTag ? `agentd-${homeTag}-${process.pid}-${++RunCgroup.seq}` : `agentd-${process.pid}-${++RunCgroup.seq}`);
    fs.mkdirSync(dir);
    return new RunCgroup(dir);
  }

  /** An existing cgroup folder (a stale one left by a dead daemon). */
  static adopt(dir: string): RunCgroup {
    return new RunCgroup(dir);
  }

  /**
   * The same spawn, joining this cgroup first. A switch of account moves after the join
   * (setpriv), so such a process cannot leave: another account may not write the
   * daemon's cgroup files. null: the account switch needs setpriv, which is missing.
   */
  wrap(run: ConfinedSpawn, setpriv: string | null, env: Record<string, string>): ConfinedSpawn | null {
    let command = [run.file, ...run.args];
    if (run.uid !== undefined) {
      if (setpriv === null) return null;
      command = [setpriv, '--reuid', String(run.uid), '--regid', String(run.gid), '--clear-groups', '--', ...command];
    }
    // The shell exports variables of its own (PWD; bash also SHLVL and _): the command gets exactly `env`.
    const own = SHELL_VARIABLES.filter((name) => !(name in env));
    // $0 is what the shell names itself in an error (an interpreter a shebang names that is not there): agentd.
    const script = `echo $$ > "$1" && shift && ${own.length > 0 ? `unset ${own.join(' ')} && ` : ''}exec "$@"`;
    return { file: '/bin/sh', args: ['-c', script, 'agentd', path.join(this.dir, 'cgroup.procs'), ...command] };
  }

  /**
   * SIGKILL everything in it now: cgroup.kill (Linux 5.14+), else each pid it
   * lists. Nothing when it is empty, as it is at the end of most runs: a write
   * to cgroup.kill holds the event loop for milliseconds even then (8.5 ms per
   * run in a profile of P2c, README.md "Benchmark"), where cgroup.events is
   * read in microseconds.
   */
  kill(): void {
    if (!this.populated()) return;
    try {
      fs.writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
      return;
    } catch {
      // no cgroup.kill: signal each process, a few passes for ones forked meanwhile
    }
    for (let pass = 0; pass < 10; pass++) {
      const pids = this.pids();
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }

  /**
   * Kill what is left, then remove the cgroup. `emptied`: nothing of it runs
   * any more. `removed`: after that, whether the folder is gone. The rmdir
   * goes through the thread pool, as the run need not wait for it: the kernel
   * takes milliseconds over it (9.8 ms per run in a profile of P2c, README.md
   * "Benchmark"), which as an rmdirSync held the event loop.
   */
  end(): { emptied: Promise<void>; removed: Promise<boolean> } {
    const emptied = this.emptied();
    const removed = emptied.then(
      () => fs.promises.rmdir(this.dir).then(
        () => true,
        (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
      ),
      () => false,
    );
    return { emptied, removed };
  }

  private async emptied(): Promise<void> {
    this.kill();
    for (let waited = 0; waited < 5000 && this.populated(); waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (waited % 500 === 0) this.kill();
    }
  }

  /** Remove it while nothing ever joined it. */
  removeEmpty(): void {
    try {
      fs.rmdirSync(this.dir);
    } catch {
      // already gone
    }
  }

  private pids(): number[] {
    try {
      return fs.readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  private populated(): boolean {
    try {
      return /^populated 1$/m.test(fs.readFileSync(path.join(this.dir, 'cgroup.events'), 'utf8'));
    } catch {
      return false;
    }
  }
}

/** Remove the run cgroups a dead daemon of this home left under `base` (killing what is still in them); how many. */
export async function removeStaleCgroups(base: string): Promise<number> {
  let entries: string[];
  try {
    entries = fs.readdirSync(base);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const entry of entries) {
    const owner = runCgroupOwner(entry);
    if (!owner || (owner.home !== null && owner.home !== homeTag) || pidAlive(owner.pid)) continue;
    if (await RunCgroup.adopt(path.join(base, entry)).end().removed) removed++;
  }
  return removed;
}

/** Find the base once per process, say once what it means, and clear what a dead daemon left. */
export function setUpRunCgroups(log: Logger, home: string): void {
  if (runBase !== null) return;
  homeTag = homeTagOf(home);
  const found = findCgroupBase();
  runBase = found;
  if (found.dir === null) {
    log.info({ reason: found.reason }, 'no cgroup for runs: a process an unsandboxed agent or tool starts with setsid can outlive its run');
    return;
  }
  log.info({ cgroup: found.dir }, 'unsandboxed agents and tools each run in a cgroup of their own, killed whole when they end');
  const dir = found.dir;
  void removeStaleCgroups(dir).then(
    (removed) => {
      if (removed > 0) log.info({ cgroups: removed, cgroup: dir }, 'run cgroups a dead daemon of this home left were killed and removed');
    },
    (err: unknown) => log.warn({ err, cgroup: dir }, 'stale run cgroups not removed'),
  );
}


/**
 * `run` in a fresh cgroup when the daemon has a writable one and the process is not
 * sandboxed (a sandbox's PID namespace already dies with it). The cgroup is null when
 * there is none; the spawn is then `run` unchanged.
 */
export function inRunCgroup(run: ConfinedSpawn, sandboxed: boolean, env: Record<string, string>): { run: ConfinedSpawn; cgroup: RunCgroup | null } {
  if (sandboxed || !runBase?.dir) return { run, cgroup: null };
  let cgroup: RunCgroup;
  try {
    cgroup = RunCgroup.create(runBase.dir);
  } catch {
    return { run, cgroup: null }; // the base went away or filled up (cgroup.max.descendants): as without one
  }
  // setpriv is looked for (an access(2) per PATH folder, on the main thread) only for a switch of account.
  const wrapped = cgroup.wrap(run, run.uid !== undefined ? findOnPath('setpriv') : null, env);
  if (wrapped === null) {
    cgroup.removeEmpty();
    return { run, cgroup: null };
  }
  return { run: wrapped, cgroup };
}
