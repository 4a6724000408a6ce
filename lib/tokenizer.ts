// LlamaTokenizer: HuggingFace tokenizer.json + tokenizer_config.json, through @huggingface/tokenizers.
//
// BOS follows the files: when the tokenizer.json post-processor (TemplateProcessing) adds BOS, encode()
// gets it from there; otherwise, when tokenizer_config.json says add_bos_token: true, encode() prepends
// it once. The same holds for EOS with add_eos_token. decode() returns the text verbatim by default:
// the BERT-era clean_up_tokenization_spaces (" ." -> ".") is applied only when asked for, because it
// rewrites what the model generated and cannot be applied incrementally by a streaming detokenizer.

import fs from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

import { MAX_JSON_FILE_BYTES, MAX_TOKENIZER_FILE_BYTES, MAX_VOCAB_SIZE } from './limits.js';

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer files specify (default true). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens such as <s> or <|eot_id|> (default false). */
  skipSpecialTokens?: boolean;
  /** Apply clean_up_tokenization_spaces (default false; see the header). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface LlamaTokenizerOptions {
  /** Extra end-of-sequence ids, e.g. generation_config.json's eos_token_id list. */
  extraEosTokenIds?: number[];
}

type JsonObject = Record<string, unknown>;

/** A tokenizer_config.json special-token entry: a string or an AddedToken object {content}. */
function specialTokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as JsonObject).content === 'string') return (value as JsonObject).content as string;
  return null;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks every token id tokenizer.json states (added_tokens[].id, a BPE / WordPiece model.vocab's values) is an
 * integer in [0, MAX_VOCAB_SIZE) before the tokenizer library sees the file: it sizes tables by the largest id.
 */
function checkTokenIds(tokenizerJson: JsonObject): void {
  const check = (id: unknown, where: string) => {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= MAX_VOCAB_SIZE) {
      throw new RangeError(`tokenizer.json ${where} has id ${JSON.stringify(id)}, not an integer in [0, ${MAX_VOCAB_SIZE})`);
    }
  };
  const added = tokenizerJson.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new TypeError('tokenizer.json added_tokens must be an array');
    added.forEach((token, index) => check(isObject(token) ? token.id : undefined, `added_tokens[${index}]`));
  }
  const vocab = (tokenizerJson.model as JsonObject).vocab;
  if (isObject(vocab)) for (const [token, id] of Object.entries(vocab)) check(id, `model.vocab[${JSON.stringify(token)}]`);
  else if (Array.isArray(vocab) && vocab.length > MAX_VOCAB_SIZE) {
    throw new RangeError(`tokenizer.json model.vocab has ${vocab.length} entries, more than ${MAX_VOCAB_SIZE}`);
  }
}

export class LlamaTokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  /** One past the largest token id, added tokens included. */
  readonly vocabSize: number;

  private readonly tokenizer: Tokenizer;
  private readonly prependBos: boolean;
  private readonly appendEos: boolean;
  private readonly specialIds: Set<number>;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, options: LlamaTokenizerOptions = {}) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) throw new TypeError('tokenizerJson must be a parsed tokenizer.json object with a model');
    if (!isObject(tokenizerConfig)) throw new TypeError('tokenizerConfig must be a parsed tokenizer_config.json object');
    checkTokenIds(tokenizerJson);
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);

    const idOf = (key: string): number | null => {
      const content = specialTokenContent(tokenizerConfig[key]);
      return content === null ? null : (this.tokenizer.token_to_id(content) ?? null);
    };
    this.bosTokenId = idOf('bos_token');
    const configEos = idOf('eos_token');
    this.eosTokenIds = [...new Set([...(configEos === null ? [] : [configEos]), ...(options.extraEosTokenIds ?? [])])];

    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.specialIds = new Set(
      [...this.tokenizer.get_added_tokens_decoder().entries()].filter(([, token]) => token.special).map(([id]) => id),
    );

    // What does the post-processor add by itself? Probe with a plain letter.
    const withSpecial = this.tokenizer.encode('a', { add_special_tokens: true }).ids;
    const withoutSpecial = this.tokenizer.encode('a', { add_special_tokens: false }).ids;
    const templateAddsBos = this.bosTokenId !== null && withSpecial[0] === this.bosTokenId && withoutSpecial[0] !== this.bosTokenId;
    const lastOf = (ids: number[]) => ids[ids.length - 1];
    const templateAddsEos = configEos !== null && lastOf(withSpecial) === configEos && lastOf(withoutSpecial) !== configEos;
    this.prependBos = !templateAddsBos && tokenizerConfig.add_bos_token === true && this.bosTokenId !== null;
    this.appendEos = !templateAddsEos && tokenizerConfig.add_eos_token === true && configEos !== null;
  }

  /**
   * Loads tokenizer.json (required), tokenizer_config.json (optional) and generation_config.json's
   * eos_token_id (optional) from a model folder.
   */
  static async fromDir(dir: string): Promise<LlamaTokenizer> {
    const tokenizerJson = await readJsonFile(path.join(dir, 'tokenizer.json'), true, MAX_TOKENIZER_FILE_BYTES);
    const tokenizerConfig = (await readJsonFile(path.join(dir, 'tokenizer_config.json'), false, MAX_TOKENIZER_FILE_BYTES)) ?? {};
    const generationConfig = await readJsonFile(path.join(dir, 'generation_config.json'), false, MAX_JSON_FILE_BYTES);
    const generationEos = generationConfig?.eos_token_id;
    const extraEosTokenIds = (Array.isArray(generationEos) ? generationEos : [generationEos]).filter((id): id is number => Number.isInteger(id));
    try {
      return new LlamaTokenizer(tokenizerJson, tokenizerConfig, { extraEosTokenIds });
    } catch (error) {
      throw new Error(`cannot build a tokenizer from ${path.join(dir, 'tokenizer.json')}: ${(error as Error).message}`, { cause: error });
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError('text must be a string');
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const ids = this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    if (addSpecialTokens && this.prependBos) ids.unshift(this.bosTokenId as number);
    if (addSpecialTokens && this.appendEos) ids.push(this.eosTokenIds[0]);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} out of range [0, ${this.vocabSize})`);
    }
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  isSpecialToken(id: number): boolean {
    return this.specialIds.has(id);
  }

  isEosToken(id: number): boolean {
    return this.eosTokenIds.includes(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }
}

/**
 * Reads and parses a JSON object file; a missing optional file yields null, anything else malformed throws naming the
 * file. Only a regular file of at most `maxBytes` is read: a FIFO, device or folder is refused before any read.
 */
export async function readJsonFile(file: string, required: boolean, maxBytes: number): Promise<JsonObject | null> {
  let text: string;
  try {
    text = await readRegularFile(file, maxBytes);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return null;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`malformed JSON in ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!isObject(value)) throw new Error(`malformed ${file}: expected a JSON object`);
  return value;
}

/** The UTF-8 text of a regular file of at most `maxBytes`; O_NONBLOCK so that opening a FIFO cannot block. */
async function readRegularFile(file: string, maxBytes: number): Promise<string> {
  const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new Error('not a regular file (a FIFO, device or folder cannot be a tokenizer file)');
    if (stats.size > maxBytes) throw new Error(`${stats.size} bytes is larger than the ${maxBytes >> 20} MiB limit for this file`);
    // One byte more than stated, so a file that grows while being read is caught rather than followed.
    const buffer = Buffer.alloc(stats.size + 1);
    let done = 0;
    while (done < buffer.length) {
      const { bytesRead } = await handle.read(buffer, done, buffer.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done > stats.size) throw new Error(`the file grew while being read (limit ${maxBytes >> 20} MiB)`);
    return buffer.toString('utf8', 0, done);
  } finally {
    await handle.close();
  }
}

export { StreamingDetokenizer } from './detokenizer.js';
