/**
 * Text from the home (an item's question, an agent's error) is untrusted: an
 * escape sequence in it could rewrite a person's terminal. Control characters
 * are shown as `\xNN`; newlines and tabs become spaces unless kept.
 */
export function terminalSafe(text: string, keepNewlines = false): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\n' && keepNewlines) return '\n';
    if (c === '\n' || c === '\t' || c === '\r') return ' ';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}
