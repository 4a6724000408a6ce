// Mutations of tokenizer.json and tokenizer_config.json: token ids (added_tokens, model.vocab) made huge, negative,
// fractional or wrong-typed, the model's structure broken, special-token entries of the wrong shape. What must be
// refused: an id that is not an integer in [0, 2^24) or lies beyond config.json's vocab_size (lib/tokenizer.ts,
// lib/model.ts), a tokenizer.json that is not JSON or has no model object, a tokenizer_config.json that is not a JSON
// object. The tokenizer's regular expressions are trusted (README "Limits and trust model") and not mutated.
import fs from 'node:fs';
import path from 'node:path';

import type { FixtureInfo } from './checkpoint-files.js';
import { RAW_PLACEHOLDER, replaceFile } from './checkpoint-files.js';
import type { Expectation, Mutation, MutationFamily } from './mutation.js';
import { awkwardValue, isInteger, type Rng } from './values.js';

const parsed = new Map<string, Record<string, any>>();
function tokenizerJsonOf(fixture: FixtureInfo, file: string): Record<string, any> {
  const key = path.join(fixture.dir, file);
  if (!parsed.has(key)) parsed.set(key, JSON.parse(fs.readFileSync(key, 'utf8')));
  return parsed.get(key)!;
}

/** A token id that lib/tokenizer.ts and the vocab_size check must refuse. */
function badTokenId(value: unknown, vocab: number): boolean {
  return !isInteger(value) || value < 0 || value >= vocab;
}

function tokenIds(rng: Rng, fixture: FixtureInfo): Mutation | null {
  if (!fixture.hasTokenizer) return null;
  const json = tokenizerJsonOf(fixture, 'tokenizer.json');
  const value = rng.chance(0.3) ? { text: String(fixture.vocabSize), value: fixture.vocabSize } : awkwardValue(rng, [fixture.vocabSize]);
  const placeholder = JSON.stringify(RAW_PLACEHOLDER);
  if (rng.chance(0.5)) {
    const index = rng.int(json.added_tokens.length);
    const original = json.added_tokens[index].id;
    const expect: Expectation = badTokenId(value.value, fixture.vocabSize) ? 'refuse' : undefined;
    return {
      kind: 'tokenizer.ids', target: 'tokenizer.json', expect,
      description: `tokenizer.json: added_tokens[${index}].id ${original} -> ${value.text.slice(0, 60)}`,
      apply: (dir) => {
        const added = json.added_tokens.map((token: object, i: number) => (i === index ? { ...token, id: RAW_PLACEHOLDER } : token));
        replaceFile(dir, 'tokenizer.json', JSON.stringify({ ...json, added_tokens: added }).replace(placeholder, () => value.text));
      },
    };
  }
  const tokens = Object.keys(json.model.vocab);
  const token = tokens[rng.int(tokens.length)];
  return {
    kind: 'tokenizer.ids', target: 'tokenizer.json', expect: badTokenId(value.value, fixture.vocabSize) ? 'refuse' : undefined,
    description: `tokenizer.json: model.vocab[${JSON.stringify(token)}] ${json.model.vocab[token]} -> ${value.text.slice(0, 60)}`,
    apply: (dir) => {
      const vocab = { ...json.model.vocab, [token]: RAW_PLACEHOLDER };
      replaceFile(dir, 'tokenizer.json', JSON.stringify({ ...json, model: { ...json.model, vocab } }).replace(placeholder, () => value.text));
    },
  };
}

function tokenizerStructure(rng: Rng, fixture: FixtureInfo): Mutation | null {
  if (!fixture.hasTokenizer) return null;
  const json = tokenizerJsonOf(fixture, 'tokenizer.json');
  const write = (value: unknown, what: string, expect: Expectation): Mutation => ({
    kind: 'tokenizer.structure', target: 'tokenizer.json', description: `tokenizer.json: ${what}`, expect,
    apply: (dir) => replaceFile(dir, 'tokenizer.json', typeof value === 'string' ? value : JSON.stringify(value)),
  });
  const op = rng.int(9);
  if (op === 0) return write({ ...json, model: undefined }, 'model removed', 'refuse');
  if (op === 1) {
    const type = rng.pick(['WordPiece', 'Unigram', 'WordLevel', 'Bogus', 5, null]);
    return write({ ...json, model: { ...json.model, type } }, `model.type = ${JSON.stringify(type)}`, undefined);
  }
  if (op === 2) {
    const merges = rng.pick([[5], [['a']], 'x', null, [['a', 'b', 'c']], ['a'], [' ']]);
    return write({ ...json, model: { ...json.model, merges: [...(merges as unknown[] ?? []), ...json.model.merges] } },
      `merges start with ${JSON.stringify(merges)}`, undefined);
  }
  if (op === 3) {
    const added = rng.pick([{}, [5], [{ id: 3 }], [{ content: 'x' }], [{ id: 3, content: 5 }], 'x']);
    return write({ ...json, added_tokens: added }, `added_tokens = ${JSON.stringify(added)}`, undefined);
  }
  if (op === 4) {
    const count = rng.pick([1000, 100_000]);
    const added = Array.from({ length: count }, (_, i) => ({ id: i % fixture.vocabSize, content: `<x${i}>`, special: true }));
    return write({ ...json, added_tokens: [...json.added_tokens, ...added] }, `${count} added tokens reusing ids`, undefined);
  }
  if (op === 5) {
    const part = rng.pick(['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']);
    const value = rng.pick([null, 5, { type: 'Bogus' }, [], { type: 'Sequence', normalizers: 'x', pretokenizers: 5, processors: null, decoders: {} }]);
    return write({ ...json, [part]: value }, `${part} = ${JSON.stringify(value)}`, undefined);
  }
  if (op === 6) {
    const text = JSON.stringify(json);
    const at = 1 + rng.int(text.length - 2);
    return write(text.slice(0, at), `cut at byte ${at}`, 'refuse');
  }
  if (op === 7) return write('[]', 'the root is an array', 'refuse');
  const vocab = rng.pick([[], {}, 'x', Array.from({ length: 10 }, (_, i) => [`t${i}`, 0])]);
  return write({ ...json, model: { ...json.model, vocab } }, `model.vocab = ${JSON.stringify(vocab).slice(0, 60)}`, undefined);
}

function tokenizerConfig(rng: Rng, fixture: FixtureInfo): Mutation | null {
  if (!fixture.files.includes('tokenizer_config.json')) return null;
  const config = tokenizerJsonOf(fixture, 'tokenizer_config.json');
  const field = rng.pick(['bos_token', 'eos_token', 'add_bos_token', 'add_eos_token', 'added_tokens_decoder', 'chat_template', 'model_max_length', 'unk_token']);
  const value = rng.pick<unknown>([
    5, null, {}, { content: 5 }, { content: 'not-a-token' }, 'not-a-token', 'yes', 1, [], 1e308,
    { '1000000000': { content: '<big>', special: true } }, { '-1': { content: '<neg>' } }, { x: 5 }, '{% for x in %}',
  ]);
  const op = rng.int(6);
  if (op === 0) {
    const text = JSON.stringify(config);
    const at = 1 + rng.int(text.length - 2);
    return {
      kind: 'tokenizer_config', target: 'tokenizer_config.json', expect: 'refuse', description: `tokenizer_config.json: cut at byte ${at}`,
      apply: (dir) => replaceFile(dir, 'tokenizer_config.json', text.slice(0, at)),
    };
  }
  if (op === 1) {
    return {
      kind: 'tokenizer_config', target: 'tokenizer_config.json', expect: 'accept', description: 'tokenizer_config.json removed',
      apply: (dir) => fs.rmSync(path.join(dir, 'tokenizer_config.json')),
    };
  }
  return {
    kind: 'tokenizer_config', target: 'tokenizer_config.json', expect: undefined,
    description: `tokenizer_config.json: "${field}": ${JSON.stringify(value)}`,
    apply: (dir) => replaceFile(dir, 'tokenizer_config.json', JSON.stringify({ ...config, [field]: value })),
  };
}

export const TOKENIZER_FAMILIES: MutationFamily[] = [
  { kind: 'tokenizer.ids', weight: 3, generate: tokenIds },
  { kind: 'tokenizer.structure', weight: 3, generate: tokenizerStructure },
  { kind: 'tokenizer_config', weight: 2, generate: tokenizerConfig },
];
