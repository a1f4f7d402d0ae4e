/**
 * Masks personal data and secrets in text bound for a trace (README
 * "Security", `trace.capture: redacted`): email addresses, phone numbers,
 * card numbers (only digit runs that pass the Luhn check) and key-shaped
 * strings (API keys, bearer tokens, JWTs, long hex or base64 secrets).
 *
 * Pure and deterministic. Each match becomes a fixed marker such as
 * `[redacted:email]`; markers contain no digits or `@`, so a later pattern
 * never matches inside an earlier one's marker.
 */

export type RedactedKind = 'email' | 'phone' | 'card' | 'key';

export function marker(kind: RedactedKind): string {
  return `[redacted:${kind}]`;
}

/**
 * Key-shaped strings, most specific first. The generic hex and base64 rules
 * are long enough (32 and 40 characters) that words and ids do not reach them.
 */
const KEY_PATTERNS: RegExp[] = [
  // JSON Web Tokens: header.payload.signature, each base64url.
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
  // OpenAI, Anthropic and similar: sk-..., sk-proj-..., sk-ant-..., rk-..., pk-...
  /\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}/g,
  // GitHub, Slack, AWS access key ids, Google API keys.
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})\b/g,
];

/** `Bearer <token>` and `Basic <credentials>`: the scheme stays, the credentials go. */
const AUTH_SCHEME = /\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*/gi;

/** `api_key=...`, `"password": "..."`, `token: ...`: the name stays, the value goes. */
const ASSIGNED_SECRET = /\b((?:api[_-]?key|secret|token|password|passwd|access[_-]?key)["']?\s*[:=]\s*["']?)([^\s"',;]{6,})/gi;

/** A long run of hex digits (a secret, a signing key). */
const LONG_HEX = /(?<![A-Za-z0-9+/_-])[A-Fa-f0-9]{32,}(?![A-Za-z0-9+/_-])/g;

/** A long base64 or base64url run; masked only when it mixes cases and digits, like a random secret. */
const LONG_BASE64 = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}(?![A-Za-z0-9+/=_-])/g;

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

/** 13 to 19 digits, optionally grouped by single spaces or dashes. */
const CARD_CANDIDATE = /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g;

/**
 * Phone numbers in the shapes people write them: international (`+` and a
 * country code) or grouped by separators, e.g. `(555) 123-4567`,
 * `555-123-4567`, `+44 20 7946 0958`. A bare run of digits is not taken for
 * a phone number (it may be an id, an amount or a Luhn-invalid card-like run).
 */
const PHONE = /(?<![\w+])(?:\+[1-9][0-9]{0,2}[ .-]?(?:\(?[0-9]{1,4}\)?[ .-]?){1,5}[0-9]{2,4}|\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4})(?![\w])/g;

/** The Luhn checksum of a string of digits (card numbers pass it). */
export function luhnValid(digits: string): boolean {
  if (!/^[0-9]+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function looksRandom(s: string): boolean {
  return /[0-9]/.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s);
}

function countDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) n++;
  return n;
}

/** `text` with every email, phone number, card number and key-shaped string masked. */
export function redactText(text: string): string {
  let out = text;
  for (const pattern of KEY_PATTERNS) out = out.replace(pattern, marker('key'));
  out = out.replace(AUTH_SCHEME, (_m, scheme: string, space: string) => `${scheme}${space}${marker('key')}`);
  out = out.replace(ASSIGNED_SECRET, (_m, name: string) => `${name}${marker('key')}`);
  out = out.replace(EMAIL, marker('email'));
  // Cards before the generic secret rules and phones: a card's digits must be judged by Luhn, not by shape.
  out = out.replace(CARD_CANDIDATE, (m) => {
    const digits = m.replace(/[ -]/g, '');
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? marker('card') : m;
  });
  out = out.replace(LONG_HEX, (m) => (/[0-9]/.test(m) && /[A-Fa-f]/.test(m) ? marker('key') : m));
  out = out.replace(LONG_BASE64, (m) => (looksRandom(m) ? marker('key') : m));
  out = out.replace(PHONE, (m) => {
    const n = countDigits(m);
    return n >= 7 && n <= 15 ? marker('phone') : m;
  });
  return out;
}

/**
 * A copy of `value` with every string in it redacted (object keys are kept).
 * Plain JSON data is expected: what a prompt, a response or a tool's
 * arguments are.
 */
export function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map(redactValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v);
    return out;
  }
  return value;
}
