import path from 'node:path';
import type { AgentDefinition } from '../config/types.js';
import { AgentdFailure, errorMessage } from '../errors.js';
import { taskSchema } from '../schema/schemas.js';
import { compiledSchema } from '../schema/compiled.js';
import { compile } from '../schema/validate.js';
import { listDir, readIfExists } from '../store/durable.js';
import type { HomePaths } from '../store/paths.js';
import type { Task } from '../store/tasks.js';
import { patternProblem } from './checks.js';

/**
 * Golden sets: `agents/<agent>/evals/*.jsonl`, one case a line (README "Evals").
 * Parsed at the boundary into fully resolved cases; a bad line is an
 * EvalSetError naming file:line and the field.
 */

/** The deterministic properties a case can expect, in the order they are reported. */
export const PROPERTIES = ['status', 'schema', 'contains', 'not_contains', 'max_length', 'tools_called', 'tools_not_called'] as const;
export type Property = (typeof PROPERTIES)[number];

export type ExpectedStatus = 'done' | 'escalated';

export interface Expectations {
  status: ExpectedStatus;
  /** The schema the output must match: inline, or the agent's output_schema for `true`. */
  schema?: object;
  contains?: string[];
  notContains?: string[];
  maxLength?: number;
  toolsCalled?: string[];
  toolsNotCalled?: string[];
  /** A rubric for the judge model; scored apart from the deterministic checks. */
  judge?: string;
}

export interface EvalCase {
  /** Unique within the agent's golden sets; `<file stem>:<line>` when the line has no name. */
  name: string;
  /** Where it came from, relative to the home: `agents/x/evals/basic.jsonl:3`. */
  source: string;
  /** The task as it is written to current-task.json, without created_at (set when the case runs). */
  task: Omit<Task, 'created_at'> & { created_at?: string };
  expect: Expectations;
  /** The judge model this case asks for (`--judge-model` takes precedence). */
  judgeModel?: string;
}

/** A golden set that cannot be run as written: the person who wrote it must fix it (exit 2). */
export class EvalSetError extends AgentdFailure {
  override readonly name = 'EvalSetError';
  readonly code = 'bad_eval_set';
  readonly category = 'bad_input';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'), { problems });
  }
}

const oneOrMore = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] };
const toolNames = { type: 'array', items: { type: 'string', minLength: 1 } };

interface RawCase {
  name?: string;
  judge_model?: string;
  task: EvalCase['task'];
  expect: {
    status: ExpectedStatus;
    schema?: true | object;
    contains?: string | string[];
    not_contains?: string | string[];
    max_length?: number;
    tools_called?: string[];
    tools_not_called?: string[];
    judge?: string;
  };
}

const validateCase = compile<RawCase>({
  type: 'object',
  additionalProperties: false,
  required: ['task', 'expect'],
  properties: {
    name: { type: 'string', minLength: 1 },
    judge_model: { type: 'string', pattern: '^[^/]+/.+$', description: 'must be <provider>/<model>' },
    task: taskSchema,
    expect: {
      type: 'object',
      additionalProperties: false,
      required: ['status'],
      properties: {
        status: { enum: ['done', 'escalated'] },
        schema: { anyOf: [{ const: true }, { type: 'object' }] },
        contains: oneOrMore,
        not_contains: oneOrMore,
        max_length: { type: 'integer', minimum: 0 },
        tools_called: toolNames,
        tools_not_called: toolNames,
        judge: { type: 'string', minLength: 1 },
      },
    },
  },
});

const list = (value: string | string[] | undefined): string[] | undefined => (value === undefined ? undefined : Array.isArray(value) ? value : [value]);

/**
 * Parse one golden set file. Pure: `file` is the name used in messages,
 * `firstIndex` numbers the cases for default task ids across files.
 */
export function parseEvalFile(file: string, text: string, agent: AgentDefinition, firstIndex = 0): { cases: EvalCase[]; problems: string[] } {
  const cases: EvalCase[] = [];
  const problems: string[] = [];
  const stem = path.basename(file).replace(/\.jsonl$/, '');
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      problems.push(`${where}: is not valid JSON: ${errorMessage(err)}`);
      return;
    }
    if (!validateCase(raw)) {
      for (const p of validateCase.problems(raw)) problems.push(`${where}: ${p}`);
      return;
    }
    const lineProblems = checkAgainstAgent(raw, agent);
    if (lineProblems.length > 0) {
      for (const p of lineProblems) problems.push(`${where}: ${p}`);
      return;
    }
    const e = raw.expect;
    const expect: Expectations = { status: e.status };
    if (e.schema !== undefined) expect.schema = e.schema === true ? agent.outputSchema! : e.schema;
    const contains = list(e.contains);
    const notContains = list(e.not_contains);
    if (contains) expect.contains = contains;
    if (notContains) expect.notContains = notContains;
    if (e.max_length !== undefined) expect.maxLength = e.max_length;
    if (e.tools_called) expect.toolsCalled = e.tools_called;
    if (e.tools_not_called) expect.toolsNotCalled = e.tools_not_called;
    if (e.judge !== undefined) expect.judge = e.judge;
    cases.push({
      name: raw.name ?? `${stem}:${i + 1}`,
      source: where,
      task: { ...raw.task, id: raw.task.id ?? `eval-${firstIndex + cases.length + 1}` },
      expect,
      ...(raw.judge_model !== undefined ? { judgeModel: raw.judge_model } : {}),
    });
  });
  return { cases, problems };
}

/** What the schema cannot know: the agent's output_schema and tools. */
function checkAgainstAgent(raw: RawCase, agent: AgentDefinition): string[] {
  const problems: string[] = [];
  if (raw.task.created_at !== undefined && Number.isNaN(Date.parse(raw.task.created_at))) {
    problems.push(`task.created_at ${JSON.stringify(raw.task.created_at)} is not a valid date-time`);
  }
  const schema = raw.expect.schema;
  if (schema === true && !agent.outputSchema) problems.push(`expect.schema is true but ${agent.file} has no output_schema`);
  if (typeof schema === 'object') {
    try {
      compiledSchema(schema);
    } catch (err) {
      problems.push(`expect.schema is not a valid JSON Schema: ${errorMessage(err)}`);
    }
  }
  for (const key of ['contains', 'not_contains'] as const) {
    list(raw.expect[key])?.forEach((pattern, i) => {
      const problem = patternProblem(pattern);
      if (problem) problems.push(`expect.${key}${Array.isArray(raw.expect[key]) ? `[${i}]` : ''} ${JSON.stringify(pattern)} ${problem}`);
    });
  }
  const known = Object.keys(agent.tools);
  for (const key of ['tools_called', 'tools_not_called'] as const) {
    (raw.expect[key] ?? []).forEach((name, i) => {
      if (!known.includes(name)) problems.push(`expect.${key}[${i}] ${JSON.stringify(name)} is not one of the agent's tools (${known.length > 0 ? known.join(', ') : 'it has none'})`);
    });
  }
  return problems;
}

/** Every case of the agent's golden sets, in file then line order. Throws EvalSetError on any bad line. */
export async function loadEvalCases(paths: HomePaths, agent: AgentDefinition): Promise<EvalCase[]> {
  const dir = paths.evalsDir(agent.name);
  const files = (await listDir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
  const cases: EvalCase[] = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const name of files) {
    const file = path.join(dir, name);
    const text = (await readIfExists(file))?.toString('utf8') ?? '';
    const parsed = parseEvalFile(paths.relative(file), text, agent, cases.length);
    problems.push(...parsed.problems);
    for (const c of parsed.cases) {
      const first = seen.get(c.name);
      if (first) problems.push(`${c.source}: name ${JSON.stringify(c.name)} is already used at ${first}`);
      else seen.set(c.name, c.source);
      cases.push(c);
    }
  }
  if (problems.length > 0) throw new EvalSetError(problems);
  if (cases.length === 0) throw new EvalSetError([`${paths.relative(dir)} has no cases (*.jsonl files, one case a line)`]);
  return cases;
}
