import { loadDaemonConfig } from '../config/daemon-config.js';
import { setDefaultFileMode, setPeopleFileMode } from '../store/durable.js';
import type { HomePaths } from '../store/paths.js';

/**
 * A command that writes task files into the home writes them with the home's
 * `file_mode` (README "Permissions"), as the daemon does. A home whose
 * agentd.yaml does not load keeps the defaults: the daemon will refuse that
 * config anyway, and a submit must not fail on it.
 */
export async function useHomeFileModes(paths: HomePaths): Promise<void> {
  try {
    const config = await loadDaemonConfig(paths);
    setDefaultFileMode(config.fileMode.state);
    setPeopleFileMode(config.fileMode.outbox);
  } catch {
    // the defaults stand
  }
}
