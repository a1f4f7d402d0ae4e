import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FAST_CONFIG, inHome } from './helpers/support.js';
import type { TestHome } from './helpers/home.js';
import { doneOutput } from './helpers/byo.js';

/**
 * A plain agent under `run_as` (README "Plain agents", "Security"): its
 * $AGENTD_TASK_FILE and $AGENTD_RESUME_FILE are readable by that account,
 * closed to others, and removed when the run ends.
 */

const isRoot = process.getuid?.() === 0;

/** Reads both files as the account and reports what it saw. */
const AGENT = `cat > /dev/null
goal=$(sed -n 's/.*"goal": *"\\([^"]*\\)".*/\\1/p' "$AGENTD_TASK_FILE")
resume=false
if [ -r "$AGENTD_RESUME_FILE" ] && cat "$AGENTD_RESUME_FILE" > /dev/null; then resume=true; fi
printf '{"goal":"%s","uid":%s,"resume":%s,"file":"%s","mode":"%s","task_file":"%s"}\\n' "$goal" "$(id -u)" "$resume" "$AGENTD_TASK_FILE" "$(stat -c %a "$(dirname "$AGENTD_TASK_FILE")")" "$(stat -c '%u %a' "$AGENTD_TASK_FILE")"
`;

/** Reads the task from stdin only, and reports whether $AGENTD_TASK_FILE was readable too. */
const STDIN_AGENT = `goal=$(sed -n 's/.*"goal": *"\\([^"]*\\)".*/\\1/p')
readable=false
if cat "$AGENTD_TASK_FILE" > /dev/null 2>&1; then readable=true; fi
printf '{"goal":"%s","file_readable":%s}\\n' "$goal" "$readable"
`;

/** setpriv arguments that start the daemon as root without CAP_CHOWN, with these supplementary groups (none: cleared). */
function withoutChown(groups: number[]): string[] {
  const caps = ['--bounding-set', '-chown', '--inh-caps', '-chown'];
  return ['setpriv', ...caps, ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups']), '--'];
}

describe('a plain agent under run_as', { skip: isRoot ? false : 'switching users needs root; run as root to test it' }, () => {
  const user = `agentd-p${process.pid}`;
  let uid = -1;
  let gid = -1;
  after(() => {
    if (uid >= 0) execFileSync('userdel', [user]);
  });
  const account = () => {
    if (uid < 0) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
      uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    }
    return { uid, gid };
  };

  /** A home with one plain agent `plainly` that runs `script` as the account. */
  async function plainHome(home: TestHome, script: string): Promise<void> {
    const dir = home.path('agents', 'plainly');
    await fs.mkdir(path.join(dir, 'inbox'), { recursive: true });
    await fs.writeFile(path.join(dir, 'agent.sh'), script);
    await home.write('agents/plainly/agent.json', { version: '1', protocol: 'none', command: ['sh', 'agent.sh'], model: 'mock/echo', env: ['PATH'], run_as: user, sandbox: false });
    await fs.chmod(home.root, 0o711);
    await fs.chmod(home.path('agents'), 0o711);
    execFileSync('chown', ['-R', `${user}:`, dir]);
  }

  it('reads $AGENTD_TASK_FILE and $AGENTD_RESUME_FILE as the account; the folder is closed to others and removed after the run', async () => {
    const { uid } = account();
    await inHome(FAST_CONFIG, async (home) => {
      await plainHome(home, AGENT);
      await home.inbox('plainly', 'r1', { goal: 'read-me' });
      const daemon = home.startDaemon();
      try {
        const output = (await doneOutput(home, 'plainly', 'r1')) as { goal: string; uid: number; resume: boolean; file: string; mode: string; task_file: string };
        assert.deepEqual({ goal: output.goal, uid: output.uid, resume: output.resume, mode: output.mode, task_file: output.task_file }, { goal: 'read-me', uid, resume: true, mode: '750', task_file: `${uid} 600` });
        await assert.rejects(fs.access(path.dirname(output.file)), 'the daemon removed the run\'s folder');
      } finally {
        await daemon.stop();
      }
    });
  });

  it('a daemon without CAP_CHOWN that is in the account\'s group shares the files by group (0640, still the daemon\'s own)', async () => {
    const { uid, gid } = account();
    await inHome(FAST_CONFIG, async (home) => {
      await plainHome(home, AGENT);
      await home.inbox('plainly', 'g1', { goal: 'by-group' });
      const daemon = home.startDaemon({}, [], withoutChown([gid]));
      try {
        const output = (await doneOutput(home, 'plainly', 'g1')) as { goal: string; uid: number; resume: boolean; mode: string; task_file: string };
        assert.deepEqual({ goal: output.goal, uid: output.uid, resume: output.resume, mode: output.mode, task_file: output.task_file }, { goal: 'by-group', uid, resume: true, mode: '750', task_file: '0 640' });
        assert.equal(daemon.logs.filter((l) => l.msg === 'run_as account cannot read the task file; it has the task on stdin').length, 0);
      } finally {
        await daemon.stop();
      }
    });
  });

  it('a daemon that can neither chown nor share by group warns, names what it needs, and the agent still has its task on stdin', async () => {
    account();
    await inHome(FAST_CONFIG, async (home) => {
      await plainHome(home, STDIN_AGENT);
      await home.inbox('plainly', 'n1', { goal: 'on-stdin' });
      const daemon = home.startDaemon({}, [], withoutChown([]));
      try {
        const output = await doneOutput(home, 'plainly', 'n1');
        assert.deepEqual(output, { goal: 'on-stdin', file_readable: false });
        const warning = daemon.logs.find((l) => l.msg === 'run_as account cannot read the task file; it has the task on stdin');
        assert.ok(warning, 'the daemon warns that the account cannot read $AGENTD_TASK_FILE');
        assert.match(String(warning.problem), /needs CAP_CHOWN or membership of that group/);
      } finally {
        await daemon.stop();
      }
    });
  });
});
