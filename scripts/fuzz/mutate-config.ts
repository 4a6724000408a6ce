// Mutations of config.json, generation_config.json and model.safetensors.index.json: fields set to huge, negative,
// non-integer and wrong-typed values, fields removed or given twice (the last one wins, as in Python), deep nesting,
// broken files, and shard maps that point elsewhere. What must be refused: any shape field that no longer matches
// the tensors, a value outside its type or range (core/config.cc, core/limits.h), a token id outside the vocabulary,
// invalid JSON, and a shard map naming anything but a shard of the folder holding the tensor.
import type { FixtureInfo } from './checkpoint-files.js';
import { replaceFile, replaceWithSymlink, withDuplicateKey, withRawField } from './checkpoint-files.js';
import type { Expectation, Mutation, MutationFamily } from './mutation.js';
import { awkwardValue, isInteger, isPositiveNumber, isTokenIds, nested, type RawValue, type Rng } from './values.js';
import fs from 'node:fs';
import path from 'node:path';

// Shape fields must equal what the tensors say; required ones cannot be dropped.
const SHAPE_FIELDS = ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'head_dim'];
const REQUIRED_FIELDS = ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size'];
const CONFIG_FIELDS = [
  ...SHAPE_FIELDS, 'num_hidden_layers', 'max_position_embeddings', 'rope_theta', 'rms_norm_eps', 'bos_token_id',
  'eos_token_id', 'tie_word_embeddings', 'architectures', 'model_type', 'torch_dtype',
];

/** Whether config.json with `field` set to `value` must be refused (undefined: either way is fine). */
export function configExpectation(fixture: FixtureInfo, field: string, value: unknown): Expectation {
  const original = fixture.config[field];
  if (value === undefined || value === null) return REQUIRED_FIELDS.includes(field) ? 'refuse' : undefined;
  if (SHAPE_FIELDS.includes(field)) return value === original ? undefined : 'refuse';
  switch (field) {
    case 'num_hidden_layers':
      return isInteger(value) && value >= 1 && value <= original ? undefined : 'refuse';
    case 'max_position_embeddings':
      return isInteger(value) && value >= 1 && value <= 2 ** 31 - 1 ? undefined : 'refuse';
    case 'rope_theta':
    case 'rms_norm_eps':
      return isPositiveNumber(value) ? undefined : 'refuse';
    case 'bos_token_id':
    case 'eos_token_id':
      return isTokenIds(value, fixture.vocabSize) ? undefined : 'refuse';
    case 'tie_word_embeddings':
      if (typeof value !== 'boolean') return 'refuse';
      return original === true && value === false ? 'refuse' : undefined; // no lm_head.weight to untie to
    case 'architectures':
      return Array.isArray(value) && value.includes('LlamaForCausalLM') ? undefined : 'refuse';
    default:
      return undefined;
  }
}

const usualValues = (fixture: FixtureInfo) =>
  [fixture.config.hidden_size, fixture.config.num_attention_heads, fixture.vocabSize, fixture.numLayers];

function configField(rng: Rng, fixture: FixtureInfo): Mutation {
  const field = rng.pick(CONFIG_FIELDS);
  const value = field === 'architectures' && rng.chance(0.5)
    ? { text: rng.pick(['["GPT2LMHeadModel"]', '"LlamaForCausalLM"', '["LlamaForCausalLM", 5]']), value: undefined as unknown }
    : awkwardValue(rng, usualValues(fixture));
  if (value.value === undefined) value.value = JSON.parse(value.text);
  return {
    kind: 'config.field', target: 'config.json', description: `config.json: "${field}": ${value.text.slice(0, 60)}`,
    expect: configExpectation(fixture, field, value.value),
    apply: (dir) => replaceFile(dir, 'config.json', withRawField(fixture.config, field, value.text)),
  };
}

function configMissing(rng: Rng, fixture: FixtureInfo): Mutation {
  const field = rng.pick(Object.keys(fixture.config));
  const missing = { ...fixture.config };
  delete missing[field];
  const expect = field === 'architectures' ? undefined : configExpectation(fixture, field, undefined);
  return {
    kind: 'config.missing', target: 'config.json', description: `config.json: "${field}" removed`, expect,
    apply: (dir) => replaceFile(dir, 'config.json', JSON.stringify(missing, null, 2)),
  };
}

function configDuplicate(rng: Rng, fixture: FixtureInfo): Mutation {
  const field = rng.pick(CONFIG_FIELDS.filter((name) => name in fixture.config));
  const value = awkwardValue(rng, usualValues(fixture));
  const first = rng.chance(0.5);
  // The last value wins: a bad one first changes nothing (unless it breaks the document's depth limit); a bad one
  // last is read.
  const tooDeep = value.text.startsWith('['.repeat(64));
  const expect = tooDeep ? 'refuse' : first ? 'accept' : configExpectation(fixture, field, value.value);
  return {
    kind: 'config.duplicate', target: 'config.json', expect,
    description: `config.json: "${field}": ${value.text.slice(0, 60)} added ${first ? 'before' : 'after'} the original`,
    apply: (dir) => replaceFile(dir, 'config.json', withDuplicateKey(fixture.configText, field, value.text, first)),
  };
}

function configNesting(rng: Rng, fixture: FixtureInfo): Mutation {
  const op = rng.int(3);
  let junk: RawValue;
  let expect: Expectation;
  if (op === 0) {
    const depth = rng.pick([10, 63, 65, 1000, 1_000_000]);
    junk = nested(depth);
    expect = depth <= 63 ? 'accept' : 'refuse';
  } else if (op === 1) {
    const count = rng.pick([1000, 500_000, 1_100_000, 3_000_000]);
    junk = { text: `[${'[],'.repeat(count - 1)}[]]`, value: count };
    expect = count + 1 < 1 << 20 ? 'accept' : 'refuse'; // the limit counts every value of the document
  } else {
    const length = rng.pick([1000, 4 << 20, 15 << 20, 17 << 20]);
    junk = { text: JSON.stringify('x'.repeat(length)), value: length };
    expect = length < 16 << 20 ? 'accept' : 'refuse';
  }
  return {
    kind: 'config.nesting', target: 'config.json', expect,
    description: `config.json: "junk": ${junk.text.length > 40 ? `${junk.text.slice(0, 20)}… (${junk.text.length} bytes)` : junk.text}`,
    apply: (dir) => replaceFile(dir, 'config.json', withRawField(fixture.config, 'junk', junk.text)),
  };
}

/** Whole-file breakage shared by every JSON file: empty, cut, wrong root, not UTF-8. */
function brokenJson(rng: Rng, text: string): { description: string; content: Buffer; valid: boolean | undefined } {
  const op = rng.int(7);
  if (op === 0) return { description: 'empty', content: Buffer.alloc(0), valid: false };
  if (op === 1) {
    const at = 1 + rng.int(text.length - 2);
    return { description: `cut at byte ${at}`, content: Buffer.from(text.slice(0, at)), valid: false };
  }
  if (op === 2) return { description: 'root is an array', content: Buffer.from(`[${text}]`), valid: undefined };
  if (op === 3) return { description: 'root is a string', content: Buffer.from('"config"'), valid: undefined };
  if (op === 4) return { description: 'starts with a UTF-8 BOM', content: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), valid: undefined };
  if (op === 5) {
    const bytes = Buffer.from(text.replace('{', '{"junk": "ab",'));
    bytes[bytes.indexOf('"ab"') + 1] = 0xff;
    return { description: 'a string with a byte that is not UTF-8', content: bytes, valid: false };
  }
  return { description: 'two objects', content: Buffer.from(`${text}${text}`), valid: false };
}

function configFile(rng: Rng, fixture: FixtureInfo): Mutation {
  const broken = brokenJson(rng, fixture.configText);
  return {
    kind: 'config.file', target: 'config.json', description: `config.json: ${broken.description}`,
    expect: broken.valid === false || broken.description.startsWith('root') ? 'refuse' : undefined,
    apply: (dir) => replaceFile(dir, 'config.json', broken.content),
  };
}

const ROPE_SCALINGS: [string, Expectation][] = [
  ['null', undefined],
  ['{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}', undefined],
  ['{"rope_type": "llama3", "factor": -1, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}', 'refuse'],
  ['{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 64}', 'refuse'],
  ['{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 0}', 'refuse'],
  ['{"rope_type": "llama3", "factor": 1e308, "low_freq_factor": 1e-308, "high_freq_factor": 1e308, "original_max_position_embeddings": 2147483647}', undefined],
  ['{"rope_type": "yarn", "factor": 8}', 'refuse'],
  ['"linear"', 'refuse'],
  ['{"rope_type": "llama3"}', 'refuse'],
];

function ropeScaling(rng: Rng, fixture: FixtureInfo): Mutation {
  const [text, expect] = rng.pick(ROPE_SCALINGS);
  return {
    kind: 'config.rope_scaling', target: 'config.json', description: `config.json: "rope_scaling": ${text}`, expect,
    apply: (dir) => replaceFile(dir, 'config.json', withRawField(fixture.config, 'rope_scaling', text)),
  };
}

function generationConfig(rng: Rng, fixture: FixtureInfo): Mutation {
  const original = JSON.parse(fs.readFileSync(path.join(fixture.dir, 'generation_config.json'), 'utf8'));
  const kind = 'generation_config';
  const op = rng.int(5);
  if (op === 0) {
    return { kind, target: 'generation_config.json', description: 'generation_config.json removed', expect: 'accept', apply: (dir) => fs.rmSync(path.join(dir, 'generation_config.json')) };
  }
  if (op === 1) {
    const broken = brokenJson(rng, JSON.stringify(original));
    return {
      kind, target: 'generation_config.json', description: `generation_config.json: ${broken.description}`,
      expect: broken.valid === false ? 'refuse' : undefined,
      apply: (dir) => replaceFile(dir, 'generation_config.json', broken.content),
    };
  }
  const field = rng.pick(['eos_token_id', 'eos_token_id', 'bos_token_id', 'do_sample', 'max_length']);
  const value = op === 2 ? { text: `[2, ${awkwardValue(rng).text}]`, value: undefined as unknown } : awkwardValue(rng, [fixture.vocabSize]);
  if (value.value === undefined) {
    try {
      value.value = JSON.parse(value.text);
    } catch {
      value.value = 'unparsed';
    }
  }
  const expect = field === 'eos_token_id' && !(value.value === null || isTokenIds(value.value, fixture.vocabSize)) ? 'refuse' : undefined;
  return {
    kind, target: 'generation_config.json', description: `generation_config.json: "${field}": ${value.text.slice(0, 60)}`, expect,
    apply: (dir) => replaceFile(dir, 'generation_config.json', withRawField(original, field, value.text)),
  };
}

const INDEX = 'model.safetensors.index.json';

function shardIndex(rng: Rng, fixture: FixtureInfo): Mutation | null {
  if (!fixture.files.includes(INDEX)) return null;
  const index = JSON.parse(fs.readFileSync(path.join(fixture.dir, INDEX), 'utf8'));
  const weightMap: Record<string, string> = index.weight_map;
  const tensor = rng.pick(Object.keys(weightMap));
  const shards = [...new Set(Object.values(weightMap))];
  const write = (value: unknown, what: string, expect: Expectation): Mutation => ({
    kind: 'index.json', target: INDEX, description: `${INDEX}: ${what}`, expect,
    apply: (dir) => replaceFile(dir, INDEX, typeof value === 'string' ? value : JSON.stringify(value, null, 2)),
  });
  const op = rng.int(9);
  if (op === 0) {
    const elsewhere = rng.pick([
      'model-00009-of-00003.safetensors', '../tiny-mha-f32/model.safetensors', '/etc/passwd', 'sub/model.safetensors', '',
      '.', '..', 'model.safetensors\u0000.x', `${'a'.repeat(5000)}.safetensors`, '/dev/zero', 'config.json',
      '..\\model-00001-of-00003.safetensors', '%2e%2e/model.safetensors',
    ]);
    return write({ ...index, weight_map: { ...weightMap, [tensor]: elsewhere } }, `${tensor} -> ${JSON.stringify(elsewhere.slice(0, 60))}`, 'refuse');
  }
  if (op === 1) {
    const other = shards.find((shard) => shard !== weightMap[tensor])!;
    return write({ ...index, weight_map: { ...weightMap, [tensor]: other } }, `${tensor} -> ${other} (not where it is)`, 'refuse');
  }
  if (op === 2) {
    const rest = { ...weightMap };
    delete rest[tensor];
    return write({ ...index, weight_map: rest }, `${tensor} removed from the map`, undefined);
  }
  if (op === 3) return write({ ...index, weight_map: { ...weightMap, 'extra.weight': shards[0] } }, 'an entry for a tensor no shard has', undefined);
  if (op === 4) {
    const value = rng.pick([[], 'x', null, 5, { [tensor]: 5 }]);
    return write({ ...index, weight_map: value }, `weight_map = ${JSON.stringify(value)}`, 'refuse');
  }
  if (op === 5) return write({ metadata: index.metadata }, 'weight_map removed', 'refuse');
  if (op === 6) {
    const text = JSON.stringify(index).replace('"weight_map":{', () => `"weight_map":{${JSON.stringify(tensor)}:"../../etc/passwd",`);
    return write(text, `${tensor} given twice, the bad one first`, 'accept');
  }
  if (op === 7) return write({ ...index, metadata: { total_size: rng.pick([0, -1, 2 ** 60, 'x']) } }, 'a wrong total_size', undefined);
  return {
    kind: 'index.json', target: INDEX, description: `${INDEX} removed`, expect: 'refuse',
    apply: (dir) => fs.rmSync(path.join(dir, INDEX)),
  };
}

/** A shard (or the single file) symlinked to a copy outside the folder, as the HuggingFace cache does: must load. */
function symlinkedWeights(rng: Rng, fixture: FixtureInfo): Mutation {
  const file = rng.pick(fixture.safetensors).name;
  return {
    kind: 'symlinked-weights', target: file, expect: 'accept', description: `${file} is a symlink to a copy in a sibling folder (HF cache style)`,
    apply: (dir) => {
      const blobs = path.join(path.dirname(dir), 'blobs'); // beside the case's folder, inside its work folder
      fs.mkdirSync(blobs, { recursive: true });
      fs.copyFileSync(path.join(fixture.dir, file), path.join(blobs, file));
      replaceWithSymlink(dir, file, path.join('..', 'blobs', file));
    },
  };
}

export const CONFIG_FAMILIES: MutationFamily[] = [
  { kind: 'config.field', weight: 6, generate: configField },
  { kind: 'config.missing', weight: 2, generate: configMissing },
  { kind: 'config.duplicate', weight: 2, generate: configDuplicate },
  { kind: 'config.nesting', weight: 1, generate: configNesting },
  { kind: 'config.file', weight: 1, generate: configFile },
  { kind: 'config.rope_scaling', weight: 1, generate: ropeScaling },
  { kind: 'generation_config', weight: 3, generate: generationConfig },
  { kind: 'index.json', weight: 3, generate: shardIndex },
  { kind: 'symlinked-weights', weight: 1, generate: symlinkedWeights },
];
