/**
 * A real network filesystem for the shared-home tests: an sshd on loopback
 * (its own config, host key and client key in a temp folder; nothing of the
 * system's ssh setup is used or changed) and sshfs (FUSE) mounts of one
 * folder, one per "host". Needs root, /dev/fuse, sshd and sshfs (.ci/run
 * installs openssh-server and sshfs).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './support.js';

/** Why sshfs cannot be used here, or null when it can. */
export function sshfsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'sshfs mounts and an sshd need root (CI runs as root)';
  if (!fsSync.existsSync('/dev/fuse')) return 'FUSE is not available (/dev/fuse is missing)';
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/sshfs', '/usr/bin/ssh-keygen']) {
    if (!fsSync.existsSync(bin)) return `${bin} is not installed (apt-get install -y openssh-server sshfs)`;
  }
  return null;
}

/** Resolves once something accepts connections on 127.0.0.1:port. */
async function untilListening(port: number, child: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${await fs.readFile(log, 'utf8').catch(() => '')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('sshd did not start listening');
}

export interface SharedFs {
  /** The folder both mounts show. */
  share: string;
  /** One mount point per host. */
  mounts: string[];
  close(): Promise<void>;
}

export async function mountShared(hosts: number): Promise<SharedFs> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-sshfs-'));
  const share = path.join(dir, 'share');
  await fs.mkdir(share);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  await fs.copyFile(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'Subsystem sftp internal-sftp',
  ].join('\n');
  await fs.writeFile(path.join(dir, 'sshd_config'), config + '\n');
  // sshd refuses to start without its privilege separation folder; an empty folder under /run, gone at reboot.
  await fs.mkdir('/run/sshd', { recursive: true });
  const log = path.join(dir, 'sshd.log');
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-f', path.join(dir, 'sshd_config'), '-E', log], { stdio: 'ignore' });
  const mounts: string[] = [];
  const close = async () => {
    for (const m of mounts) {
      try {
        execFileSync('fusermount', ['-u', '-z', m]);
      } catch {
        // already gone
      }
    }
    sshd.kill('SIGTERM');
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    await untilListening(port, sshd, log);
    for (let i = 0; i < hosts; i++) {
      const mount = path.join(dir, `host-${i}`);
      await fs.mkdir(mount);
      // No caching: every read goes to the server, as on two machines.
      const options = [
        `IdentityFile=${path.join(dir, 'client_key')}`,
        'StrictHostKeyChecking=no',
        'UserKnownHostsFile=/dev/null',
        'cache=no',
        'dir_cache=no',
        'attr_timeout=0',
        'entry_timeout=0',
        'negative_timeout=0',
      ].join(',');
      execFileSync('sshfs', ['-p', String(port), '-o', options, `root@127.0.0.1:${share}`, mount]);
      mounts.push(mount);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { share, mounts, close };
}
