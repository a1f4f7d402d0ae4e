/**
 * A detector of text that looks like an injected instruction (README
 * "Security"): "ignore previous instructions", a fake system turn, chat
 * template tokens, "you are now ...", and the same hidden in base64, behind
 * zero-width characters, in Unicode tag characters or in look-alike
 * (full-width) letters.
 *
 * Pure and deterministic. It is a heuristic: it finds the common shapes of an
 * attack and misses a determined one (a paraphrase, another language, an
 * encoding it does not decode). agentd uses it to require approval, never to
 * decide that content is safe.
 */

export type InjectionRule =
  /** "ignore all previous instructions", "disregard your rules" */
  | 'ignore_instructions'
  /** "disregard the system prompt", "reveal your system prompt" */
  | 'system_prompt'
  /** "you are now DAN", "you are now an unrestricted AI" */
  | 'role_reassignment'
  /** a line that plays a chat turn: "system: you must ...", "### System:" */
  | 'fake_role'
  /** chat template tokens: <|im_start|>system, [INST], <<SYS>> */
  | 'chat_template'
  /** "reveal your hidden instructions", "leak the API keys" */
  | 'exfiltration'
  /** text hidden in invisible characters (tag characters, a run of zero-width characters) */
  | 'hidden_text'
  /** right-to-left override characters that make text read differently than it is */
  | 'bidi_override';

export interface InjectionFinding {
  rule: InjectionRule;
  /** How the text was hidden, when it was. */
  hiddenBy: 'base64' | 'zero_width' | 'tag_characters' | 'lookalike_characters' | null;
  /** The flagged text with some context, invisible characters shown as \u escapes; at most EXCERPT_CHARS. */
  excerpt: string;
}

/** Longest excerpt a finding carries. */
export const EXCERPT_CHARS = 240;

const W = String.raw`\s+`;
const ANY_OF = String.raw`(?:(?:all|any|every|each)\s+(?:of\s+)?)?`;
const DET = String.raw`(?:(?:the|your|my|these|those|its)\s+)?`;

/** Each rule's patterns, on the text as written (case-insensitive, any whitespace between words). */
const RULES: { rule: InjectionRule; pattern: RegExp }[] = [
  {
    rule: 'ignore_instructions',
    pattern: new RegExp(
      String.raw`\b(?:ignore|disregard|forget|override|bypass|neglect|skip)${W}${ANY_OF}${DET}(?:previous|prior|preceding|above|earlier|initial|original|old|former|existing|developer|previously\s+given)${W}(?:instructions?|prompts?|directions?|directives?|rules|guidelines|messages?|context|commands?|constraints)\b`,
      'i',
    ),
  },
  {
    rule: 'ignore_instructions',
    pattern: new RegExp(String.raw`\b(?:ignore|disregard|forget|override|bypass)${W}${ANY_OF}your${W}(?:instructions|rules|guidelines|programming|training|directives|guardrails|restrictions|safety\s+rules)\b`, 'i'),
  },
  {
    rule: 'ignore_instructions',
    pattern: new RegExp(String.raw`\b(?:ignore|disregard|forget)${W}(?:everything|all)${W}(?:above|before|prior|previously|you\s+(?:were|have\s+been)\s+told)\b`, 'i'),
  },
  {
    rule: 'system_prompt',
    pattern: new RegExp(String.raw`\b(?:disregard|ignore|forget|override|replace|bypass|reveal|print|show|repeat|output|leak)${W}${DET}(?:system${W}(?:prompt|message|instructions?)|initial${W}prompt)\b`, 'i'),
  },
  {
    rule: 'role_reassignment',
    pattern: new RegExp(
      String.raw`\byou${W}are${W}now${W}(?:(?:a|an)${W}(?:[\w-]+${W}){0,2}(?:ai|assistant|model|chatbot|bot|llm)\b|(?:dan|jailbroken|unrestricted|unfiltered|uncensored)\b|in${W}(?:developer|god|jailbreak|dan|unrestricted|debug|admin)${W}mode\b|no${W}longer${W}(?:bound|restricted|limited|an?${W}(?:ai|assistant))\b|(?:acting|operating|playing)${W}as\b)`,
      'i',
    ),
  },
  {
    rule: 'fake_role',
    // A line that opens a chat turn and then instructs: "system: you must ...", "### System: ignore ...".
    pattern: /^[ \t>#*[(-]*(?:system|assistant|developer)[\])]?[ \t]*:[ \t]*.{0,80}?\b(?:you|your|ignore|disregard|must|always|never|do not|don't|from now on|instructions?|override|respond|reply|obey)\b/im,
  },
  {
    rule: 'chat_template',
    pattern: /<\|(?:im_start|im_end|system|user|assistant|endoftext|start_header_id|end_header_id|eot_id)\|>|<<\/?SYS>>|\[\/?INST\]|<\/?(?:system[_-]?prompt|sys)>/i,
  },
  {
    rule: 'exfiltration',
    pattern: new RegExp(
      String.raw`\b(?:reveal|leak|exfiltrate|dump|print\s+out)${W}${DET}(?:(?:hidden|secret|initial|original|internal)${W})?(?:instructions|system${W}prompt|api[\s_-]?keys?|secrets|credentials|environment${W}variables|env${W}vars)\b`,
      'i',
    ),
  },
];

/** Zero-width and other invisible characters that can split a word so no pattern sees it. */
const INVISIBLE = /[\u200B-\u200D\u2060-\u2064\uFEFF\u180E\u00AD]/g;
/** Four or more in a row: enough to encode hidden bits (zero-width steganography), more than any emoji sequence uses. */
const INVISIBLE_RUN = /[\u200B-\u200D\u2060-\u2064\uFEFF\u180E]{4,}/;
/** Unicode tag characters (U+E0000–U+E007F): invisible copies of ASCII, the "ASCII smuggling" trick. */
const TAG_CHARS = /[\u{E0000}-\u{E007F}]/gu;
const BIDI_OVERRIDE = /[\u202D\u202E]/;
/** Candidate base64 (standard or URL-safe) runs long enough to hold a sentence. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{24,}={0,2}/g;
/** Decoded base64 texts looked at per call: bounds the work an adversarial input can cause. */
const MAX_BASE64_DECODES = 64;
const MAX_BASE64_CHARS = 64 * 1024;

/** Every kind of finding in `text`, at most one per rule and hiding method. */
export function detectInjection(text: string): InjectionFinding[] {
  return detect(text, 0);
}

function detect(text: string, depth: number): InjectionFinding[] {
  const findings: InjectionFinding[] = [];
  const seen = new Set<string>();
  const add = (finding: InjectionFinding) => {
    const key = `${finding.rule}:${finding.hiddenBy ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push(finding);
  };
  const plain = matchRules(text);
  for (const m of plain) add({ rule: m.rule, hiddenBy: null, excerpt: excerptAround(text, m.index, m.length) });
  const plainRules = new Set(plain.map((m) => m.rule));

  // Text hidden in tag characters: invisible in any viewer, read by a model.
  const tags = [...text.matchAll(TAG_CHARS)];
  if (tags.length > 0) {
    const decoded = tags.map((m) => String.fromCharCode(m[0].codePointAt(0)! - 0xe0000)).join('');
    add({ rule: 'hidden_text', hiddenBy: 'tag_characters', excerpt: excerptOf(`invisible tag characters spell: ${decoded}`) });
    for (const m of matchRules(decoded)) add({ rule: m.rule, hiddenBy: 'tag_characters', excerpt: excerptAround(decoded, m.index, m.length) });
  }

  const run = INVISIBLE_RUN.exec(text);
  if (run) add({ rule: 'hidden_text', hiddenBy: 'zero_width', excerpt: excerptAround(text, run.index, run[0].length) });
  if (BIDI_OVERRIDE.test(text)) {
    const at = text.search(BIDI_OVERRIDE);
    add({ rule: 'bidi_override', hiddenBy: null, excerpt: excerptAround(text, at, 1) });
  }

  // The same words split by zero-width characters or written in full-width look-alikes.
  const stripped = text.replace(INVISIBLE, '');
  const normalized = stripped.normalize('NFKC');
  if (normalized !== text) {
    const hiddenBy = stripped !== text ? 'zero_width' : 'lookalike_characters';
    for (const m of matchRules(normalized)) {
      if (!plainRules.has(m.rule)) add({ rule: m.rule, hiddenBy, excerpt: excerptAround(text, originalIndex(text, stripped, m.index), m.length + 8) });
    }
  }

  if (depth === 0) for (const f of base64Findings(text)) add(f);
  return findings;
}

function matchRules(text: string): { rule: InjectionRule; index: number; length: number }[] {
  const out: { rule: InjectionRule; index: number; length: number }[] = [];
  for (const { rule, pattern } of RULES) {
    const m = pattern.exec(text);
    if (m) out.push({ rule, index: m.index, length: m[0].length });
  }
  return out;
}

/** Instructions encoded in base64 (one level; what they decode to is checked like any text). */
function base64Findings(text: string): InjectionFinding[] {
  const out: InjectionFinding[] = [];
  let decodes = 0;
  for (const m of text.matchAll(BASE64_RUN)) {
    if (decodes++ >= MAX_BASE64_DECODES) break;
    const candidate = m[0].slice(0, MAX_BASE64_CHARS);
    const decoded = decodeBase64Text(candidate);
    if (decoded === null) continue;
    for (const f of detect(decoded, 1)) {
      out.push({ rule: f.rule, hiddenBy: 'base64', excerpt: excerptOf(`base64 ${candidate.slice(0, 24)}... decodes to: ${f.excerpt}`) });
    }
  }
  return out;
}

/** The UTF-8 text a base64 string decodes to, or null when it is not readable text. */
export function decodeBase64Text(candidate: string): string | null {
  const bytes = Buffer.from(candidate.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length < 12) return null;
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD')) return null;
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) control++;
  }
  if (control > text.length * 0.05) return null;
  // Readable text has spaces between its words; random bytes that happen to be valid UTF-8 rarely do.
  return /[A-Za-z]{2,}\s+[A-Za-z]{2,}/.test(text) ? text : null;
}

/** Where index `i` of `stripped` (invisible characters removed) falls in `text`. */
function originalIndex(text: string, stripped: string, i: number): number {
  if (stripped === text) return i;
  let seen = 0;
  for (let j = 0; j < text.length; j++) {
    if (/[\u200B-\u200D\u2060-\u2064\uFEFF\u180E\u00AD]/.test(text[j]!)) continue;
    if (seen === i) return j;
    seen++;
  }
  return Math.max(0, text.length - 1);
}

function excerptAround(text: string, index: number, length: number): string {
  const context = 60;
  const start = Math.max(0, index - context);
  const end = Math.min(text.length, index + length + context);
  return excerptOf(`${start > 0 ? '…' : ''}${text.slice(start, end)}${end < text.length ? '…' : ''}`);
}

/** `text` on one line, invisible characters made visible, at most EXCERPT_CHARS. */
export function excerptOf(text: string): string {
  const visible = text
    .replace(/[\u200B-\u200D\u2060-\u2064\uFEFF\u180E\u00AD\u202A-\u202E\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/[\u{E0000}-\u{E007F}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
    .replace(/\s+/g, ' ');
  return visible.length > EXCERPT_CHARS ? `${visible.slice(0, EXCERPT_CHARS - 1)}…` : visible;
}

/** Where in a JSON value a finding was: `body`, `items[2].note`, or `` for the value itself. */
export interface LocatedFinding {
  path: string;
  finding: InjectionFinding;
}

/** Characters of one value looked at, at most: a huge tool result is checked at its start. */
export const MAX_SCAN_CHARS = 2 * 1024 * 1024;

/**
 * Every string (and object key) in a JSON value, checked; iterative, so a
 * deeply nested value cannot overflow the stack. At most `limit` findings.
 */
export function scanForInjection(value: unknown, limit = 5): LocatedFinding[] {
  const out: LocatedFinding[] = [];
  const stack: [unknown, string][] = [[value, '']];
  let budget = MAX_SCAN_CHARS;
  const check = (text: string, path: string) => {
    const slice = text.length > budget ? text.slice(0, budget) : text;
    budget -= slice.length;
    for (const finding of detectInjection(slice)) if (out.length < limit) out.push({ path, finding });
  };
  while (stack.length > 0 && out.length < limit && budget > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') check(node, path);
    else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], `${path}[${i}]`]);
    } else if (node !== null && typeof node === 'object') {
      const entries = Object.entries(node);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        const childPath = path ? `${path}.${key}` : key;
        check(key, childPath);
        stack.push([child, childPath]);
      }
    }
  }
  return out;
}
