import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { appendHeld, closeHeld } from './held-append.js';
import { exists } from './durable.js';

/**
 * The journal of one task: every model and tool call, in order, appended and
 * fdatasynced before the reply reaches the agent (README "The guarantee: resume without repeating").
 * Resume is replay: a restarted agent's n-th call is answered from the n-th
 * effective entry while the request hashes match.
 */

export type JournalKind = 'model' | 'tool' | 'usage';
export type JournalPhase = 'started' | 'completed' | 'failed';

export interface JournalUsage {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface CallRecord {
  v: 1;
  seq: number;
  run_id: string;
  kind: JournalKind;
  name: string;
  request_hash: string;
  phase: JournalPhase;
  result?: unknown;
  error?: { code: string; message: string; category?: string };
  usage?: JournalUsage;
  /** True when the call was answered from the journal (never counted twice). */
  replayed?: boolean;
  at: string;
}

/** From `from_seq` on, earlier entries no longer match what the agent does: calls go live. */
export interface SupersedeRecord {
  v: 1;
  kind: 'supersede';
  run_id: string;
  from_seq: number;
  at: string;
}

export type JournalRecord = CallRecord | SupersedeRecord;

/** What a call of seq n looked like, for replay and for the unsure-side-effect check. */
export interface EffectiveCall {
  seq: number;
  kind: JournalKind;
  name: string;
  request_hash: string;
  phase: JournalPhase;
  result?: unknown;
  error?: CallRecord['error'];
  usage?: JournalUsage;
  model?: string;
}

/** Real spend of a task across all its runs: replayed answers are never counted. */
export interface JournalSpend {
  steps: number;
  toolCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface JournalSummary {
  /** The effective call history by seq (1-based, index seq-1). */
  effective: EffectiveCall[];
  spend: JournalSpend;
  /** The last few records, for a handoff. */
  tail: JournalRecord[];
  /** Usage recorded per run, for history lines of runs the daemon did not see end. */
  spendByRun: Map<string, JournalSpend>;
  records: number;
}

export function emptySpend(): JournalSpend {
  return { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
}

/** A stable hash of a request: key order does not matter. */
export function requestHash(kind: JournalKind, name: string, request: unknown): string {
  return createHash('sha256').update(kind).update('\0').update(name).update('\0').update(canonicalJson(request)).digest('hex').slice(0, 32);
}

/**
 * JSON with every object's keys sorted (by UTF-16 code unit) and undefined members left out: what request hashes,
 * cache keys and the audit chain are computed over, so its output must never change (test/canonical-json.test.ts
 * pins it). Built as one string, without an entry array per object: it runs on every model step (README.md,
 * Benchmark: P1 and P6).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let items = '';
    for (let i = 0; i < value.length; i++) items += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `[${items}]`;
  }
  const record = value as Record<string, unknown>;
  let members = '';
  for (const key of Object.keys(record).sort()) {
    const member = record[key];
    if (member !== undefined) members += (members === '' ? '' : ',') + JSON.stringify(key) + ':' + canonicalJson(member);
  }
  return `{${members}}`;
}

const TAIL_SIZE = 5;

/** Fold one record into a summary. Pure: the same records always give the same summary. */
export function foldRecord(summary: JournalSummary, record: JournalRecord): void {
  summary.records++;
  summary.tail.push(record);
  if (summary.tail.length > TAIL_SIZE) summary.tail.shift();
  if (record.kind === 'supersede') {
    summary.effective.length = Math.min(summary.effective.length, Math.max(0, record.from_seq - 1));
    return;
  }
  if (record.kind !== 'usage') {
    const index = record.seq - 1;
    const entry: EffectiveCall = {
      seq: record.seq,
      kind: record.kind,
      name: record.name,
      request_hash: record.request_hash,
      phase: record.phase,
      result: record.result,
      error: record.error,
      usage: record.usage,
    };
    if (index <= summary.effective.length) summary.effective[index] = entry;
  }
  if (record.replayed) return;
  const runSpend = summary.spendByRun.get(record.run_id) ?? emptySpend();
  summary.spendByRun.set(record.run_id, runSpend);
  for (const spend of [summary.spend, runSpend]) {
    if (record.phase === 'started' && record.kind === 'model') spend.steps++;
    if (record.phase === 'started' && record.kind === 'tool') spend.toolCalls++;
    if (record.usage && record.phase !== 'started') {
      spend.inputTokens += record.usage.input_tokens;
      spend.outputTokens += record.usage.output_tokens;
      spend.costUsd += record.usage.cost_usd;
    }
  }
}

export function emptySummary(): JournalSummary {
  return { effective: [], spend: emptySpend(), tail: [], spendByRun: new Map(), records: 0 };
}

/**
 * Stream the journal into a summary: memory grows with the effective history,
 * not with the file. A torn last line (crash mid-append) is ignored.
 */
export async function readJournal(file: string): Promise<JournalSummary> {
  const summary = emptySummary();
  let stream: fs.ReadStream;
  try {
    if (!(await exists(file))) return summary;
    stream = fs.createReadStream(file, { encoding: 'utf8' });
  } catch {
    return summary;
  }
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let record: JournalRecord;
    try {
      record = JSON.parse(line) as JournalRecord;
    } catch {
      continue; // only the torn tail can be unparseable: every other line was fdatasynced whole
    }
    foldRecord(summary, record);
  }
  return summary;
}

/**
 * Append a record, fdatasynced unless `sync` is false. Only a model call's
 * `started` record may skip it: losing it in a crash means the call is made
 * again, which is what a started-but-not-completed model call means anyway.
 */
export async function appendJournal(file: string, record: JournalRecord, sync = true): Promise<void> {
  // Held open until the run ends (closeHeld in run/run-host.ts): one write (+ one fdatasync) per record.
  await appendHeld(file, JSON.stringify(record), sync);
}

/** What a run hands back of its task's journal: the spend of every run and the last records. */
export type JournalTotals = Pick<JournalSummary, 'spend' | 'tail'>;

/**
 * The journal of the task a run works on: read once when the run starts,
 * then every append is folded into the same summary, so the run's end knows
 * the task's totals without reading the file again.
 */
export class TaskJournal {
  private constructor(
    private readonly file: string,
    private readonly summary: JournalSummary,
  ) {}

  static async open(file: string): Promise<TaskJournal> {
    return new TaskJournal(file, await readJournal(file));
  }

  /** The effective calls as read when the run started, for replay (a copy: appends do not move it). */
  effectiveAtStart(): EffectiveCall[] {
    return [...this.summary.effective];
  }

  /** The task's spend and last records, this run's appends included. */
  totals(): JournalTotals {
    return { spend: { ...this.summary.spend }, tail: [...this.summary.tail] };
  }

  /** As appendJournal; the record counts once it is written. */
  async append(record: JournalRecord, sync = true): Promise<void> {
    await appendJournal(this.file, record, sync);
    foldRecord(this.summary, record);
  }

  async close(): Promise<void> {
    await closeHeld(this.file);
  }
}
