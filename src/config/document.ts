import YAML from 'yaml';
import { ConfigError } from '../errors.js';
import { jsonTextTooDeep, tooDeepProblem, valueTooDeep } from '../security/json-depth.js';

/**
 * Parse a YAML or JSON document a person wrote; errors name the file and the
 * line. A document nested deeper than MAX_JSON_DEPTH is refused here, before
 * anything recurses into it.
 */
export function parseDocument(file: string, text: string): unknown {
  if (file.endsWith('.json')) {
    if (jsonTextTooDeep(text)) throw new ConfigError(file, [tooDeepProblem()]);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ConfigError(file, [`is not valid JSON: ${(err as Error).message}`], { cause: err });
    }
  }
  let value: unknown;
  try {
    const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        file,
        doc.errors.map((e) => `is not valid YAML: ${e.message.split('\n')[0]}`),
        { cause: doc.errors[0] },
      );
    }
    value = doc.toJS() ?? {};
  } catch (err) {
    if (err instanceof RangeError) throw new ConfigError(file, [tooDeepProblem()], { cause: err }); // the YAML parser's own recursion
    throw err;
  }
  if (valueTooDeep(value)) throw new ConfigError(file, [tooDeepProblem()]);
  return value;
}
