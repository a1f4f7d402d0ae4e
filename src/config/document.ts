import YAML from 'yaml';
import { ConfigError } from '../errors.js';

/** Parse a YAML or JSON document a person wrote; errors name the file and the line. */
export function parseDocument(file: string, text: string): unknown {
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ConfigError(file, [`is not valid JSON: ${(err as Error).message}`], { cause: err });
    }
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `is not valid YAML: ${e.message.split('\n')[0]}`),
      { cause: doc.errors[0] },
    );
  }
  return doc.toJS() ?? {};
}
