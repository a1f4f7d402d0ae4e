import type { Validator } from '../schema/validate.js';

/**
 * Reading the model's final answer against output_schema (README "The built-in model agent").
 * Pure: the same text and schema always give the same verdict.
 */

export type AnswerCheck =
  | { kind: 'valid'; output: unknown }
  /** `output` is what the run returns if no repair is left: the parsed JSON when there was some, else the text. */
  | { kind: 'invalid'; problems: string[]; output: unknown };

/** A ```json (or bare ```) fenced block anywhere in the text: models like to wrap JSON in prose. */
const FENCED = /```(?:json|JSON)?[ \t]*\r?\n([\s\S]*?)\r?\n?```/;

type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

function parseJson(text: string): Parsed {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** The JSON in an answer: the whole text, else its first fenced block. */
export function extractJson(text: string): Parsed {
  const whole = parseJson(text.trim());
  if (whole.ok) return whole;
  const fenced = FENCED.exec(text);
  if (fenced) {
    const inner = parseJson(fenced[1]!.trim());
    if (inner.ok) return inner;
    return { ok: false, error: `the fenced block is not valid JSON (${inner.error})` };
  }
  return { ok: false, error: `the answer is not JSON (${whole.error})` };
}

/**
 * Check a final answer. The raw text is tried too, so a schema that asks for
 * a plain string accepts a plain-text answer.
 */
export function checkAnswer(text: string, validate: Validator<unknown>): AnswerCheck {
  const parsed = extractJson(text);
  if (parsed.ok && validate(parsed.value)) return { kind: 'valid', output: parsed.value };
  if (validate(text)) return { kind: 'valid', output: text };
  if (!parsed.ok) return { kind: 'invalid', problems: [parsed.error], output: text };
  return { kind: 'invalid', problems: validate.problems(parsed.value), output: parsed.value };
}

/** The one repair turn: the validation errors, quoted, and what to send instead. */
export function repairPrompt(problems: string[]): string {
  return [
    'Your final answer does not match the output schema:',
    ...problems.map((p) => `- ${p}`),
    'Reply with only the corrected JSON value, with no other text. If a value is unknown, say so as the schema allows or call escalate; do not guess.',
  ].join('\n');
}
