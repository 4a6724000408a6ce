// Byte-level BPE trainer producing a HuggingFace tokenizer.json (GPT-2 / Llama 3 layout).
//
// The result loads in @huggingface/tokenizers (JS) and `tokenizers` (Rust/Python) alike:
//   pre_tokenizer  ByteLevel (GPT-2 split regex, add_prefix_space false): text -> words -> bytes -> 256 symbols
//   model          BPE over those symbols, no unk token: every byte is in the vocabulary, so any UTF-8 text
//                  encodes, and decode(encode(text)) === text
//   post_processor TemplateProcessing prepending BOS (the first special token)
//   decoder        ByteLevel
// Ids: the special tokens first (BOS, EOS, ...), then the 256 byte symbols in byte order, then one id per merge.
//
// Training counts the regex words once, then merges over the unique words. Each step takes the most frequent
// adjacent pair (ties: the lexicographically smallest (left bytes, right bytes)) from a lazy max-heap and
// rewrites only the words that contain it, found through a pair -> word-index map; pair counts are updated
// from those words alone.

import fs from 'node:fs/promises';
import path from 'node:path';

export const BEGIN_OF_TEXT = '<|begin_of_text|>';
export const END_OF_TEXT = '<|end_of_text|>';

/** GPT-2's pre-tokenizer regex, the one the ByteLevel pre-tokenizer of both tokenizers implementations applies. */
const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BpeTrainerOptions {
  /** Total vocabulary size, special tokens and the 256 byte symbols included. */
  vocabSize: number;
  /** Special tokens, ids 0.. in this order; the first is BOS (prepended on encode), the second EOS. */
  specialTokens?: string[];
  /** A pair merges only when it occurs at least this often (default 2). */
  minFrequency?: number;
}

export interface TokenizerConfigOptions {
  /** tokenizer_config.json's model_max_length (default 2048). */
  modelMaxLength?: number;
}

export type TokenizerJson = Record<string, unknown> & {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: Record<string, unknown> & { type: 'BPE'; vocab: Record<string, number>; merges: string[] };
};

/** GPT-2's reversible byte -> printable character table (space -> 'Ġ', newline -> 'Ċ', ...). */
const BYTE_TO_CHAR: string[] = (() => {
  const printable: number[] = [];
  for (let byte = 0x21; byte <= 0x7e; byte++) printable.push(byte);
  for (let byte = 0xa1; byte <= 0xac; byte++) printable.push(byte);
  for (let byte = 0xae; byte <= 0xff; byte++) printable.push(byte);
  const table = new Array<string>(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) table[byte] = String.fromCharCode(printable.includes(byte) ? byte : next++);
  return table;
})();

/** A token's bytes, held as a binary string (one char per byte) so that `<` compares bytes. */
function byteLevelString(binary: string): string {
  let text = '';
  for (let i = 0; i < binary.length; i++) text += BYTE_TO_CHAR[binary.charCodeAt(i)];
  return text;
}

/** Frequency of each regex word over all texts. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    if (typeof text !== 'string') throw new TypeError('texts must yield strings');
    for (const word of text.match(BYTE_LEVEL_SPLIT) ?? []) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

// Pair keys pack (left, right) symbol ids below 2^24 into one number.
const PAIR_SHIFT = 2 ** 24;
const pairKey = (left: number, right: number) => left * PAIR_SHIFT + right;
const pairLeft = (key: number) => Math.floor(key / PAIR_SHIFT);
const pairRight = (key: number) => key % PAIR_SHIFT;

/** Max-heap of (count, pair) with stale entries allowed; the caller re-checks a popped count. */
class PairHeap {
  private readonly keys: number[] = [];
  private readonly counts: number[] = [];

  constructor(private readonly symbolBytes: string[]) {}

  get size(): number {
    return this.keys.length;
  }

  /** Whether entry i outranks entry j: higher count, then smaller left bytes, then smaller right bytes. */
  private before(i: number, j: number): boolean {
    if (this.counts[i] !== this.counts[j]) return this.counts[i] > this.counts[j];
    const leftI = this.symbolBytes[pairLeft(this.keys[i])];
    const leftJ = this.symbolBytes[pairLeft(this.keys[j])];
    if (leftI !== leftJ) return leftI < leftJ;
    return this.symbolBytes[pairRight(this.keys[i])] < this.symbolBytes[pairRight(this.keys[j])];
  }

  private swap(i: number, j: number): void {
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
  }

  push(key: number, count: number): void {
    this.keys.push(key);
    this.counts.push(count);
    for (let i = this.keys.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { key: number; count: number } | undefined {
    if (this.keys.length === 0) return undefined;
    const top = { key: this.keys[0], count: this.counts[0] };
    const lastKey = this.keys.pop() as number;
    const lastCount = this.counts.pop() as number;
    if (this.keys.length > 0) {
      this.keys[0] = lastKey;
      this.counts[0] = lastCount;
      for (let i = 0; ; ) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.keys.length && this.before(left, best)) best = left;
        if (right < this.keys.length && this.before(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

interface LearnedMerges {
  /** Bytes of each symbol (binary string), indexed by symbol id: 0..255 the bytes, then merged tokens. */
  symbolBytes: string[];
  /** The merges in order, as symbol id pairs. */
  merges: [number, number][];
}

/** Learns merges until `targetSymbols` distinct symbols exist or no pair occurs `minFrequency` times. */
function learnMerges(wordCounts: Map<string, number>, targetSymbols: number, minFrequency: number, forbidden: Set<string>): LearnedMerges {
  const symbolBytes: string[] = Array.from({ length: 256 }, (_, byte) => String.fromCharCode(byte));
  const symbolOf = new Map<string, number>(symbolBytes.map((bytes, id) => [bytes, id]));
  const merges: [number, number][] = [];

  // words[w]: the symbol ids of unique word w; frequencies[w]: how often it occurs.
  const words: number[][] = [];
  const frequencies: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push([...Buffer.from(word, 'utf8')]);
    frequencies.push(count);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>(); // may list words that no longer hold the pair
  const addPairs = (w: number, sign: 1 | -1, track: ((key: number) => void) | null) => {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * frequencies[w]);
      if (sign > 0) {
        let holders = pairWords.get(key);
        if (!holders) pairWords.set(key, (holders = new Set()));
        holders.add(w);
        track?.(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1, null);

  const heap = new PairHeap(symbolBytes);
  for (const [key, count] of pairCounts) if (count >= minFrequency) heap.push(key, count);

  while (symbolBytes.length < targetSymbols) {
    const entry = heap.pop();
    if (!entry) break;
    const count = pairCounts.get(entry.key) ?? 0;
    if (count !== entry.count) {
      if (count >= minFrequency) heap.push(entry.key, count);
      continue;
    }
    if (count < minFrequency) break;
    const left = pairLeft(entry.key);
    const right = pairRight(entry.key);
    const mergedBytes = symbolBytes[left] + symbolBytes[right];
    if (forbidden.has(mergedBytes)) {
      pairCounts.delete(entry.key);
      continue;
    }

    // Two merge orders can spell the same token ("ab"+"c", "a"+"bc"): the merge is kept, the symbol reused.
    let merged = symbolOf.get(mergedBytes);
    if (merged === undefined) {
      merged = symbolBytes.length;
      symbolBytes.push(mergedBytes);
      symbolOf.set(mergedBytes, merged);
    }
    merges.push([left, right]);

    // Rewrite the words holding the pair, left to right, and re-count their pairs.
    const changed = new Set<number>();
    const trackMerged = (key: number) => {
      if (pairLeft(key) === merged || pairRight(key) === merged) changed.add(key);
    };
    for (const w of pairWords.get(entry.key) ?? []) {
      const symbols = words[w];
      let holds = false;
      for (let i = 0; i + 1 < symbols.length && !holds; i++) holds = symbols[i] === left && symbols[i + 1] === right;
      if (!holds) continue;
      addPairs(w, -1, null);
      const rewritten: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          rewritten.push(merged);
          i++;
        } else {
          rewritten.push(symbols[i]);
        }
      }
      words[w] = rewritten;
      addPairs(w, 1, trackMerged);
    }
    pairCounts.delete(entry.key);
    pairWords.delete(entry.key);
    for (const key of changed) {
      const newCount = pairCounts.get(key) ?? 0;
      if (newCount >= minFrequency) heap.push(key, newCount);
    }
  }
  return { symbolBytes, merges };
}

/** Trains a byte-level BPE tokenizer on the texts and returns its tokenizer.json object. */
export function trainBpeTokenizer(texts: Iterable<string>, options: BpeTrainerOptions): TokenizerJson {
  const specialTokens = options.specialTokens ?? [BEGIN_OF_TEXT, END_OF_TEXT];
  const minFrequency = options.minFrequency ?? 2;
  const { vocabSize } = options;
  if (specialTokens.length < 2) throw new RangeError('specialTokens must name at least BOS and EOS');
  if (new Set(specialTokens).size !== specialTokens.length) throw new RangeError('specialTokens must be distinct');
  for (const token of specialTokens) {
    if (typeof token !== 'string' || token.length === 0) throw new TypeError('specialTokens must be non-empty strings');
    if (BYTE_TO_CHAR.includes(token)) throw new RangeError(`special token ${JSON.stringify(token)} collides with a byte symbol`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize < specialTokens.length + 256 || vocabSize > PAIR_SHIFT) {
    throw new RangeError(`vocabSize must be an integer in [${specialTokens.length + 256}, ${PAIR_SHIFT}], got ${vocabSize}`);
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new RangeError(`minFrequency must be a positive integer, got ${minFrequency}`);

  // A merged token spelling a special token would share its vocabulary key: such merges are never made.
  const forbidden = new Set(specialTokens.map((token) => Buffer.from(token, 'utf8').toString('latin1')));
  const { symbolBytes, merges } = learnMerges(countWords(texts), vocabSize - specialTokens.length, minFrequency, forbidden);
  return buildTokenizerJson(specialTokens, symbolBytes, merges);
}

function buildTokenizerJson(specialTokens: string[], symbolBytes: string[], merges: [number, number][]): TokenizerJson {
  const symbolStrings = symbolBytes.map(byteLevelString);
  // A null-prototype object, so that a token spelled "__proto__" is an ordinary key.
  const vocab: Record<string, number> = Object.create(null);
  specialTokens.forEach((token, id) => (vocab[token] = id));
  symbolStrings.forEach((token, symbol) => (vocab[token] = specialTokens.length + symbol));

  const bos = specialTokens[0];
  const bosEntry = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [bosEntry, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bosEntry, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [0], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // Byte-level symbols never contain a space, so the "left right" string form is unambiguous.
      merges: merges.map(([left, right]) => `${symbolStrings[left]} ${symbolStrings[right]}`),
    },
  };
}

/** tokenizer_config.json for a trained tokenizer: BOS and EOS are its first two special tokens. */
export function tokenizerConfigFor(tokenizerJson: TokenizerJson, options: TokenizerConfigOptions = {}): Record<string, unknown> {
  const [bos, eos] = tokenizerJson.added_tokens;
  if (!bos || !eos) throw new RangeError('tokenizerJson must have at least two added tokens (BOS, EOS)');
  const modelMaxLength = options.modelMaxLength ?? 2048;
  if (!Number.isInteger(modelMaxLength) || modelMaxLength < 1) throw new RangeError(`modelMaxLength must be a positive integer, got ${modelMaxLength}`);
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: bos.content,
    eos_token: eos.content,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(
      tokenizerJson.added_tokens.map((token) => [
        String(token.id),
        { content: token.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: token.special },
      ]),
    ),
  };
}

/** Writes tokenizer.json and tokenizer_config.json into dir (created if missing). */
export async function writeTokenizerFiles(dir: string, tokenizerJson: TokenizerJson, tokenizerConfig: Record<string, unknown>): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 2) + '\n');
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
}
