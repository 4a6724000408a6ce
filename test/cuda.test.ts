// The CUDA backend from JavaScript, on the fixture models: logits against the CPU backend, greedy self-speculative
// == autoregressive on device "cuda", sampled self-speculative drawing what the CPU draws, device "auto" choosing
// CUDA, and weight-upload progress and device memory in the model info. These need an addon built with CUDA
// (cudaCompiledIn) and a usable GPU — or the CUDA emulator's addon (scripts/run-cuda-emulator-tests.mjs); without
// them every such test is skipped and the reason (the driver's own words) is in the suite title, so the skip is
// visible.
// Without a GPU the other half runs instead: device "cuda" is a clear error naming the problem, "auto" falls back.
//
// Tolerances. CUDA matmuls round activations to the weight's 16-bit type before the tensor-core mma (f32
// accumulation; cuda/matmul.cu), while the CPU multiplies f32 activations; norms, RoPE, attention and f32-weight
// matmuls are f32 on both, in different summation orders. Simulating that rounding in the float64 reference
// (every matmul input rounded to bf16 / f16) moves these fixtures' logits by at most 1.9e-2 (bf16) and 1.3e-3
// (f16) relative L2 per position over a 37-token prompt, so the bounds below leave 2–4× headroom. f32 fixtures
// differ only by f32 summation order: the CPU's logits are within 1.6e-5 (max relative) of float64 on them, so
// 5e-4 leaves over 10× for the GPU's own rounding.
import assert from 'node:assert/strict';

import { loadModel, type GenerationOptions } from '../lib/index.js';
import { loadNativeBinding, type NativeModel } from '../lib/native.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { logitsFor, maxRelativeError, tokenSequence } from './helpers/native.js';

/** Largest relative L2 error allowed per logits row, by the fixture's stored dtype. */
const RELATIVE_L2_TOLERANCE: Record<string, number> = { BF16: 4e-2, F16: 5e-3 };
/** f32 fixtures: max |cuda − cpu| / (1 + |cpu|) over all logits. */
const F32_MAX_RELATIVE_ERROR = 5e-4;

const FIXTURE_NAMES = ['tiny-gqa-bf16', 'tiny-f16', 'tiny-mha-f32', 'tiny-llama3-rope', 'tiny-deep'];

/** Why CUDA cannot run here, or undefined when it can. */
function cudaUnavailableReason(): string | undefined {
  try {
    const binding = loadNativeBinding();
    if (!binding.cudaCompiledIn) return 'this addon was built without the CUDA backend';
    const probe = binding.probeCuda();
    return probe.usable ? undefined : probe.reason;
  } catch (error) {
    return `the addon did not load: ${(error as Error).message.split('\n')[0]}`;
  }
}

function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let error = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    error += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(error / Math.max(norm, 1e-30));
}

const unavailable = cudaUnavailableReason();

describe(`CUDA backend${unavailable ? ` (skipped: ${unavailable})` : ''}`, function () {
  const dirs: Record<string, string> = {};
  before(function () {
    if (unavailable) return;
    Object.assign(dirs, ensureFixtures(FIXTURE_NAMES));
  });
  beforeEach(function () {
    if (unavailable) this.skip();
  });

  for (const name of FIXTURE_NAMES) {
    it(`${name}: prefill and cached decode logits match the CPU backend`, async function () {
      const binding = loadNativeBinding();
      const cpu: NativeModel = await binding.NativeModel.load(dirs[name], { device: 'cpu', threads: 2 });
      const gpu: NativeModel = await binding.NativeModel.load(dirs[name], { device: 'cuda' });
      try {
        assert.equal(gpu.info().device, 'cuda');
        const { vocabSize: vocab, dtype } = cpu.info();
        const tokens = tokenSequence(37, vocab, 11);
        const compare = (actual: Float32Array, expected: Float32Array, what: string) => {
          if (dtype === 'F32') {
            const error = maxRelativeError(actual, expected);
            assert.ok(error <= F32_MAX_RELATIVE_ERROR, `${what}: max relative error ${error}`);
          } else {
            const error = relativeL2(actual, expected);
            assert.ok(error <= RELATIVE_L2_TOLERANCE[dtype], `${what}: relative L2 error ${error} (${dtype})`);
          }
        };
        // Prefill of 30 tokens (every row), then 7 cached single-token steps.
        const cpuContext = cpu.createContext({ contextLength: 64 });
        const gpuContext = gpu.createContext({ contextLength: 64 });
        const cpuPrefill = await logitsFor(cpuContext, tokens.slice(0, 30), 30);
        const gpuPrefill = await logitsFor(gpuContext, tokens.slice(0, 30), 30);
        for (let row = 0; row < 30; row++) {
          const slice = (logits: Float32Array) => logits.subarray(row * vocab, (row + 1) * vocab);
          compare(slice(gpuPrefill), slice(cpuPrefill), `prefill position ${row}`);
        }
        for (let position = 30; position < tokens.length; position++) {
          const expected = await logitsFor(cpuContext, [tokens[position]], 1);
          compare(await logitsFor(gpuContext, [tokens[position]], 1), expected, `decode position ${position}`);
        }
        cpuContext.dispose();
        gpuContext.dispose();
      } finally {
        cpu.dispose();
        gpu.dispose();
      }
    });
  }

  it('greedy self-speculative decoding equals autoregressive decoding on device "cuda"', async function () {
    const model = await loadModel(dirs['tiny-deep'], { device: 'cuda' });
    try {
      const prompt = tokenSequence(9, model.info.vocabSize, 5);
      const expected = await model.generate(prompt, { maxSteps: 40, stopTokenIds: [] });
      assert.equal(expected.stats.device, 'cuda');
      for (const exitLayer of [1, 3, 6]) {
        for (const numSpeculations of [1, 3, 6]) {
          const speculative = await model.generate(prompt, {
            maxSteps: 40,
            stopTokenIds: [],
            generationStrategy: 'self_speculative',
            exitLayer,
            numSpeculations,
          });
          assert.deepEqual(speculative.tokenIds, expected.tokenIds, `exit layer ${exitLayer}, ${numSpeculations} speculations`);
        }
      }
    } finally {
      await model.dispose();
    }
  });

  it('sampled self-speculative decoding on device "cuda" draws what the CPU draws (f32 fixture)', async function () {
    // f32 weights: the two backends' logits agree to ~1e-5, so with one seed every draw — drafts on the device,
    // acceptance, residual draws at rejections, bonus tokens — must match unless a uniform lands on a boundary.
    const onGpu = await loadModel(dirs['tiny-mha-f32'], { device: 'cuda' });
    const onCpu = await loadModel(dirs['tiny-mha-f32'], { device: 'cpu' });
    try {
      const prompt = tokenSequence(9, onGpu.info.vocabSize, 6);
      const options: GenerationOptions = {
        maxSteps: 48, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer: 1, numSpeculations: 3,
        temperature: 0.9, topK: 40, topP: 0.95, seed: 11,
      };
      const onDevice = await onGpu.generate(prompt, options);
      const onHost = await onCpu.generate(prompt, options);
      assert.equal(onDevice.stats.device, 'cuda');
      assert.deepEqual(onDevice.tokenIds, onHost.tokenIds);
      assert.ok(onDevice.stats.drafted > onDevice.stats.accepted, 'some drafts must be rejected (the residual draw)');
    } finally {
      await onGpu.dispose();
      await onCpu.dispose();
    }
  });

  // Quantized weights dequantize to the same exact f32 values on both backends and multiply f32 activations (no
  // rounding to 16 bits), so the f32 tolerance applies; the draft head changes proposals only.
  for (const weights of ['q8', 'q4'] as const) {
    it(`${weights} weights: logits match the CPU backend, and greedy self-speculative with a draft head equals autoregressive`, async function () {
      const binding = loadNativeBinding();
      const cpu: NativeModel = await binding.NativeModel.load(dirs['tiny-gqa-bf16'], { device: 'cpu', threads: 2, weights });
      const gpu: NativeModel = await binding.NativeModel.load(dirs['tiny-gqa-bf16'], { device: 'cuda', weights });
      try {
        assert.equal(gpu.info().dtype, weights);
        assert.equal(gpu.info().residentWeightBytes, cpu.info().residentWeightBytes);
        const tokens = tokenSequence(21, cpu.info().vocabSize, 12);
        const cpuContext = cpu.createContext({ contextLength: 64 });
        const gpuContext = gpu.createContext({ contextLength: 64 });
        const error = maxRelativeError(await logitsFor(gpuContext, tokens, 21), await logitsFor(cpuContext, tokens, 21));
        assert.ok(error <= F32_MAX_RELATIVE_ERROR, `max relative error ${error}`);
        cpuContext.dispose();
        gpuContext.dispose();
      } finally {
        cpu.dispose();
        gpu.dispose();
      }
      const model = await loadModel(dirs['tiny-deep'], { device: 'cuda', weights, draftHead: weights === 'q8' ? 'q4' : undefined });
      try {
        const prompt = tokenSequence(9, model.info.vocabSize, 7);
        const expected = await model.generate(prompt, { maxSteps: 24, stopTokenIds: [] });
        for (const [exitLayer, numSpeculations] of [[1, 3], [3, 6]]) {
          const speculative = await model.generate(prompt, { maxSteps: 24, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations });
          assert.deepEqual(speculative.tokenIds, expected.tokenIds, `E ${exitLayer}, k ${numSpeculations}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }

  it('device "auto" picks CUDA', async function () {
    const model = await loadModel(dirs['tiny-gqa-bf16'], { device: 'auto' });
    try {
      assert.equal(model.info.device, 'cuda');
      assert.equal(model.info.deviceFallbackReason, '');
      assert.match(model.info.backend, /^cuda:0/);
    } finally {
      await model.dispose();
    }
  });

  it('reports upload progress and device memory after upload', async function () {
    const calls: number[] = [];
    const model = await loadModel(dirs['tiny-gqa-bf16'], { device: 'cuda', onProgress: (uploaded) => calls.push(uploaded) });
    try {
      const { residentWeightBytes, deviceFreeBytes, deviceTotalBytes } = model.info;
      assert.ok(calls.length >= 1 && calls.every((value, i) => i === 0 || value > calls[i - 1]));
      assert.ok(residentWeightBytes > 0);
      assert.ok(deviceTotalBytes !== null && deviceFreeBytes !== null && deviceFreeBytes > 0 && deviceFreeBytes <= deviceTotalBytes);
    } finally {
      await model.dispose();
    }
  });
});

describe(`without a usable GPU${unavailable ? '' : ' (skipped: a usable GPU is present)'}`, function () {
  let dir: string;
  before(function () {
    dir = ensureFixtures(['tiny-gqa-bf16'])['tiny-gqa-bf16'];
  });
  beforeEach(function () {
    if (!unavailable) this.skip();
  });

  it('device "cuda" is a clear error naming the problem', async function () {
    const reason = loadNativeBinding().probeCuda().reason;
    assert.notEqual(reason, '');
    await assert.rejects(loadModel(dir, { device: 'cuda' }), (error: Error) => {
      assert.match(error.message, /^device "cuda" is unavailable: /);
      assert.ok(error.message.includes(reason), `"${error.message}" does not carry the probe's reason "${reason}"`);
      assert.match(error.message, /CUDA|driver|GPU|device/);
      return true;
    });
  });

  it('device "auto" falls back to the CPU and says why', async function () {
    const model = await loadModel(dir, { device: 'auto' });
    try {
      assert.equal(model.info.device, 'cpu');
      assert.equal(model.info.deviceFallbackReason, loadNativeBinding().probeCuda().reason);
    } finally {
      await model.dispose();
    }
  });
});
