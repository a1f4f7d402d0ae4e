// pm2 ecosystem file for agentd: pm2 start deploy/ecosystem.config.cjs
// kill_timeout must exceed the agents' stop_grace (default 5 s) plus the 2 s
// between SIGTERM and SIGKILL, so a restart lets every run hand off cleanly.
// (A shorter one is still safe, only less graceful: agentd survives SIGKILL.)
module.exports = {
  apps: [
    {
      name: 'agentd',
      script: 'dist/src/cli/main.js',
      args: ['start', '--home', process.env.AGENTD_HOME || '.'],
      cwd: __dirname + '/..',
      interpreter: 'node',
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      kill_timeout: 10000,
      restart_delay: 2000,
      max_restarts: 50,
      merge_logs: true,
    },
  ],
};
