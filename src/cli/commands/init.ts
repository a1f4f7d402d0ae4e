import path from 'node:path';
import type { Command } from 'commander';
import { ensureDir, exists, writeFileDurable } from '../../store/durable.js';
import { writeInboxTask } from '../../store/inbox-writer.js';
import { HomePaths } from '../../store/paths.js';
import { ensureHomeSdkLink } from '../../store/sdk-link.js';
import { PACKAGE_ROOT } from '../../config/installation.js';
import { EXIT, runCommand } from '../common.js';


const DAEMON_CONFIG = `# agentd daemon config. Every key is optional; the README lists them all.
#
# Models are named <provider>/<model>. The "mock" provider is embedded: mock/<anything>
# answers with no key and no network, which is what the example agent uses.
#
# A real provider: uncomment, put the key in a file only the daemon's user can read
# (chmod 600; never in the home), and name e.g. openai/gpt-4.1-mini as an agent's model.
# Under systemd, api_key_credential: openai reads LoadCredential=openai:... instead.
# providers:
#   openai:
#     kind: openai
#     base_url: https://api.openai.com/v1
#     api_key_file: /etc/agentd/keys/openai
#     timeout: 60s
#
# Prices, for cost accounting and cost budgets (USD per million tokens):
# models:
#   openai/gpt-4.1-mini: { input_usd_per_mtok: 0.4, output_usd_per_mtok: 1.6 }

# What every agent gets unless its definition says otherwise.
defaults:
  budget:
    max_steps: 20
    max_tool_calls: 20
    max_runtime: 10m
    max_tokens: 100000
    max_cost_usd: 0.5
    daily_cost_usd: 5
  freshness:
    task_max_age: 4h
  retry:
    attempts: 3
    base_delay: 1s
    max_delay: 30s
  max_attempts: 3

max_parallel_runs: 4
# http: 127.0.0.1:9464   # health endpoint of \`agentd start\`
`;

const AGENT_DEFINITION = `# An example agent: one model call on the embedded mock provider, no key needed.
version: "1"
description: Answers its task's goal in one sentence
command: ["node", "agent.js"]
model: mock/echo
budget:
  max_steps: 3
  max_tool_calls: 0
  max_runtime: 30s
  max_tokens: 2000
  max_cost_usd: 0.01
`;

const AGENT_SOURCE = `// agentd/sdk resolves through node_modules/agentd in the home, a link to the
// agentd installation that the daemon (and \`agentd init\`) makes when it is absent.
import { runAgent } from 'agentd/sdk';

// One model call with the task's goal, a checkpoint, and the reply as the result.
runAgent(async (ctx) => {
  const reply = await ctx.model({
    messages: [
      { role: 'system', content: 'You are a friendly assistant. Answer in one sentence.' },
      { role: 'user', content: ctx.task.goal },
    ],
    max_tokens: 200,
  });
  await ctx.checkpoint({ answered: true, model: reply.model });
  return { answer: reply.content };
});
`;

const HELLO_TASK = { id: 'hello', goal: 'Say hello to the person on call' };

export function registerInit(program: Command): void {
  program
    .command('init [dir]')
    .description('create a new home with an example agent (default: the current directory)')
    .action((dir: string | undefined) => runCommand(() => init(dir ?? process.cwd())));
}

async function init(dir: string): Promise<number> {
  const paths = new HomePaths(path.resolve(dir));
  for (const taken of [...paths.daemonConfigCandidates(), paths.agentDir('example')]) {
    if (await exists(taken)) {
      process.stderr.write(`agentd: ${taken} already exists; init never overwrites (choose an empty folder)\n`);
      return EXIT.checkFailed;
    }
  }
  if (!(await exists(path.join(PACKAGE_ROOT, 'dist', 'src', 'sdk', 'index.js')))) process.stderr.write(`agentd: warning: the SDK is not built in ${PACKAGE_ROOT}; build agentd first (npm run build)\n`);

  const agentDir = paths.agentDir('example');
  await writeFileDurable(paths.daemonConfigCandidates()[0]!, DAEMON_CONFIG);
  await writeFileDurable(paths.definitionCandidates('example')[0]!, AGENT_DEFINITION);
  await writeFileDurable(paths.inside(agentDir, 'agent.js'), AGENT_SOURCE);
  await writeInboxTask(paths, 'example', HELLO_TASK.id, HELLO_TASK);
  await ensureDir(paths.stateRoot());
  await ensureDir(paths.outboxRoot());
  const linked = await ensureHomeSdkLink(paths);
  if (linked.kind === 'failed') process.stderr.write(`agentd: warning: could not link ${paths.sdkLink()} to ${PACKAGE_ROOT} (${linked.problem}); agents importing agentd/sdk will fail\n`);

  const cd = path.relative(process.cwd(), paths.root);
  process.stdout.write(
    [
      `created an agentd home in ${paths.root}`,
      '',
      'next steps:',
      ...(cd ? [`  cd ${/\s/.test(cd) ? JSON.stringify(cd) : cd}`] : []),
      '  agentd validate                      # check every file',
      '  agentd run example                   # run the queued hello task once, in the foreground',
      '  agentd start --pretty                # or run the daemon',
      '  agentd submit example --goal "..."   # queue another task',
      '  agentd status                        # what is going on',
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}
