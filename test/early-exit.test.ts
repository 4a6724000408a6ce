// Early-exit decoding (autoregressive with exitLayer E < L: layers [0, E), then the model's own final norm and LM
// head) against the reference model, its cache bookkeeping, and the self-speculative draft step, which is the
// same computation: its proposals are the reference's early-exit argmax with the reference's probability.
import assert from 'node:assert/strict';

import type { NativeModel } from '../lib/native.js';
import { useFixtureModels } from './helpers/fixture-models.js';
import { loadNative, tokenSequence } from './helpers/native.js';
import { argmax, referenceGreedy, referenceLogitsAtExit, softmax } from './reference/llama.js';

describe('early exit', function () {
  const FIXTURES = ['tiny-deep', 'tiny-gqa-bf16'];
  const { dirs, models, references } = useFixtureModels(FIXTURES, 128);

  for (const name of FIXTURES) {
    it(`${name}: greedy early-exit decoding equals the reference's at every E`, async function () {
      const model = models[name];
      const numLayers = model.info.numLayers;
      const prompt = tokenSequence(6, model.info.vocabSize, 31);
      for (let exitLayer = 1; exitLayer <= numLayers; exitLayer++) {
        const result = await model.generate(prompt, { maxSteps: 16, stopTokenIds: [], exitLayer });
        assert.deepEqual(result.tokenIds, referenceGreedy(references[name], prompt, 16, exitLayer), `E=${exitLayer}`);
        assert.equal(result.stats.exitLayer, exitLayer);
        assert.equal(result.stats.drafted, 0);
      }
    });
  }

  it('alternating early-exit and full generations reuse the cache correctly', async function () {
    const model = models['tiny-deep'];
    const reference = references['tiny-deep'];
    const prompt = tokenSequence(8, 512, 32);
    // Same prompt at E = 2, then full depth (layers ≥ 2 hold nothing: no reuse past them), then E = 2 again.
    for (const exitLayer of [2, 8, 2, 5, 8]) {
      const result = await model.generate(prompt, { maxSteps: 8, stopTokenIds: [], exitLayer });
      assert.deepEqual(result.tokenIds, referenceGreedy(reference, prompt, 8, exitLayer), `E=${exitLayer}`);
    }
    // Speculative generation after an early-exit one starts from a consistent cache.
    await model.generate(prompt, { maxSteps: 8, stopTokenIds: [], exitLayer: 3 });
    const speculative = await model.generate(prompt, {
      maxSteps: 12, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 4,
    });
    assert.deepEqual(speculative.tokenIds, referenceGreedy(reference, prompt, 12));
  });

  it('draft proposals are the reference early-exit argmax, with its probability', async function () {
    const native: NativeModel = await loadNative(dirs['tiny-deep'], 1);
    const reference = references['tiny-deep'];
    try {
      for (const exitLayer of [1, 4, 7]) {
        const context = native.createContext({ contextLength: 64 });
        context.reserveSpeculation(6);
        const tokens = tokenSequence(5, 512, 33);
        await context.evaluate(Int32Array.from(tokens), { logitRows: 0 });
        let token = 9;
        for (let i = 0; i < 6; i++) {
          const proposal = await context.draft(token, { exitLayer });
          tokens.push(token);
          const logits = referenceLogitsAtExit(reference, tokens, exitLayer).at(-1)!;
          assert.equal(proposal.token, argmax(logits), `E=${exitLayer} draft ${i}`);
          const probability = softmax(logits)[proposal.token];
          assert.ok(Math.abs(proposal.confidence - probability) < 1e-4, `${proposal.confidence} vs ${probability}`);
          token = proposal.token;
        }
        context.dispose();
      }
    } finally {
      native.dispose();
    }
  });

  it('draftRun does in one call what successive draft calls do: max drafts, stop tokens, confidence cuts, sampling', async function () {
    const native: NativeModel = await loadNative(dirs['tiny-deep'], 1);
    const prompt = Int32Array.from(tokenSequence(5, 512, 34));
    const exitLayer = 3;
    type Options = { maxDrafts: number; draftConfidence?: number; stopTokenIds?: number[]; temperature?: number };
    // The rule draftRun implements, spelled out with one draft call per pass.
    async function draftOneByOne(context: ReturnType<NativeModel['createContext']>, options: Options, uniforms?: Float64Array) {
      const kept: { token: number; probability: number; confidence: number }[] = [];
      let token = 9;
      for (let pass = 0; ; pass++) {
        const proposal = await context.draft(token, { exitLayer, temperature: options.temperature, uniform: uniforms?.[pass] });
        if (kept.length === options.maxDrafts || proposal.confidence < (options.draftConfidence ?? 0)) break;
        kept.push(proposal);
        if (kept.length === options.maxDrafts || options.stopTokenIds?.includes(proposal.token)) break;
        token = proposal.token;
      }
      return kept;
    }
    async function both(options: Options) {
      const uniforms = options.temperature ? Float64Array.from({ length: Math.max(1, options.maxDrafts) }, (_, i) => (i * 0.37 + 0.11) % 1) : undefined;
      const one = native.createContext({ contextLength: 64 });
      const many = native.createContext({ contextLength: 64 });
      try {
        for (const context of [one, many]) {
          context.reserveSpeculation(6);
          await context.evaluate(prompt, { logitRows: 0 });
        }
        const expected = await draftOneByOne(one, options, uniforms);
        const run = await many.draftRun(9, {
          exitLayer, temperature: options.temperature, maxDrafts: options.maxDrafts, draftConfidence: options.draftConfidence,
          stopTokenIds: options.stopTokenIds ? Int32Array.from(options.stopTokenIds) : undefined, uniforms,
        });
        assert.deepEqual(Array.from(run.tokens), expected.map((p) => p.token), JSON.stringify(options));
        assert.deepEqual(Array.from(run.confidences), expected.map((p) => Math.fround(p.confidence)));
        assert.deepEqual(Array.from(run.probabilities), expected.map((p) => Math.fround(p.probability)));
        assert.equal(many.exitRows(), one.exitRows());
        const verifyUniforms = options.temperature ? new Float64Array(expected.length + 1).fill(0.5) : undefined;
        const [a, b] = await Promise.all([one, many].map((c) => c.verify(expected.length, { temperature: options.temperature, uniforms: verifyUniforms })));
        assert.deepEqual(Array.from(b.tokens), Array.from(a.tokens));
        return expected.length;
      } finally {
        one.dispose();
        many.dispose();
      }
    }
    try {
      assert.equal(await both({ maxDrafts: 4 }), 4);
      assert.equal(await both({ maxDrafts: 0 }), 0);
      // A stop token and a confidence threshold taken from a plain run, so each really ends the run early.
      const plain = native.createContext({ contextLength: 64 });
      plain.reserveSpeculation(6);
      await plain.evaluate(prompt, { logitRows: 0 });
      const reference = await plain.draftRun(9, { exitLayer, maxDrafts: 6 });
      plain.dispose();
      assert.ok((await both({ maxDrafts: 6, stopTokenIds: [reference.tokens[2]] })) <= 3);
      assert.ok((await both({ maxDrafts: 6, draftConfidence: reference.confidences[2] + 1e-6 })) <= 2);
      assert.equal(await both({ maxDrafts: 5, temperature: 0.9 }), 5);
    } finally {
      native.dispose();
    }
  });
});
