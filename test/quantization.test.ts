// Quantized weights end to end: `layerskip quantize` round-trips (the reference reads the written planes with its
// own decoder and the engine's logits match it), quantizing while loading equals loading the written checkpoint
// bit for bit, greedy self-speculative == autoregressive on q8 / q4 models with and without the quantized draft
// head, speculative sampling through the draft head still draws from the model's distribution (chi-square), and
// every bad input gets a clear error with nothing half-written left behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runGeneration } from '../lib/generation/generate.js';
import { resolveOptions, type GenerationOptions } from '../lib/generation/options.js';
import { Sequence } from '../lib/generation/sequence.js';
import { cpuInfo, loadModel, quantizeModel, type QuantType } from '../lib/index.js';
import { loadNativeBinding, type NativeModel } from '../lib/native.js';
import { writeCheckpoint } from './fixtures/checkpoint-writer.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { logitsFor, maxRelativeError, sameBits, tokenSequence } from './helpers/native.js';
import { chiSquare, seededGenerations } from './helpers/statistics.js';
import { loadReference, referenceLogits } from './reference/llama.js';
import { runLayerskip as layerskip } from './helpers/cli.js';

// The engine runs the dequantized weights exactly (core/quant.h), so the f32 tolerance of engine.test.ts holds.
const LOGIT_TOLERANCE = 2e-4;
const TYPES: QuantType[] = ['q8', 'q4'];

async function loadNative(dir: string, options: { weights?: string; draftHead?: string; cpuKernels?: string } = {}): Promise<NativeModel> {
  return loadNativeBinding().NativeModel.load(dir, { device: 'cpu', threads: 2, ...options });
}

async function generateTokens(native: NativeModel, prompt: number[], options: GenerationOptions): Promise<number[]> {
  const info = native.info();
  const context = native.createContext({ contextLength: 256 });
  try {
    const sequence = new Sequence(context, 256, info.numLayers);
    const resolved = resolveOptions({ stopTokenIds: [], ...options }, { numLayers: info.numLayers, vocabSize: info.vocabSize, eosTokenIds: [] });
    return (await runGeneration({ sequence, promptIds: prompt, options: resolved, device: 'cpu' })).tokenIds;
  } finally {
    context.dispose();
  }
}

describe('quantized weights', function () {
  this.timeout(120000);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-quant-'));
  let fixtures: Record<string, string> = {};
  const quantized: Record<string, string> = {};  // "<fixture>-<type>" → folder
  before(async function () {
    fixtures = ensureFixtures(['tiny-gqa-bf16', 'tiny-f16', 'tiny-mha-f32', 'tiny-deep']);
    for (const name of ['tiny-gqa-bf16', 'tiny-f16', 'tiny-mha-f32', 'tiny-deep']) {
      for (const type of TYPES) {
        const out = path.join(scratch, `${name}-${type}`);
        await quantizeModel(fixtures[name], out, { type, threads: 2 });
        quantized[`${name}-${type}`] = out;
      }
    }
  });
  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  for (const name of ['tiny-gqa-bf16', 'tiny-f16', 'tiny-mha-f32']) {
    for (const type of TYPES) {
      it(`${name} ${type}: the written checkpoint's logits match the reference on its dequantized planes`, async function () {
        const dir = quantized[`${name}-${type}`];
        const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
        assert.deepEqual(config.quantization_config, { quant_method: 'layerskip', format: type, version: 1, block_size: 32, keep_head: false });
        const native = await loadNative(dir);
        try {
          assert.equal(native.info().dtype, type);
          const reference = loadReference(dir);
          const vocab = native.info().vocabSize;
          const tokens = tokenSequence(19, vocab, 8);
          const context = native.createContext({ contextLength: 64 });
          const logits = await logitsFor(context, tokens, tokens.length);
          context.dispose();
          const expected = referenceLogits(reference, tokens);
          for (let position = 0; position < tokens.length; position++) {
            const error = maxRelativeError(logits.subarray(position * vocab, (position + 1) * vocab), expected[position]);
            assert.ok(error < LOGIT_TOLERANCE, `position ${position}: relative error ${error}`);
          }
          // Quantization changes the model: the original's logits are measurably different (the test can fail).
          const original = referenceLogits(loadReference(fixtures[name]), tokens.slice(0, 4));
          assert.ok(maxRelativeError(logits.subarray(3 * vocab, 4 * vocab), original[3]) > 1e-4);
        } finally {
          native.dispose();
        }
      });
    }
  }

  it('quantizing while loading equals loading the written checkpoint, bit for bit, on every kernel variant', async function () {
    const variants = cpuInfo().kernels.filter((kernels) => kernels.runnable).map((kernels) => kernels.name);
    for (const type of TYPES) {
      for (const cpuKernels of variants) {
        const onLoad = await loadNative(fixtures['tiny-gqa-bf16'], { weights: type, cpuKernels });
        const written = await loadNative(quantized[`tiny-gqa-bf16-${type}`], { cpuKernels });
        try {
          assert.equal(onLoad.info().residentWeightBytes, written.info().residentWeightBytes);
          const tokens = tokenSequence(60, 512, 3);  // 60 rows: the packed (prefill) kernels of every variant too
          const a = onLoad.createContext({ contextLength: 64 });
          const b = written.createContext({ contextLength: 64 });
          const logitsA = await logitsFor(a, tokens, 8);
          const logitsB = await logitsFor(b, tokens, 8);
          a.dispose();
          b.dispose();
          assert.ok(sameBits(logitsA, logitsB), `${type} ${cpuKernels}`);
        } finally {
          onLoad.dispose();
          written.dispose();
        }
      }
    }
  });

  it('q8 halves and q4 more than thirds the resident weight bytes', async function () {
    const bf16 = await loadNative(fixtures['tiny-gqa-bf16']);
    const q8 = await loadNative(fixtures['tiny-gqa-bf16'], { weights: 'q8' });
    const q4 = await loadNative(fixtures['tiny-gqa-bf16'], { weights: 'q4' });
    try {
      const bytes = (native: NativeModel) => native.info().weightBytesPerToken;
      assert.equal(bytes(q8) / bytes(bf16), 8.5 / 16);
      assert.equal(bytes(q4) / bytes(bf16), 5 / 16);
      assert.equal(q4.info().headDtype, 'q4');
    } finally {
      for (const native of [bf16, q8, q4]) native.dispose();
    }
  });

  for (const type of TYPES) {
    for (const draftHead of [undefined, 'q4'] as const) {
      if (draftHead === type) continue;
      it(`${type} weights${draftHead ? `, ${draftHead} draft head` : ''}: greedy self-speculative == autoregressive`, async function () {
        const base = await loadNative(quantized[`tiny-deep-${type}`]);
        const withHead = draftHead ? await loadNative(quantized[`tiny-deep-${type}`], { draftHead }) : base;
        try {
          if (draftHead) assert.equal(withHead.info().draftHeadDtype, draftHead);
          for (const seed of [1, 2, 3]) {
            const prompt = tokenSequence(7, 512, seed);
            const autoregressive = await generateTokens(base, prompt, { maxSteps: 40 });
            for (const [exitLayer, numSpeculations] of [[1, 1], [3, 4], [5, 6]]) {
              const speculative = await generateTokens(withHead, prompt, { maxSteps: 40, generationStrategy: 'self_speculative', exitLayer, numSpeculations });
              assert.deepEqual(speculative, autoregressive, `seed ${seed}, E ${exitLayer}, k ${numSpeculations}`);
            }
          }
        } finally {
          base.dispose();
          if (withHead !== base) withHead.dispose();
        }
      });
    }
  }

  it('a q4 draft head changes the drafts, not the distribution: speculative sampling χ² against autoregressive (α = 0.001)', async function () {
    // As self-speculative.test.ts's test, on tiny-deep at q8 with a q4 draft head: tokens 2–4 come from speculative
    // steps whose proposals use the draft head. Power: early-exit sampling through the draft head must be rejected.
    const plain = await loadNative(quantized['tiny-deep-q8']);
    const drafted = await loadNative(quantized['tiny-deep-q8'], { draftHead: 'q4' });
    const runs = 2000;
    const prompt = [5, 77, 300];
    const sampling = { maxSteps: 4, sample: true, temperature: 1, topK: 12, topP: 1 } as const;
    const collect = (native: NativeModel, options: GenerationOptions, seedBase: number) =>
      seededGenerations(native, prompt, options, runs, seedBase);
    try {
      const autoregressive = await collect(plain, sampling, 0);
      const speculative = await collect(drafted, { ...sampling, generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 3 }, 1_000_000);
      const earlyExit = await collect(plain, { ...sampling, exitLayer: 3 }, 2_000_000);
      const pair = (samples: number[][]) => samples.map((tokens) => tokens[1] * 512 + tokens[2]);
      for (const position of [1, 2, 3]) {
        const column = (samples: number[][]) => samples.map((tokens) => tokens[position]);
        const same = chiSquare(column(autoregressive), column(speculative));
        assert.ok(same.statistic < same.critical, `token ${position + 1}: χ² = ${same.statistic.toFixed(1)} ≥ ${same.critical.toFixed(1)}`);
      }
      const ok = chiSquare(pair(autoregressive), pair(speculative));
      assert.ok(ok.statistic < ok.critical, `pairs: χ² = ${ok.statistic.toFixed(1)} ≥ ${ok.critical.toFixed(1)}`);
      const wrong = chiSquare(pair(autoregressive), pair(earlyExit));
      assert.ok(wrong.statistic > wrong.critical, `early exit not detected: χ² = ${wrong.statistic.toFixed(1)}`);
    } finally {
      plain.dispose();
      drafted.dispose();
    }
  });

  it('the API loads quantized folders and options, and reports them in info', async function () {
    const model = await loadModel(fixtures['tiny-gqa-bf16'], { weights: 'q8', draftHead: 'q4', threads: 2 });
    try {
      assert.equal(model.info.dtype, 'q8');
      assert.equal(model.info.draftHeadDtype, 'q4');
      const result = await model.generate([1, 2, 3], { maxSteps: 8, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer: 2, numSpeculations: 3 });
      assert.equal(result.tokenIds.length, 8);
    } finally {
      await model.dispose();
    }
    await assert.rejects(loadModel(fixtures['tiny-gqa-bf16'], { weights: 'q3' as QuantType }), /weights must be one of q8, q4/);
    await assert.rejects(loadModel(fixtures['tiny-gqa-bf16'], { draftHead: 'bf16' as QuantType }), /draftHead must be one of q8, q4/);
    await assert.rejects(loadModel(quantized['tiny-gqa-bf16-q4'], { weights: 'q8' }), /is a q4 checkpoint.*cannot be loaded as q8/);
    await assert.rejects(loadModel(quantized['tiny-gqa-bf16-q4'], { draftHead: 'q4' }), /LM head is q4; a q4 draft head would not be cheaper/);
    await assert.rejects(loadModel(fixtures['tiny-gqa-bf16'], { weights: 'q4', draftHead: 'q8' }), /LM head is q4; a q8 draft head would not be cheaper/);
  });

  it('--keep-head keeps the head as stored and the rest quantized', async function () {
    const out = path.join(scratch, 'keep-head');
    await quantizeModel(fixtures['tiny-gqa-bf16'], out, { type: 'q8', keepHead: true });
    const native = await loadNative(out);
    try {
      assert.equal(native.info().dtype, 'q8');
      assert.equal(native.info().headDtype, 'BF16');
    } finally {
      native.dispose();
    }
  });

  describe('bad input', function () {
    it('quantizing a quantized checkpoint, an unknown type, a non-empty output folder: clear errors, nothing written', async function () {
      const out = path.join(scratch, 'never');
      await assert.rejects(quantizeModel(quantized['tiny-gqa-bf16-q8'], out, { type: 'q4' }), /already quantized/);
      await assert.rejects(quantizeModel(fixtures['tiny-gqa-bf16'], out, { type: 'q5' as QuantType }), /type must be one of q8, q4/);
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
      await assert.rejects(quantizeModel(fixtures['tiny-gqa-bf16'], out, { type: 'q8' }), /not empty/);
      assert.deepEqual(fs.readdirSync(out), ['keep.txt']);
      assert.deepEqual(fs.readdirSync(scratch).filter((entry) => entry.includes('.partial-')), []);
    });

    it('progress rises to the total; a throwing onProgress cancels and leaves nothing behind', async function () {
      const seen: [number, number][] = [];
      await quantizeModel(fixtures['tiny-f16'], path.join(scratch, 'progress'), { type: 'q8', onProgress: (done, total) => seen.push([done, total]) });
      assert.ok(seen.length > 0);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0]);
      assert.equal(seen.at(-1)![0], seen.at(-1)![1]);
      const out = path.join(scratch, 'cancelled');
      await assert.rejects(
        quantizeModel(fixtures['tiny-f16'], out, { type: 'q4', onProgress: () => { throw new Error('stop here'); } }),
        /onProgress threw: stop here/,
      );
      assert.equal(fs.existsSync(out), false);
      const controller = new AbortController();
      await assert.rejects(
        quantizeModel(fixtures['tiny-f16'], out, { type: 'q8', signal: controller.signal, onProgress: () => controller.abort() }),
        /was cancelled; nothing was written/,
      );
      assert.equal(fs.existsSync(out), false);
      assert.deepEqual(fs.readdirSync(scratch).filter((entry) => entry.includes('.partial-')), []);
    });

    it('a matrix whose columns are not whole blocks fails naming the tensor, and leaves no partial folder', async function () {
      const odd = path.join(scratch, 'odd-source');
      writeCheckpoint(odd, { vocabSize: 64, hiddenSize: 48, intermediateSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, dtype: 'BF16', seed: 3 });
      const out = path.join(scratch, 'odd-q8');
      await assert.rejects(quantizeModel(odd, out, { type: 'q8' }), /tensor "[^"]+": its 48 columns are not a multiple of the 32-column block/);
      assert.equal(fs.existsSync(out), false);
      assert.deepEqual(fs.readdirSync(scratch).filter((entry) => entry.includes('.partial-')), []);
      await assert.rejects(loadModel(odd, { weights: 'q4' }), /48 columns are not a multiple/);
    });

    it('blocks that do not match config.json, and a truncated block file, fail naming file and tensor', async function () {
      const wrongShape = path.join(scratch, 'wrong-shape');
      fs.cpSync(quantized['tiny-gqa-bf16-q8'], wrongShape, { recursive: true });
      const configPath = path.join(wrongShape, 'config.json');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
      fs.writeFileSync(configPath, JSON.stringify({ ...config, intermediate_size: 192 }));
      await assert.rejects(loadModel(wrongShape), /model\.safetensors: tensor "model\.layers\.0\.mlp\.(gate|up|down)_proj\.(qweight|scales)" has shape \[\d+, \d+\], expected \[\d+, \d+\] for a q8 matrix/);

      const truncated = path.join(scratch, 'truncated');
      fs.cpSync(quantized['tiny-gqa-bf16-q4'], truncated, { recursive: true });
      const file = path.join(truncated, 'model.safetensors');
      fs.truncateSync(file, fs.statSync(file).size - 1000);
      await assert.rejects(loadModel(truncated), /model\.safetensors: tensor "[^"]+" data_offsets .* run past the end of the data/);

      const badMethod = path.join(scratch, 'bad-method');
      fs.cpSync(quantized['tiny-gqa-bf16-q4'], badMethod, { recursive: true });
      const methodConfig = path.join(badMethod, 'config.json');
      const gptq = JSON.parse(fs.readFileSync(methodConfig, 'utf8'));
      gptq.quantization_config = { quant_method: 'gptq', bits: 4 };
      fs.writeFileSync(methodConfig, JSON.stringify(gptq));
      await assert.rejects(loadModel(badMethod), /quant_method is "gptq"; layerskip reads only checkpoints written by `layerskip quantize`/);
    });
  });

  describe('CLI', function () {

    it('quantize writes a folder generate runs from; --weights and --draft-head work on generate', function () {
      const model = ensureFixtures(['tok-llama3'])['tok-llama3'];
      const out = path.join(scratch, 'cli-q4');
      const quantize = layerskip(['quantize', '--model', model, '--out', out, '--type', 'q4']);
      assert.equal(quantize.code, 0, quantize.stderr);
      assert.match(quantize.stdout, /^wrote .*cli-q4: \d+ of \d+ tensors as q4, [\d.]+ MB → [\d.]+ MB in [\d.]+ s; copied .*tokenizer\.json/);
      const fromFolder = layerskip(['generate', '--model', out, '--prompt', 'Hello', '--max-steps', '6']);
      const onLoad = layerskip(['generate', '--model', model, '--weights', 'q4', '--prompt', 'Hello', '--max-steps', '6']);
      assert.equal(fromFolder.code, 0, fromFolder.stderr);
      assert.equal(fromFolder.stdout, onLoad.stdout);
      const plain = layerskip(['generate', '--model', model, '--prompt', 'Hello', '--max-steps', '6']);
      const drafted = layerskip(['generate', '--model', model, '--draft-head', 'q4', '--generation-strategy', 'self_speculative', '--exit-layer', '1', '--prompt', 'Hello', '--max-steps', '6']);
      assert.equal(drafted.code, 0, drafted.stderr);
      assert.equal(drafted.stdout, plain.stdout);
      const bad = layerskip(['quantize', '--model', model, '--out', path.join(scratch, 'x'), '--type', 'q2']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--type must be one of q8, q4, got "q2"/);
      const badWeights = layerskip(['generate', '--model', model, '--weights', 'int4', '--prompt', 'x']);
      assert.equal(badWeights.code, 2);
      assert.match(badWeights.stderr, /--weights must be one of q8, q4, got "int4"/);
    });
  });
});
