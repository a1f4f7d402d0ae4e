import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { ModelRequest, ModelResponse } from '../protocol/messages.js';
import { writeJsonAtomic } from '../store/durable.js';
import { canonicalJson } from '../store/journal.js';

/**
 * The exact-match model cache (README "Models"): the same model asked the same
 * temperature-0 request gets the stored response, at no cost. One file per
 * entry, `<dir>/<sha256>.json`, replaced atomically, so daemons sharing a home
 * share the cache and a crash never leaves half an entry.
 */

/** One stored response. `v` versions the format (test/fixtures/model-cache-entry.json). */
export interface CacheEntry {
  v: 1;
  /** The model asked, `provider/name`. */
  model: string;
  stored_at: string;
  response: ModelResponse;
}

export interface CacheClock {
  now(): number;
}

/** sha256 of the model and the request, key order ignored: the file name of the entry. */
export function cacheKey(model: string, request: ModelRequest): string {
  return createHash('sha256').update(model).update('\0').update(canonicalJson(request)).digest('hex');
}

/** Where an entry lives: the store's HomePaths (state/cache/<key>.json). */
export interface CacheFiles {
  cacheEntry(key: string): string;
}

export class ModelCache {
  /**
   * @param files where entries live (the store's state/cache).
   * @param ttlMs how long an entry answers, in milliseconds.
   */
  constructor(
    private readonly files: CacheFiles,
    private readonly ttlMs: number,
    private readonly clock: CacheClock,
  ) {}

  /** Only temperature-0 calls: any other temperature asks for a different answer each time. */
  static accepts(request: ModelRequest): boolean {
    return request.temperature === 0;
  }

  /** The stored response, or null on a miss, an expired entry, or an entry that is not ours to trust. */
  async get(model: string, request: ModelRequest): Promise<ModelResponse | null> {
    if (!ModelCache.accepts(request)) return null;
    let text: string;
    try {
      text = await fs.readFile(this.file(model, request), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const entry = parseEntry(text);
    // An entry a person edited into something else is a miss, not a crash; the next store replaces it.
    if (!entry || entry.model !== model) return null;
    const age = this.clock.now() - Date.parse(entry.stored_at);
    return age < this.ttlMs ? entry.response : null;
  }

  async set(model: string, request: ModelRequest, response: ModelResponse): Promise<void> {
    if (!ModelCache.accepts(request)) return;
    const entry: CacheEntry = { v: 1, model, stored_at: new Date(this.clock.now()).toISOString(), response };
    await writeJsonAtomic(this.file(model, request), entry);
  }

  private file(model: string, request: ModelRequest): string {
    return this.files.cacheEntry(cacheKey(model, request));
  }
}

function parseEntry(text: string): CacheEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const entry = value as Partial<CacheEntry> | null;
  if (!entry || entry.v !== 1 || typeof entry.model !== 'string' || typeof entry.stored_at !== 'string' || Number.isNaN(Date.parse(entry.stored_at))) return null;
  const response = entry.response as Partial<ModelResponse> | undefined;
  if (!response || !(typeof response.content === 'string' || response.content === null) || !Array.isArray(response.tool_calls)) return null;
  return entry as CacheEntry;
}
