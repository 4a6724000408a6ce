// CPU kernel variants: every variant this processor runs is forced in turn (cpuKernels) and checked end to end —
// logits against the Float64 reference, greedy tokens, and greedy self-speculative == autoregressive — plus the
// errors for variants that are unknown or that the processor lacks.
import assert from 'node:assert/strict';

import { cpuInfo, loadModel, type CpuKernelsName } from '../lib/index.js';
import { loadNativeBinding, type NativeModel } from '../lib/native.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { logitsFor, maxRelativeError, tokenSequence } from './helpers/native.js';
import { loadReference, referenceGreedy, referenceLogits } from './reference/llama.js';

// engine.test.ts's tolerance for variants that keep activations in f32.
const LOGIT_TOLERANCE = 2e-4;
// avx512bf16 and amx round activations to bf16 for bf16 weights (8 significant bits, as llama.cpp does): measured up to
// 0.10 on these random-weight fixtures, whose logits are sensitive to every layer's rounding. This bound only
// catches a broken kernel; the variant's real cost is measured on the trained demo model (BENCHMARKS.md).
const ROUNDED_ACTIVATION_TOLERANCE = 0.25;

const FIXTURES = ['tiny-gqa-bf16', 'tiny-f16'];

async function loadWith(dir: string, cpuKernels: string): Promise<NativeModel> {
  return loadNativeBinding().NativeModel.load(dir, { device: 'cpu', threads: 2, cpuKernels });
}

describe('CPU kernel variants', function () {
  const info = cpuInfo();
  const runnable = info.kernels.filter((kernels) => kernels.runnable);
  let dirs: Record<string, string> = {};
  before(function () {
    dirs = ensureFixtures(FIXTURES);
  });

  it('cpuInfo names the processor, its features and a runnable exact default', function () {
    assert.ok(info.model.length > 0);
    assert.ok(info.features.length > 0);
    const chosen = info.kernels.find((kernels) => kernels.name === info.defaultKernels);
    assert.ok(chosen?.runnable, `default ${info.defaultKernels} is not runnable`);
    if (process.env.LAYERSKIP_CPU === undefined) assert.equal(chosen.roundsActivations, false);
    assert.ok(runnable.some((kernels) => kernels.name === 'scalar'));
  });

  for (const variant of ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx']) {
    describe(variant, function () {
      before(function () {
        if (!runnable.some((kernels) => kernels.name === variant)) this.skip();
      });
      const rounds = () => info.kernels.find((kernels) => kernels.name === variant)!.roundsActivations;

      for (const name of FIXTURES) {
        it(`${name}: logits match the reference, greedy tokens too, and the backend names the variant`, async function () {
          const native = await loadWith(dirs[name], variant);
          try {
            assert.match(native.info().backend, new RegExp(`^cpu \\(${variant},`));
            const reference = loadReference(dirs[name]);
            const vocab = native.info().vocabSize;
            const tokens = tokenSequence(21, vocab, 5);
            const context = native.createContext({ contextLength: 128 });
            const logits = await logitsFor(context, tokens, tokens.length);
            context.dispose();
            const expected = referenceLogits(reference, tokens);
            const roundsHere = rounds() && native.info().dtype === 'BF16';
            const tolerance = roundsHere ? ROUNDED_ACTIVATION_TOLERANCE : LOGIT_TOLERANCE;
            for (let position = 0; position < tokens.length; position++) {
              const error = maxRelativeError(logits.subarray(position * vocab, (position + 1) * vocab), expected[position]);
              assert.ok(error < tolerance, `position ${position}: relative error ${error} (tolerance ${tolerance})`);
            }
            if (!roundsHere) {
              const model = await loadModel(dirs[name], { threads: 2, cpuKernels: variant as CpuKernelsName });
              try {
                const prompt = tokenSequence(9, vocab, 6);
                const result = await model.generate(prompt, { maxSteps: 12, stopTokenIds: [] });
                assert.deepEqual(result.tokenIds, referenceGreedy(reference, prompt, 12));
              } finally {
                await model.dispose();
              }
            }
          } finally {
            native.dispose();
          }
        });
      }

      it('greedy self-speculative output equals autoregressive output (tiny-gqa-bf16, E = 1 and 2, k = 4)', async function () {
        const model = await loadModel(dirs['tiny-gqa-bf16'], { threads: 2, cpuKernels: variant as CpuKernelsName });
        try {
          const prompt = tokenSequence(11, model.info.vocabSize, 7);
          const expected = await model.generate(prompt, { maxSteps: 96, stopTokenIds: [] });
          for (const exitLayer of [1, 2]) {
            const speculative = await model.generate(prompt, {
              maxSteps: 96, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations: 4,
            });
            assert.deepEqual(speculative.tokenIds, expected.tokenIds, `E=${exitLayer}`);
          }
        } finally {
          await model.dispose();
        }
      });
    });
  }

  it('an unknown variant is a RangeError naming the choices', async function () {
    await assert.rejects(
      loadModel(dirs['tiny-f16'], { cpuKernels: 'avx9000' as CpuKernelsName }),
      (error: Error) => error instanceof RangeError && /cpuKernels must be one of auto, scalar/.test(error.message),
    );
  });

  it('LAYERSKIP_CPU naming an unknown variant fails the load with the variable and the choices', async function () {
    const saved = process.env.LAYERSKIP_CPU;
    process.env.LAYERSKIP_CPU = 'sse9';
    try {
      await assert.rejects(loadModel(dirs['tiny-f16']), /LAYERSKIP_CPU=sse9: unknown CPU kernel variant \(this build has: auto, scalar/);
    } finally {
      if (saved === undefined) delete process.env.LAYERSKIP_CPU;
      else process.env.LAYERSKIP_CPU = saved;
    }
  });

  it('a variant this processor lacks is refused with the missing features named', async function () {
    const lacking = info.kernels.find((kernels) => !kernels.runnable);
    if (lacking === undefined) this.skip();
    await assert.rejects(loadWith(dirs['tiny-f16'], lacking.name), new RegExp(`lacks ${lacking.missing.split(',')[0]}`));
  });
});
