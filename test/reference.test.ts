// Checks of the fixtures and of the reference model itself: deterministic bytes, float conversions,
// the safetensors layout, and properties the oracle must have (softmax, causality, early exit at L,
// GQA equivalence, llama3 RoPE scaling as HF computes it).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { f32BitsToBf16, f32BitsToF16, NormalStream, planTensors, writeCheckpoint } from './fixtures/checkpoint-writer.js';
import { ensureFixtures, FIXTURES, writeFixture } from './fixtures/make-fixtures.js';
import {
  argmax,
  loadReference,
  referenceGreedy,
  referenceLogits,
  referenceLogitsAtExit,
  ropeInverseFrequencies,
  softmax,
  type ReferenceConfig,
  type ReferenceModel,
} from './reference/llama.js';
import { readCheckpointTensors, readSafetensorsFile } from './reference/safetensors.js';

const TINY = ['tiny-gqa-bf16', 'tiny-mha-f32', 'tiny-f16', 'tiny-llama3-rope', 'tiny-sharded', 'tiny-deep'];

function hashFolder(dir: string): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const file of fs.readdirSync(dir).sort()) {
    if (file.startsWith('.')) continue;
    hashes[file] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, file))).digest('hex');
  }
  return hashes;
}

function f32Bits(value: number): number {
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

/** Deterministic token ids spread over the vocabulary. */
function tokenSequence(length: number, vocabSize: number, salt = 0): number[] {
  return Array.from({ length }, (_, i) => (i * 7919 + salt * 104729 + 13) % vocabSize);
}

describe('fixtures', function () {
  let dirs: Record<string, string>;
  let scratch: string;

  before(function () {
    dirs = ensureFixtures();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-fixtures-'));
  });
  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('are byte-identical across runs and processes', function () {
    for (const name of ['tiny-gqa-bf16', 'tiny-sharded', 'tiny-f16', 'tok-llama2']) {
      const first = path.join(scratch, `${name}-1`);
      const second = path.join(scratch, `${name}-2`);
      writeFixture(name, first);
      writeFixture(name, second);
      assert.deepEqual(hashFolder(first), hashFolder(second), name);
      assert.deepEqual(hashFolder(first), hashFolder(dirs[name]), `${name} differs from the copy make-fixtures wrote`);
    }
  });

  it('have the shapes their specs declare', function () {
    for (const name of Object.keys(FIXTURES)) {
      const spec = FIXTURES[name].checkpoint;
      const tensors = readCheckpointTensors(dirs[name]);
      const plan = planTensors(spec);
      assert.equal(tensors.size, plan.length, name);
      for (const tensor of plan) assert.deepEqual(tensors.get(tensor.name)?.shape, tensor.shape, `${name} ${tensor.name}`);
      const config = JSON.parse(fs.readFileSync(path.join(dirs[name], 'config.json'), 'utf8'));
      assert.equal(config.model_type, 'llama');
      assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
      assert.equal(config.tie_word_embeddings, spec.tieWordEmbeddings ?? false);
      assert.equal(tensors.has('lm_head.weight'), !spec.tieWordEmbeddings, name);
    }
  });

  it('write safetensors headers padded to 8 bytes with format metadata', function () {
    const file = path.join(dirs['tiny-gqa-bf16'], 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const headerSize = Number(bytes.readBigUInt64LE(0));
    assert.equal(headerSize % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerSize).toString('utf8'));
    assert.deepEqual(header.__metadata__, { format: 'pt' });
    assert.equal(header['model.embed_tokens.weight'].dtype, 'BF16');
    const lastEnd = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets[1]));
    assert.equal(8 + headerSize + lastEnd, bytes.length);
  });

  it('shard tiny-sharded into three files consistent with the index', function () {
    const dir = dirs['tiny-sharded'];
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))].sort();
    assert.deepEqual(shards, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    let total = 0;
    for (const shard of shards) {
      for (const [name, tensor] of readSafetensorsFile(path.join(dir, shard))) {
        assert.equal(index.weight_map[name], shard);
        total += tensor.data.length * 2;
      }
    }
    assert.equal(index.metadata.total_size, total);
  });

  it('draw the same values whatever the dtype or shard count', function () {
    const base = { ...FIXTURES['tiny-gqa-bf16'].checkpoint, numLayers: 1, vocabSize: 64 };
    writeCheckpoint(path.join(scratch, 'f32'), { ...base, dtype: 'F32' });
    writeCheckpoint(path.join(scratch, 'bf16-sharded'), { ...base, dtype: 'BF16', shards: 2 });
    const f32 = readCheckpointTensors(path.join(scratch, 'f32'));
    const bf16 = readCheckpointTensors(path.join(scratch, 'bf16-sharded'));
    for (const [name, tensor] of f32) {
      const rounded = bf16.get(name)!.data;
      tensor.data.forEach((value, i) => assert.equal(rounded[i], new Float32Array(new Uint32Array([f32BitsToBf16(f32Bits(value)) << 16]).buffer)[0]));
    }
  });

  it('scale o_proj and down_proj of late layers in tiny-deep', function () {
    const tensors = readCheckpointTensors(dirs['tiny-deep']);
    const rms = (name: string) => {
      const data = tensors.get(name)!.data;
      return Math.sqrt(data.reduce((sum, v) => sum + v * v, 0) / data.length);
    };
    const { fromLayer, factor } = FIXTURES['tiny-deep'].checkpoint.scaleLateLayers!;
    for (const proj of ['self_attn.o_proj', 'mlp.down_proj']) {
      const ratio = rms(`model.layers.${fromLayer}.${proj}.weight`) / rms(`model.layers.0.${proj}.weight`);
      assert.ok(Math.abs(ratio - factor) < 0.05, `${proj} ratio ${ratio}`);
    }
    const qRatio = rms(`model.layers.${fromLayer}.self_attn.q_proj.weight`) / rms('model.layers.0.self_attn.q_proj.weight');
    assert.ok(Math.abs(qRatio - 1) < 0.05);
  });

  it('restore Meta\'s BOS template in tok-llama3 and keep generation eos ids', function () {
    const tokenizer = JSON.parse(fs.readFileSync(path.join(dirs['tok-llama3'], 'tokenizer.json'), 'utf8'));
    assert.equal(tokenizer.post_processor.type, 'Sequence');
    assert.deepEqual(tokenizer.post_processor.processors[1].special_tokens['<|begin_of_text|>'].ids, [128000]);
    const generation = JSON.parse(fs.readFileSync(path.join(dirs['tok-llama3'], 'generation_config.json'), 'utf8'));
    assert.deepEqual(generation.eos_token_id, [128001, 128009]);
  });
});

describe('float conversions', function () {
  it('bf16 rounds to nearest even', function () {
    assert.equal(f32BitsToBf16(f32Bits(1)), 0x3f80);
    assert.equal(f32BitsToBf16(f32Bits(-2)), 0xc000);
    assert.equal(f32BitsToBf16(0x3f808000), 0x3f80); // tie, even stays
    assert.equal(f32BitsToBf16(0x3f818000), 0x3f82); // tie, odd rounds up
    assert.equal(f32BitsToBf16(0x3f808001), 0x3f81);
    assert.equal(f32BitsToBf16(0x7f7fffff), 0x7f80); // overflow to inf
    assert.equal(f32BitsToBf16(0x7fc00000) & 0x7fc0, 0x7fc0); // NaN stays NaN
  });

  it('f16 rounds to nearest even with subnormals and overflow', function () {
    assert.equal(f32BitsToF16(f32Bits(1)), 0x3c00);
    assert.equal(f32BitsToF16(f32Bits(-2)), 0xc000);
    assert.equal(f32BitsToF16(f32Bits(65504)), 0x7bff);
    assert.equal(f32BitsToF16(f32Bits(65520)), 0x7c00); // halfway to the next binade: rounds to inf
    assert.equal(f32BitsToF16(f32Bits(2 ** -24)), 0x0001); // smallest subnormal
    assert.equal(f32BitsToF16(f32Bits(2 ** -25)), 0x0000); // tie to even zero
    assert.equal(f32BitsToF16(f32Bits(3 * 2 ** -25)), 0x0002); // tie to even 2
    assert.equal(f32BitsToF16(f32Bits(2 ** -14)), 0x0400); // smallest normal
    assert.equal(f32BitsToF16(f32Bits(1 + 2 ** -11)), 0x3c00); // tie, even stays
    assert.equal(f32BitsToF16(f32Bits(1 + 3 * 2 ** -11)), 0x3c02); // tie, odd rounds up
  });

  it('normal stream is standard normal', function () {
    const values = new Float32Array(200000);
    new NormalStream(123).fill(values, 1);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
  });
});

describe('reference model', function () {
  const models: Record<string, ReferenceModel> = {};

  before(function () {
    const dirs = ensureFixtures(TINY);
    for (const name of TINY) models[name] = loadReference(dirs[name]);
  });

  it('gives probability distributions that sum to one at every position', function () {
    for (const name of TINY) {
      const logits = referenceLogits(models[name], tokenSequence(24, models[name].config.vocabSize));
      for (const row of logits) {
        assert.ok(row.every(Number.isFinite), name);
        const total = softmax(row).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(total - 1) < 1e-12, `${name}: ${total}`);
      }
    }
  });

  it('early exit at E = L equals the full logits; earlier exits differ', function () {
    for (const name of TINY) {
      const model = models[name];
      const tokens = tokenSequence(16, model.config.vocabSize);
      const full = referenceLogits(model, tokens);
      assert.deepEqual(referenceLogitsAtExit(model, tokens, model.config.numLayers), full, name);
      const early = referenceLogitsAtExit(model, tokens, model.config.numLayers - 1);
      assert.notDeepEqual(early, full, name);
    }
  });

  it('is causal: logits at position i ignore later tokens', function () {
    for (const name of TINY) {
      const model = models[name];
      const tokens = tokenSequence(20, model.config.vocabSize);
      const changed = [...tokens.slice(0, 12), ...tokenSequence(8, model.config.vocabSize, 1)];
      const a = referenceLogits(model, tokens);
      const b = referenceLogits(model, changed);
      for (let pos = 0; pos < 12; pos++) assert.deepEqual(a[pos], b[pos], `${name} position ${pos}`);
      assert.notDeepEqual(a[12], b[12], name);
    }
  });

  it('depends on token order (RoPE is applied)', function () {
    const model = models['tiny-gqa-bf16'];
    const tokens = tokenSequence(6, model.config.vocabSize);
    const swapped = [tokens[1], tokens[0], ...tokens.slice(2)];
    const a = referenceLogits(model, tokens);
    const b = referenceLogits(model, swapped);
    const diff = a[5].reduce((max, v, i) => Math.max(max, Math.abs(v - b[5][i])), 0);
    assert.ok(diff > 1e-3, `max diff ${diff}`);
  });

  it('treats GQA as MHA with each KV head repeated for its group', function () {
    const model = models['tiny-gqa-bf16'];
    const { numHeads, numKvHeads, headDim, hiddenSize } = model.config;
    const group = numHeads / numKvHeads;
    const repeat = (weight: Float32Array) => {
      const out = new Float32Array(numHeads * headDim * hiddenSize);
      for (let h = 0; h < numHeads; h++) {
        const source = Math.floor(h / group) * headDim * hiddenSize;
        out.set(weight.subarray(source, source + headDim * hiddenSize), h * headDim * hiddenSize);
      }
      return out;
    };
    const mha: ReferenceModel = {
      ...model,
      config: { ...model.config, numKvHeads: numHeads },
      layers: model.layers.map((layer) => ({ ...layer, kProj: repeat(layer.kProj), vProj: repeat(layer.vProj) })),
    };
    const tokens = tokenSequence(12, model.config.vocabSize);
    const expected = referenceLogits(model, tokens);
    referenceLogits(mha, tokens).forEach((row, pos) => row.forEach((v, i) => assert.ok(Math.abs(v - expected[pos][i]) < 1e-10)));
  });

  it('ties the LM head to the embedding when tie_word_embeddings is set', function () {
    assert.equal(models['tiny-mha-f32'].lmHead, models['tiny-mha-f32'].embedTokens);
    assert.notEqual(models['tiny-gqa-bf16'].lmHead, models['tiny-gqa-bf16'].embedTokens);
  });

  it('scales RoPE frequencies as HF _compute_llama3_parameters (Llama 3.1 settings)', function () {
    const config = {
      headDim: 128, ropeTheta: 500000,
      ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    } as ReferenceConfig;
    const scaled = ropeInverseFrequencies(config);
    const plain = ropeInverseFrequencies({ ...config, ropeScaling: null });
    let sawHigh = false;
    let sawLow = false;
    let sawMedium = false;
    plain.forEach((freq, i) => {
      const wavelen = (2 * Math.PI) / freq;
      if (wavelen < 8192 / 4) {
        sawHigh = true;
        assert.equal(scaled[i], freq);
      } else if (wavelen > 8192) {
        sawLow = true;
        assert.equal(scaled[i], freq / 8);
      } else {
        sawMedium = true;
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        assert.ok(Math.abs(scaled[i] - ((1 - smooth) * freq / 8 + smooth * freq)) < 1e-18);
        assert.ok(scaled[i] < freq && scaled[i] > freq / 8);
      }
    });
    assert.ok(sawHigh && sawLow && sawMedium);
    assert.equal(plain[0], 1);
    assert.ok(Math.abs(plain[1] - 500000 ** (-2 / 128)) < 1e-15);
  });

  it('exercises all three llama3 RoPE regimes in tiny-llama3-rope', function () {
    const { invFreq, config } = models['tiny-llama3-rope'];
    const plain = ropeInverseFrequencies({ ...config, ropeScaling: null });
    const ratios = Array.from(invFreq, (freq, i) => freq / plain[i]);
    assert.equal(ratios[0], 1);
    assert.ok(ratios.some((r) => r > 1 / 8 && r < 1));
    assert.equal(ratios[ratios.length - 1], 1 / 8);
  });

  it('greedy decoding follows the argmax of the full logits', function () {
    const model = models['tiny-deep'];
    const prompt = tokenSequence(5, model.config.vocabSize);
    const generated = referenceGreedy(model, prompt, 8);
    assert.equal(generated.length, 8);
    const logits = referenceLogits(model, [...prompt, ...generated]);
    generated.forEach((token, step) => assert.equal(token, argmax(logits[prompt.length - 1 + step])));
    assert.ok(new Set(generated).size > 1, 'greedy output should not be one repeated token');
  });

  it('runs a 40-token forward of a tiny fixture well under a second', function () {
    const model = models['tiny-deep'];
    const started = performance.now();
    referenceLogits(model, tokenSequence(40, model.config.vocabSize));
    assert.ok(performance.now() - started < 500);
  });

  it('rejects bad token ids and exit layers', function () {
    const model = models['tiny-gqa-bf16'];
    assert.throws(() => referenceLogits(model, [model.config.vocabSize]), /out of range/);
    assert.throws(() => referenceLogitsAtExit(model, [1], model.config.numLayers + 1), /exitLayer/);
  });
});
