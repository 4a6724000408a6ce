// Training corpus: which files, which of them are held out, and the token stream they make.
//
// listCorpusFiles expands paths into a sorted list of files; splitHeldOut assigns each file to train or held-out
// by an FNV-1a hash of its path relative to a root, so the split is the same on every machine and does not move
// when files are added elsewhere; tokenizeCorpus frames each document as [bos, ...tokens, eos] in one Int32Array.

import fs from 'node:fs';
import path from 'node:path';

export interface CorpusOptions {
  /** File name endings to keep, e.g. ['.py']; default: every regular file. */
  extensions?: string[];
  /** File or folder names (not paths) to skip while walking folders, e.g. ['test', 'site-packages']. */
  exclude?: string[];
}

/** What tokenizeCorpus needs of a tokenizer; LlamaTokenizer (lib/tokenizer.ts) satisfies it. */
export interface TokenizerLike {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  readonly bosTokenId?: number | null;
  readonly eosTokenIds?: readonly number[];
}

export interface TokenizedCorpus {
  /** (total tokens,) documents back to back, each [bos?, ...tokens, eos?]. */
  tokens: Int32Array;
  /** Documents tokenized. */
  documents: number;
  /** Files skipped as binary (not valid UTF-8, or containing NUL bytes). */
  skipped: number;
  /** UTF-8 bytes of the documents tokenized. */
  bytes: number;
}

const SKIPPED_DIRECTORIES = new Set(['__pycache__', 'node_modules']);

/**
 * Expands files and directories (recursively; symlinks are not followed; dot-directories, __pycache__ and
 * node_modules are skipped) into a sorted, de-duplicated list of absolute paths.
 */
export function listCorpusFiles(paths: string[], options: CorpusOptions = {}): string[] {
  const extensions = options.extensions?.map((extension) => extension.toLowerCase());
  const keep = (file: string) => !extensions || extensions.some((extension) => file.toLowerCase().endsWith(extension));
  const excluded = new Set(options.exclude ?? []);
  const found = new Set<string>();

  const walk = (directory: string) => {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      if (excluded.has(entry.name)) continue;
      const entryPath = path.join(directory, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('.') && !SKIPPED_DIRECTORIES.has(entry.name)) walk(entryPath);
      } else if (entry.isFile() && keep(entry.name)) {
        found.add(entryPath);
      }
    }
  };

  for (const given of paths) {
    const absolute = path.resolve(given);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(absolute); // a path named explicitly may be a symlink; links met while walking are not followed
    } catch (error) {
      throw new Error(`corpus path ${given} does not exist or cannot be read: ${(error as Error).message}`, { cause: error });
    }
    const before = found.size;
    if (stat.isDirectory()) walk(absolute);
    else if (stat.isFile() && keep(absolute)) found.add(absolute);
    if (found.size === before && !hasFileUnder(found, absolute, stat.isDirectory())) {
      const filter = extensions ? ` matching ${extensions.join(', ')}` : '';
      throw new Error(`corpus path ${given} yields no files${filter}`);
    }
  }
  return [...found].sort();
}

/** Whether a path given twice (or nested in another given path) already contributed files. */
function hasFileUnder(found: Set<string>, absolute: string, isDirectory: boolean): boolean {
  if (!isDirectory) return found.has(absolute);
  const prefix = absolute.endsWith(path.sep) ? absolute : absolute + path.sep;
  for (const file of found) if (file.startsWith(prefix)) return true;
  return false;
}

/** 32-bit FNV-1a over the UTF-8 bytes of a string. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Held-out split by the hash of each file's path relative to `root`, with '/' separators so it is the same on
 * every machine and OS: a file is held out when fnv1a32(relative) / 2^32 < heldOutFraction.
 */
export function splitHeldOut(files: string[], root: string, heldOutFraction: number): { train: string[]; heldOut: string[] } {
  if (!(heldOutFraction >= 0 && heldOutFraction <= 1)) throw new RangeError(`heldOutFraction must be in [0, 1], got ${heldOutFraction}`);
  const absoluteRoot = path.resolve(root);
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const file of files) {
    const relative = path.relative(absoluteRoot, path.resolve(file)).split(path.sep).join('/');
    (fnv1a32(relative) / 2 ** 32 < heldOutFraction ? heldOut : train).push(file);
  }
  return { train, heldOut };
}

/** The file's text, or null when it is binary: contains a NUL byte or is not valid UTF-8. */
export function readTextFile(file: string): { text: string; bytes: number } | null {
  const buffer = fs.readFileSync(file);
  if (buffer.includes(0)) return null;
  let text: string;
  try {
    text = UTF8_STRICT.decode(buffer);
  } catch {
    return null;
  }
  return { text, bytes: buffer.length };
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Tokenizes each file without special tokens and concatenates the documents as [bos, ...tokens, eos]
 * (bos / eos left out when the tokenizer has none). Binary files are skipped and counted.
 */
export function tokenizeCorpus(tokenizer: TokenizerLike, files: string[], onProgress?: (done: number, total: number) => void): TokenizedCorpus {
  const bos = tokenizer.bosTokenId ?? null;
  const eos = tokenizer.eosTokenIds?.[0] ?? null;
  const chunks: Int32Array[] = [];
  let totalTokens = 0;
  let documents = 0;
  let skipped = 0;
  let bytes = 0;

  files.forEach((file, index) => {
    const document = readTextFile(file);
    if (document === null) {
      skipped++;
    } else {
      const ids = tokenizer.encode(document.text, { addSpecialTokens: false });
      const framed = new Int32Array(ids.length + (bos === null ? 0 : 1) + (eos === null ? 0 : 1));
      let offset = 0;
      if (bos !== null) framed[offset++] = bos;
      framed.set(ids, offset);
      if (eos !== null) framed[offset + ids.length] = eos;
      chunks.push(framed);
      totalTokens += framed.length;
      documents++;
      bytes += document.bytes;
    }
    onProgress?.(index + 1, files.length);
  });

  const tokens = new Int32Array(totalTokens);
  let offset = 0;
  for (const chunk of chunks) {
    tokens.set(chunk, offset);
    offset += chunk.length;
  }
  return { tokens, documents, skipped, bytes };
}
