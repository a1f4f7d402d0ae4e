import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FAST_CONFIG, inHome } from './helpers/support.js';
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
printf '{"goal":"%s","uid":%s,"resume":%s,"file":"%s","mode":"%s"}\\n' "$goal" "$(id -u)" "$resume" "$AGENTD_TASK_FILE" "$(stat -c %a "$(dirname "$AGENTD_TASK_FILE")")"
`;

describe('a plain agent under run_as', { skip: isRoot ? false : 'switching users needs root; run as root to test it' }, () => {
  const user = `agentd-p${process.pid}`;
  let uid = -1;
  after(() => {
    if (uid >= 0) execFileSync('userdel', [user]);
  });

  it('reads $AGENTD_TASK_FILE and $AGENTD_RESUME_FILE as the account; the folder is closed to others and removed after the run', async () => {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    await inHome(FAST_CONFIG, async (home) => {
      const dir = home.path('agents', 'plainly');
      await fs.mkdir(path.join(dir, 'inbox'), { recursive: true });
      await fs.writeFile(path.join(dir, 'agent.sh'), AGENT);
      await home.write('agents/plainly/agent.json', { version: '1', protocol: 'none', command: ['sh', 'agent.sh'], model: 'mock/echo', env: ['PATH'], run_as: user, sandbox: false });
      await fs.chmod(home.root, 0o711);
      await fs.chmod(home.path('agents'), 0o711);
      execFileSync('chown', ['-R', `${user}:`, dir]);
      await home.inbox('plainly', 'r1', { goal: 'read-me' });
      const daemon = home.startDaemon();
      try {
        const output = (await doneOutput(home, 'plainly', 'r1')) as { goal: string; uid: number; resume: boolean; file: string; mode: string };
        assert.deepEqual({ goal: output.goal, uid: output.uid, resume: output.resume, mode: output.mode }, { goal: 'read-me', uid, resume: true, mode: '750' });
        await assert.rejects(fs.access(path.dirname(output.file)), 'the daemon removed the run\'s folder');
      } finally {
        await daemon.stop();
      }
    });
  });
});
