/**
 * The frozen persisted formats (test/fixtures/README.md): a home as a past
 * version of agentd left it, copied into a test's own home so that the
 * current code reads, verifies and resumes it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestHome } from './home.js';
import { FIXTURES, SCRIPTED_AGENT } from './paths.js';

/** test/fixtures/<version>/ */
export function fixtureDir(version: 'v1'): string {
  return path.join(FIXTURES, version);
}

/**
 * Copies test/fixtures/<version>/home/ into `home`. Its agents run the
 * scripted test agent (the frozen definitions name it by a relative path),
 * and its `standin` provider points at `providerUrl` when one is given.
 * Nothing else is touched: every file under state/ and outbox/ stays as frozen.
 */
export async function copyFixtureHome(home: TestHome, version: 'v1', providerUrl?: string): Promise<void> {
  await fs.cp(path.join(fixtureDir(version), 'home'), home.root, { recursive: true, force: true });
  for (const agent of await fs.readdir(home.path('agents'))) {
    const file = home.path('agents', agent, 'agent.json');
    const definition = JSON.parse(await fs.readFile(file, 'utf8')) as { command: string[] };
    definition.command = ['node', SCRIPTED_AGENT];
    await fs.writeFile(file, JSON.stringify(definition, null, 2));
  }
  if (providerUrl) {
    const config = await fs.readFile(home.path('agentd.yaml'), 'utf8');
    await fs.writeFile(home.path('agentd.yaml'), config.replace('http://127.0.0.1:9/v1', providerUrl));
  }
}
