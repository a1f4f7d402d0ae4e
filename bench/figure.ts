/** One line of the final table, and what each figure module returns. */
export interface Row {
  figure: string;
  /** The figure as printed, with its unit. */
  measured: string;
  /** The machine's own limit, measured in the same run, with its unit. */
  limit: string;
  /** measured ÷ limit (or limit ÷ measured for a rate), as printed. */
  ratio: string;
  goal: string;
  verdict: 'PASS' | 'MISS' | 'INFO';
  /** Raw numbers for --json. */
  values: Record<string, number>;
}

export interface FigureResult {
  rows: Row[];
  /** Lines printed under the table: how it was measured, breakdowns. */
  details: string[];
}

/** The sizes of one bench run; --quick makes them small. */
export interface Sizes {
  quick: boolean;
  /** P1: model calls through the daemon (each paired with a direct call); fdatasync samples. */
  p1Steps: number;
  appendSamples: number;
  /** P2: agents, finished tasks per agent already on disk, tasks timed, bare spawns timed. */
  p2Agents: number;
  p2DonePerAgent: number;
  p2Samples: number;
  /** P3: trivial tasks, spread over this many agents; spawns and durable writes for the limits. */
  p3Tasks: number;
  p3Agents: number;
  p3SpawnSamples: number;
  p3DurableWrites: number;
  /** P3: tasks of the strace counting pass (same tasks per agent as the timed pass). */
  p3CountTasks: number;
  /** P4: idle agents, small and large; starts of each (a fresh home each), the figure their median. */
  p4Small: number;
  p4Large: number;
  p4Starts: number;
  /** P5: runs in flight when the daemon is killed, and lock_stale (quick: the 2 s minimum, to keep CI short). */
  p5Runs: number;
  p5LockStaleMs: number;
  /** P7: tasks queued in the deep inbox, and runs timed in its steady state. */
  p7Deep: number;
  p7Measured: number;
}

export const FULL: Sizes = {
  quick: false,
  p1Steps: 400,
  appendSamples: 2000,
  p2Agents: 1000,
  p2DonePerAgent: 10,
  p2Samples: 400,
  p3Tasks: 1000,
  p3Agents: 50,
  p3SpawnSamples: 400,
  p3DurableWrites: 2000,
  p3CountTasks: 100,
  p4Small: 1000,
  p4Large: 10_000,
  p4Starts: 3,
  p5Runs: 100,
  p5LockStaleMs: 10_000,
  p7Deep: 10_000,
  p7Measured: 100,
};

export const QUICK: Sizes = {
  quick: true,
  p1Steps: 20,
  appendSamples: 200,
  p2Agents: 50,
  p2DonePerAgent: 4,
  p2Samples: 20,
  p3Tasks: 20,
  p3Agents: 4,
  p3SpawnSamples: 20,
  p3DurableWrites: 200,
  p3CountTasks: 10,
  p4Small: 50,
  p4Large: 200,
  p4Starts: 1,
  p5Runs: 10,
  p5LockStaleMs: 2_000,
  p7Deep: 300,
  p7Measured: 30,
};

export function verdict(ok: boolean): 'PASS' | 'MISS' {
  return ok ? 'PASS' : 'MISS';
}
