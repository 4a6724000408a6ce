// Regression tests for issue 15 (11,000 mutated checkpoints and options): each case is a fixture mutated the way the
// fuzzer found it, and a clear error — or, for duplicate keys, the Python reading — instead of a crash, a hang, a
// memory blow-up or a silent accept. Inputs that could crash or hang the process load in a child process
// (test/helpers/load-child.ts) with a time limit.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadModel } from '../lib/index.js';
import { MAX_CONTEXT_LENGTH, MAX_THREADS } from '../lib/limits.js';
import { LlamaTokenizer } from '../lib/tokenizer.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { packageRoot } from './helpers/cli.js';
import { loadNative, logitsFor, sameBits } from './helpers/native.js';

interface Safetensors {
  headerText: string; // the JSON, without padding
  data: Buffer;
}

function readSafetensors(file: string): Safetensors {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return { headerText: bytes.subarray(8, 8 + length).toString('utf8').trimEnd(), data: bytes.subarray(8 + length) };
}

/** Writes `headerText` padded with `padding` spaces; the stated length is the padded one plus `lengthDelta`. */
function writeSafetensors(file: string, headerText: string | Buffer, data: Buffer, padding = 0, lengthDelta = 0): void {
  const json = Buffer.concat([Buffer.from(headerText), Buffer.alloc(padding, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length + lengthDelta));
  fs.writeFileSync(file, Buffer.concat([prefix, json, data]));
}

interface ChildResult {
  ok: boolean;
  message: string;
}

/** Loads `dir` (and generates 2 tokens when `generate` is given) in a child process; fails on a crash or a hang. */
function loadInChild(dir: string, options: Record<string, unknown> = {}, generate?: number[]): ChildResult {
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(packageRoot, 'test', 'helpers', 'load-child.ts'), JSON.stringify({ dir, options, generate })],
    { cwd: packageRoot, encoding: 'utf8', timeout: 20000, env: process.env },
  );
  assert.equal(child.signal, null, `the child was killed by ${child.signal} (crash or hang): ${child.stderr}`);
  assert.equal(child.status, 0, `the child exited with ${child.status}: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as ChildResult;
}

function expectChildError(dir: string, pattern: RegExp, options: Record<string, unknown> = {}): void {
  const result = loadInChild(dir, options);
  assert.equal(result.ok, false, `loaded, but expected an error matching ${pattern}`);
  assert.match(result.message, pattern);
}

async function expectLoadError(dir: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadNative(dir), (error: Error) => {
    assert.match(error.message, pattern);
    return true;
  });
}

describe('hardening (issue 15)', function () {
  this.timeout(60000);
  let mha: string; // tiny-mha-f32: head_dim 16, 4 heads, vocab 512
  let gqa: string; // tiny-gqa-bf16
  let withTokenizer: string; // tok-llama2
  let scratch: string;

  before(function () {
    const dirs = ensureFixtures(['tiny-mha-f32', 'tiny-gqa-bf16', 'tok-llama2']);
    mha = dirs['tiny-mha-f32'];
    gqa = dirs['tiny-gqa-bf16'];
    withTokenizer = dirs['tok-llama2'];
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-hardening-'));
  });
  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  let copies = 0;
  function copyOf(from: string): string {
    const dir = path.join(scratch, `case-${copies++}`);
    fs.cpSync(from, dir, { recursive: true });
    return dir;
  }
  function editJson(file: string, edit: (value: Record<string, unknown>) => void): void {
    const value = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(value);
    fs.writeFileSync(file, JSON.stringify(value));
  }
  function editHeader(dir: string, edit: (header: Record<string, any>) => void): void {
    const file = path.join(dir, 'model.safetensors');
    const parts = readSafetensors(file);
    const header = JSON.parse(parts.headerText);
    edit(header);
    writeSafetensors(file, JSON.stringify(header), parts.data);
  }
  function mkfifo(file: string): void {
    fs.rmSync(file, { force: true });
    execFileSync('mkfifo', [file]);
  }

  it('1: a head_dim whose product with the heads wraps int32 is refused, not an abort', function () {
    const dir = copyOf(mha);
    editJson(path.join(dir, 'config.json'), (config) => (config.head_dim = 1073741840));
    expectChildError(dir, /config\.json: field "head_dim" must be an integer in \[2, 1024\], got 1073741840/);
    editJson(path.join(dir, 'config.json'), (config) => {
      config.num_attention_heads = 8;
      config.num_key_value_heads = 8;
      config.head_dim = 536870920;
    });
    expectChildError(dir, /field "head_dim" must be an integer in \[2, 1024\]/);
  });

  it('2: contextLength above the limit is refused before allocating', async function () {
    await assert.rejects(loadModel(mha, { contextLength: 2 ** 24 }), new RegExp(`contextLength must be an integer in \\[1, ${MAX_CONTEXT_LENGTH}\\]`));
    const native = await loadNative(mha);
    try {
      assert.throws(() => native.createContext({ contextLength: 2 ** 24 }), /contextLength must be an integer in \[0, 1048576\]/);
    } finally {
      native.dispose();
    }
  });

  it('3: an async onSpeculation that rejects fails the generation with its error', async function () {
    const model = await loadModel(mha, { threads: 1, contextLength: 64 });
    try {
      await assert.rejects(
        model.generate([1, 5, 9], {
          maxSteps: 6, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer: 1, numSpeculations: 2,
          onSpeculation: async () => {
            throw new Error('listener failed');
          },
        }),
        /listener failed/,
      );
      const after = await model.generate([1, 5, 9], { maxSteps: 2 });
      assert.equal(after.tokenIds.length, 2);
    } finally {
      await model.dispose();
    }
  });

  it('4: threads above the documented maximum are refused; the pool never exceeds 4 per core', async function () {
    await assert.rejects(loadModel(mha, { threads: 1024 }), new RegExp(`threads must be an integer in \\[1, ${MAX_THREADS}\\]`));
    const result = loadInChild(mha, { threads: MAX_THREADS }, [1, 2]);
    assert.equal(result.ok, true, result.message);
    const threads = Number(/(\d+) threads?\)/.exec(result.message)?.[1]);
    assert.ok(threads <= 4 * os.availableParallelism(), `${result.message}: more than 4 threads per core`);
  });

  it('5: FIFOs, devices and oversized JSON files are refused by name, never read', function () {
    const fifoWeights = copyOf(mha);
    mkfifo(path.join(fifoWeights, 'model.safetensors'));
    expectChildError(fifoWeights, /model\.safetensors: not a regular file/);
    const fifoConfig = copyOf(mha);
    mkfifo(path.join(fifoConfig, 'config.json'));
    expectChildError(fifoConfig, /config\.json: not a regular file/);
    const fifoTokenizerConfig = copyOf(withTokenizer);
    mkfifo(path.join(fifoTokenizerConfig, 'tokenizer_config.json'));
    expectChildError(fifoTokenizerConfig, /tokenizer_config\.json: not a regular file/);
    const urandom = copyOf(withTokenizer);
    fs.rmSync(path.join(urandom, 'generation_config.json'));
    fs.symlinkSync('/dev/urandom', path.join(urandom, 'generation_config.json'));
    expectChildError(urandom, /generation_config\.json: not a regular file/);
    const hugeConfig = copyOf(mha);
    fs.truncateSync(path.join(hugeConfig, 'config.json'), 17 << 20); // sparse: no disk used
    expectChildError(hugeConfig, /config\.json: \d+ bytes is larger than the 16 MiB limit/);
    const hugeTokenizer = copyOf(withTokenizer);
    fs.truncateSync(path.join(hugeTokenizer, 'tokenizer.json'), 65 << 20);
    expectChildError(hugeTokenizer, /tokenizer\.json: \d+ bytes is larger than the 64 MiB limit/);
  });

  it('6: token ids of 1e9 in tokenizer.json are refused before the tokenizer library sees them', function () {
    const source = JSON.parse(fs.readFileSync(path.join(withTokenizer, 'tokenizer.json'), 'utf8'));
    const added = structuredClone(source);
    added.added_tokens[0].id = 1e9;
    assert.throws(() => new LlamaTokenizer(added), /added_tokens\[0\] has id 1000000000, not an integer in \[0, 16777216\)/);
    const vocab = structuredClone(source);
    vocab.model.vocab[Object.keys(vocab.model.vocab)[7]] = 1e9;
    assert.throws(() => new LlamaTokenizer(vocab), /model\.vocab\[.*\] has id 1000000000/);
  });

  it('7: JSON value count and depth are bounded (safetensors __metadata__, config.json)', async function () {
    const metadata = copyOf(gqa);
    const file = path.join(metadata, 'model.safetensors');
    const parts = readSafetensors(file);
    const bigArray = `[${'0,'.repeat(1 << 20)}0]`;
    writeSafetensors(file, parts.headerText.replace('"__metadata__":{', `"__metadata__":{"x":${bigArray},`), parts.data);
    await expectLoadError(metadata, /safetensors header\): invalid JSON at byte \d+: more than 1048576 values/);

    const nested = copyOf(mha);
    const config = fs.readFileSync(path.join(nested, 'config.json'), 'utf8');
    fs.writeFileSync(path.join(nested, 'config.json'), config.replace('{', `{"junk": [${'[],'.repeat(1 << 20)}[]],`));
    await expectLoadError(nested, /config\.json: invalid JSON at byte \d+: more than 1048576 values/);
    fs.writeFileSync(path.join(nested, 'config.json'), config.replace('{', `{"junk": ${'['.repeat(100)}${']'.repeat(100)},`));
    await expectLoadError(nested, /config\.json: invalid JSON at byte \d+: nesting deeper than 64 levels/);
  });

  it('9: a header length one byte short (into the padding) is refused', async function () {
    const dir = copyOf(gqa);
    const file = path.join(dir, 'model.safetensors');
    const parts = readSafetensors(file);
    writeSafetensors(file, parts.headerText, parts.data, 8, -1);
    await expectLoadError(dir, /model\.safetensors: 1 trailing byte\(s\) after the last tensor's data/);
    writeSafetensors(file, parts.headerText, parts.data, 8, 0); // the same file with the right length loads
    (await loadNative(dir)).dispose();
  });

  it('10: bos / eos ids outside int32 or the vocabulary fail the load', async function () {
    const dir = copyOf(mha);
    const configFile = path.join(dir, 'config.json');
    const original = fs.readFileSync(configFile, 'utf8');
    for (const [key, value] of [['eos_token_id', '1e12'], ['eos_token_id', '4294967297'], ['eos_token_id', 'Infinity'],
      ['bos_token_id', '1e12'], ['eos_token_id', '512'], ['eos_token_id', '[2, -1]']]) {
      fs.writeFileSync(configFile, original.replace(new RegExp(`"${key}": [^,\\n]+`), `"${key}": ${value}`));
      await expectLoadError(dir, new RegExp(`config\\.json: field "${key}" must be a token id in the vocabulary \\[0, 512\\)`));
    }
    fs.writeFileSync(configFile, original);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), '{"eos_token_id": [2, 4294967297]}');
    await expectLoadError(dir, /generation_config\.json: field "eos_token_id" must be a token id in the vocabulary/);
  });

  it('11: a tensor whose element count wraps 64 bits is refused', async function () {
    const dir = copyOf(gqa);
    editHeader(dir, (header) => {
      const end = header['model.norm.weight'].data_offsets[1];
      header['extra.weight'] = { dtype: 'F32', shape: [2 ** 40, 2 ** 24], data_offsets: [end, end] };
    });
    await expectLoadError(dir, /tensor "extra\.weight" has shape \[1099511627776, 16777216\]: more elements than the limit/);
  });

  it('12: duplicate keys in config.json: the last one wins, as in Python', async function () {
    const dir = copyOf(gqa);
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, fs.readFileSync(configFile, 'utf8').replace('{', '{"num_hidden_layers": 99,'));
    const model = await loadNative(dir);
    assert.equal(model.info().numLayers, 4);
    model.dispose();
  });

  it('13: overlapping data, holes, trailing bytes, duplicate or invalid UTF-8 names are refused', async function () {
    const source = readSafetensors(path.join(gqa, 'model.safetensors'));
    const header = JSON.parse(source.headerText);
    const file = (dir: string) => path.join(dir, 'model.safetensors');

    const overlap = copyOf(gqa);
    const shifted = structuredClone(header);
    const [begin, end] = shifted['model.norm.weight'].data_offsets;
    shifted['model.norm.weight'].data_offsets = [begin - 2, end - 2];
    writeSafetensors(file(overlap), JSON.stringify(shifted), source.data);
    await expectLoadError(overlap, /data_offsets \[\d+, \d+\) overlap tensor/);

    const hole = copyOf(gqa);
    const last = Object.entries(header).filter(([name]) => name !== '__metadata__')
      .sort(([, a]: any, [, b]: any) => b.data_offsets[0] - a.data_offsets[0])[0][0];
    const gapped = structuredClone(header);
    gapped[last].data_offsets = gapped[last].data_offsets.map((offset: number) => offset + 4);
    writeSafetensors(file(hole), JSON.stringify(gapped), Buffer.concat([source.data, Buffer.alloc(4)]));
    await expectLoadError(hole, /bytes \[\d+, \d+\) of the data belong to no tensor \(a hole before/);

    const trailing = copyOf(gqa);
    writeSafetensors(file(trailing), source.headerText, Buffer.concat([source.data, Buffer.alloc(3)]));
    await expectLoadError(trailing, /3 trailing byte\(s\) after the last tensor's data/);

    const duplicate = copyOf(gqa);
    const normEntry = JSON.stringify(header['model.norm.weight']);
    writeSafetensors(file(duplicate), source.headerText.replace('{', `{"model.norm.weight":${normEntry},`), source.data);
    await expectLoadError(duplicate, /invalid JSON at byte \d+: duplicate key "model\.norm\.weight"/);

    const badName = copyOf(gqa);
    const text = Buffer.from(source.headerText.replace('"model.norm.weight"', '"model.norm.weigh\u00e9"'));
    const at = text.indexOf(Buffer.from('weigh\u00e9')) + 5; // the 2-byte é becomes 0xff 0x20: not UTF-8
    text[at] = 0xff;
    text[at + 1] = 0x20;
    writeSafetensors(file(badName), text, source.data);
    await expectLoadError(badName, /invalid JSON at byte \d+: invalid UTF-8 in string/);
  });

  it('fuzzer (scripts/fuzz-checkpoint.ts): a llama3 rope_scaling missing a field is refused, not defaulted', async function () {
    const dir = copyOf(mha);
    const full = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    for (const key of ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings']) {
      editJson(path.join(dir, 'config.json'), (config) => (config.rope_scaling = { ...full, [key]: undefined }));
      await expectLoadError(dir, new RegExp(`config\\.json rope_scaling: llama3 scaling needs "${key}"`));
    }
    editJson(path.join(dir, 'config.json'), (config) => (config.rope_scaling = full));
    (await loadNative(dir)).dispose();
  });

  it('sanitizers (README "Fuzzing and sanitizers"): tensors left unaligned by an unpadded header read the same', async function () {
    // A header length that is not a multiple of 8 is legal and puts BF16 tensors at odd addresses in the mapping;
    // UBSan flagged the uint16_t loads that read them. The logits must match the aligned file's bit for bit.
    const dir = copyOf(gqa);
    const parts = readSafetensors(path.join(gqa, 'model.safetensors'));
    const padding = (Buffer.byteLength(parts.headerText) + 1) % 2; // makes 8 + header length odd
    writeSafetensors(path.join(dir, 'model.safetensors'), parts.headerText, parts.data, padding);
    const logits: Float32Array[] = [];
    for (const from of [gqa, dir]) {
      const model = await loadNative(from);
      const context = model.createContext({ contextLength: 16 });
      logits.push(await logitsFor(context, [1, 5, 9], 3));
      context.dispose();
      model.dispose();
    }
    assert.ok(sameBits(logits[0], logits[1]), 'the unaligned file gives other logits');
  });

  it('the process is still healthy after all of the above', async function () {
    const model = await loadNative(gqa);
    assert.equal(model.info().numLayers, 4);
    model.dispose();
  });
});
