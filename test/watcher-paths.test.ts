import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyPath, ignoredPath, inboxFileEvent } from '../src/daemon/watcher.js';
import { HomePaths } from '../src/store/paths.js';

/**
 * What the watcher makes of every kind of path in a home: the event it
 * sends, whether it descends, and the inbox index event. The watcher asks
 * the store what a path is (store/paths.ts, homePlace); this table was taken
 * from the watcher before it did, so the answers stay the same, except one
 * deliberate change (issue 15): a file directly in an agent folder or an
 * outbox folder, and an inbox entry that is not a task file, is no longer
 * watched on its own; its folder's watch names it (folderFileEvent below). And
 * a file put directly in outbox/ is not watched, as one in agents/ is not.
 * And a second (P7): chokidar no longer descends into an inbox at all; each
 * inbox has an fs.watch of its own (daemon/inbox-watch.ts).
 * Columns: path under /h, isDirectory, classifyPath, ignoredPath, inboxFileEvent.
 */
type Row = [string, boolean | null, unknown, boolean, unknown];
const TABLE: Row[] = [
  ["", true, null, false, null],
  ["", false, null, false, null],
  ["", null, null, false, null],
  ["agentd.yaml", true, {"kind": "daemon_config"}, false, null],
  ["agentd.yaml", false, {"kind": "daemon_config"}, false, null],
  ["agentd.yaml", null, {"kind": "daemon_config"}, false, null],
  ["agentd.yml", true, {"kind": "daemon_config"}, false, null],
  ["agentd.yml", false, {"kind": "daemon_config"}, false, null],
  ["agentd.yml", null, {"kind": "daemon_config"}, false, null],
  ["agentd.json", true, {"kind": "daemon_config"}, false, null],
  ["agentd.json", false, {"kind": "daemon_config"}, false, null],
  ["agentd.json", null, {"kind": "daemon_config"}, false, null],
  ["agentd.toml", true, null, true, null],
  ["agentd.toml", false, null, true, null],
  ["agentd.toml", null, null, true, null],
  ["README.md", true, null, true, null],
  ["README.md", false, null, true, null],
  ["README.md", null, null, true, null],
  ["agents", true, null, false, null],
  ["agents", false, null, false, null],
  ["agents", null, null, false, null],
  ["outbox", true, null, false, null],
  ["outbox", false, null, false, null],
  ["outbox", null, null, false, null],
  ["state", true, null, true, null],
  ["state", false, null, true, null],
  ["state", null, null, true, null],
  [".git", true, null, true, null],
  [".git", false, null, true, null],
  [".git", null, null, true, null],
  ["node_modules", true, null, true, null],
  ["node_modules", false, null, true, null],
  ["node_modules", null, null, true, null],
  ["agents/a", true, {"kind": "agent_folder", "agent": "a"}, false, null],
  ["agents/a", false, {"kind": "agent_folder", "agent": "a"}, true, null],
  ["agents/a", null, {"kind": "agent_folder", "agent": "a"}, false, null],
  ["agents/.a", true, {"kind": "agent_folder", "agent": ".a"}, true, null],
  ["agents/.a", false, {"kind": "agent_folder", "agent": ".a"}, true, null],
  ["agents/.a", null, {"kind": "agent_folder", "agent": ".a"}, true, null],
  ["agents/a/agent.yaml", true, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.yaml", false, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.yaml", null, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.json", true, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.json", false, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.json", null, {"kind": "definition", "agent": "a"}, true, null],
  ["agents/a/agent.js", true, null, true, null],
  ["agents/a/agent.js", false, null, true, null],
  ["agents/a/agent.js", null, null, true, null],
  ["agents/a/current-task.json", true, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/current-task.json", false, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/current-task.json", null, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/context-snapshot.json", true, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/context-snapshot.json", false, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/context-snapshot.json", null, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/inbox", true, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/inbox", false, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/inbox", null, {"kind": "task", "agent": "a"}, true, null],
  ["agents/a/.inbox", true, null, true, null],
  ["agents/a/.inbox", false, null, true, null],
  ["agents/a/.inbox", null, null, true, null],
  ["agents/a/evals", true, null, true, null],
  ["agents/a/evals", false, null, true, null],
  ["agents/a/evals", null, null, true, null],
  ["agents/a/node_modules", true, null, true, null],
  ["agents/a/node_modules", false, null, true, null],
  ["agents/a/node_modules", null, null, true, null],
  ["agents/a/inbox/t.json", true, {"kind": "task", "agent": "a"}, true, {"agent": "a", "name": "t.json", "kind": "added"}],
  ["agents/a/inbox/t.json", false, {"kind": "task", "agent": "a"}, true, {"agent": "a", "name": "t.json", "kind": "added"}],
  ["agents/a/inbox/t.json", null, {"kind": "task", "agent": "a"}, true, {"agent": "a", "name": "t.json", "kind": "added"}],
  ["agents/a/inbox/.t.json.1.tmp", true, null, true, null],
  ["agents/a/inbox/.t.json.1.tmp", false, null, true, null],
  ["agents/a/inbox/.t.json.1.tmp", null, null, true, null],
  ["agents/a/inbox/t.txt", true, null, true, null],
  ["agents/a/inbox/t.txt", false, null, true, null],
  ["agents/a/inbox/t.txt", null, null, true, null],
  ["agents/a/inbox/t.json.12345", true, null, true, null],
  ["agents/a/inbox/t.json.12345", false, null, true, null],
  ["agents/a/inbox/t.json.12345", null, null, true, null],
  ["agents/a/inbox/sub/t.json", true, null, true, null],
  ["agents/a/inbox/sub/t.json", false, null, true, null],
  ["agents/a/inbox/sub/t.json", null, null, true, null],
  ["agents/a/evals/x.json", true, null, true, null],
  ["agents/a/evals/x.json", false, null, true, null],
  ["agents/a/evals/x.json", null, null, true, null],
  ["agents/a/.hidden/x", true, null, true, null],
  ["agents/a/.hidden/x", false, null, true, null],
  ["agents/a/.hidden/x", null, null, true, null],
  ["outbox/a", true, null, false, null],
  ["outbox/a", false, null, true, null],
  ["outbox/a", null, null, false, null],
  ["outbox/a/outbox.json", true, {"kind": "outbox", "agent": "a"}, true, null],
  ["outbox/a/outbox.json", false, {"kind": "outbox", "agent": "a"}, true, null],
  ["outbox/a/outbox.json", null, {"kind": "outbox", "agent": "a"}, true, null],
  ["outbox/a/handoff.json", true, null, true, null],
  ["outbox/a/handoff.json", false, null, true, null],
  ["outbox/a/handoff.json", null, null, true, null],
  ["outbox/a/.outbox.lock", true, null, true, null],
  ["outbox/a/.outbox.lock", false, null, true, null],
  ["outbox/a/.outbox.lock", null, null, true, null],
  ["outbox/a/x/outbox.json", true, null, true, null],
  ["outbox/a/x/outbox.json", false, null, true, null],
  ["outbox/a/x/outbox.json", null, null, true, null],
  ["outbox/.a/outbox.json", true, {"kind": "outbox", "agent": ".a"}, true, null],
  ["outbox/.a/outbox.json", false, {"kind": "outbox", "agent": ".a"}, true, null],
  ["outbox/.a/outbox.json", null, {"kind": "outbox", "agent": ".a"}, true, null],
  ["state/a/checkpoint.json", true, null, true, null],
  ["state/a/checkpoint.json", false, null, true, null],
  ["state/a/checkpoint.json", null, null, true, null],
  ["state/dead-letter/a/x.json", true, null, true, null],
  ["state/dead-letter/a/x.json", false, null, true, null],
  ["state/dead-letter/a/x.json", null, null, true, null],
  ["../elsewhere/agents/a/inbox/t.json", true, null, true, null],
  ["../elsewhere/agents/a/inbox/t.json", false, null, true, null],
  ["../elsewhere/agents/a/inbox/t.json", null, null, true, null],
];

describe('watcher paths', () => {
  it('every path gets the same event, descent and index event as before the store answered', () => {
    const paths = new HomePaths('/h');
    for (const [rel, dir, event, ignored, inbox] of TABLE) {
      const file = rel === '' ? '/h' : rel.startsWith('..') ? '/elsewhere/agents/a/inbox/t.json' : `/h/${rel}`;
      const at = `${rel || '(home)'} dir=${String(dir)}`;
      assert.deepEqual(classifyPath(paths, file), event, `classifyPath ${at}`);
      assert.equal(ignoredPath(paths, file, dir ?? undefined), ignored, `ignoredPath ${at}`);
      assert.deepEqual(inboxFileEvent(paths, file, false), inbox, `inboxFileEvent ${at}`);
    }
  });
});
