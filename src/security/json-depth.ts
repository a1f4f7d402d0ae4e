/**
 * A cap on how deeply JSON may nest, checked without recursion. JSON.parse
 * copes with any depth, but everything after it that walks the value
 * (JSON.stringify, canonical hashing, schema validation) recurses, so a file
 * or message nested a hundred thousand levels deep would end in a stack
 * overflow instead of a clear error.
 */

/** Deepest nesting (objects and arrays) accepted in a task, definition, message or tool result. */
export const MAX_JSON_DEPTH = 64;

/**
 * True when the JSON text nests deeper than `max`. A scan of the characters
 * (string contents skipped), stopping at the first level past `max`; it does
 * not check that the text is JSON.
 */
export function jsonTextTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** True when a parsed value (a YAML document, say) nests deeper than `max`. Iterative. */
export function valueTooDeep(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** The problem line for a value nested too deeply, after the file or field it is about. */
export function tooDeepProblem(max = MAX_JSON_DEPTH): string {
  return `is nested more than ${max} levels deep (objects and arrays); refused`;
}
