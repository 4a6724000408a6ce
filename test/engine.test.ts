// The native engine against the plain-TypeScript reference Llama (Float64, no cache): prefill logits, cached
// token-by-token decoding, early exit, bit-exact batch invariance, truncate-and-redo, greedy tokens.
import assert from 'node:assert/strict';

import type { NativeModel } from '../lib/native.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { loadNative, logitsFor, maxRelativeError, sameBits, tokenSequence } from './helpers/native.js';
import { loadReference, referenceGreedy, referenceLogits, referenceLogitsAtExit, type ReferenceModel } from './reference/llama.js';

// Stated tolerance: max |native − reference| / (1 + |reference|) over all logits. Both sides read the same stored
// weights; the gap is f32 accumulation against float64, a few ulps of f32 over ~10 layers.
const LOGIT_TOLERANCE = 2e-4;

const FIXTURE_NAMES = ['tiny-gqa-bf16', 'tiny-mha-f32', 'tiny-f16', 'tiny-llama3-rope', 'tiny-sharded'];

describe('native engine vs reference', function () {
  const dirs: Record<string, string> = {};
  before(function () {
    Object.assign(dirs, ensureFixtures([...FIXTURE_NAMES, 'tiny-deep']));
  });

  for (const name of FIXTURE_NAMES) {
    describe(name, function () {
      let native: NativeModel;
      let reference: ReferenceModel;
      let vocab: number;
      before(async function () {
        native = await loadNative(dirs[name]);
        reference = loadReference(dirs[name]);
        vocab = native.info().vocabSize;
      });
      after(function () {
        native.dispose();
      });

      it('prefill logits of every position match the reference', async function () {
        const tokens = tokenSequence(37, vocab, 11);
        const context = native.createContext({ contextLength: 128 });
        const logits = await logitsFor(context, tokens, tokens.length);
        const expected = referenceLogits(reference, tokens);
        for (let position = 0; position < tokens.length; position++) {
          const row = logits.subarray(position * vocab, (position + 1) * vocab);
          const error = maxRelativeError(row, expected[position]);
          assert.ok(error < LOGIT_TOLERANCE, `position ${position}: relative error ${error}`);
        }
        context.dispose();
      });

      it('cached token-by-token decoding matches the reference', async function () {
        const tokens = tokenSequence(24, vocab, 12);
        const expected = referenceLogits(reference, tokens);
        const context = native.createContext({ contextLength: 128 });
        await context.evaluate(Int32Array.from(tokens.slice(0, 5)), { logitRows: 0 });
        for (let position = 5; position < tokens.length; position++) {
          const row = await logitsFor(context, [tokens[position]], 1);
          const error = maxRelativeError(row, expected[position]);
          assert.ok(error < LOGIT_TOLERANCE, `position ${position}: relative error ${error}`);
        }
        assert.equal(context.length(), tokens.length);
        context.dispose();
      });

      it('is batch invariant: a token’s logits are bit-identical alone or at any place in a batch', async function () {
        const tokens = tokenSequence(20, vocab, 13);
        const single = native.createContext({ contextLength: 64 });
        const alone: Float32Array[] = [];
        for (const token of tokens) alone.push(await logitsFor(single, [token], 1));
        // Several batch splits: whole prompt, uneven chunks, the token in first, middle and last place.
        for (const splits of [[20], [3, 17], [7, 1, 5, 7], [1, 19], [19, 1]]) {
          const batched = native.createContext({ contextLength: 64 });
          let position = 0;
          for (const size of splits) {
            const logits = await logitsFor(batched, tokens.slice(position, position + size), size);
            for (let i = 0; i < size; i++) {
              const row = logits.subarray(i * vocab, (i + 1) * vocab);
              assert.ok(sameBits(row, alone[position + i]), `split ${splits}: position ${position + i} differs`);
            }
            position += size;
          }
          batched.dispose();
        }
        single.dispose();
      });

      it('truncate then redo reproduces the logits exactly', async function () {
        const tokens = tokenSequence(16, vocab, 14);
        const context = native.createContext({ contextLength: 64 });
        const first = await logitsFor(context, tokens, 4);
        context.truncate(9);
        assert.equal(context.length(), 9);
        const redo = await logitsFor(context, tokens.slice(9), 4);
        assert.ok(sameBits(first, redo));
        // Diverge after the truncation point, then come back.
        context.truncate(12);
        await logitsFor(context, tokenSequence(4, vocab, 99), 1);
        context.truncate(12);
        const again = await logitsFor(context, tokens.slice(12), 4);
        assert.ok(sameBits(first, again));
        context.dispose();
      });

      it('greedy decoding yields the reference’s tokens', async function () {
        const prompt = tokenSequence(6, vocab, 15);
        const expected = referenceGreedy(reference, prompt, 12);
        const context = native.createContext({ contextLength: 64 });
        let result = await context.evaluate(Int32Array.from(prompt), { logitRows: 1 });
        const generated: number[] = [];
        while (generated.length < 12) {
          generated.push(result.tokens[0]);
          result = await context.evaluate(Int32Array.from([result.tokens[0]]), { logitRows: 1 });
        }
        assert.deepEqual(generated, expected);
        context.dispose();
      });
    });
  }

  describe('early exit (tiny-deep, 8 layers)', function () {
    it('logits after layers [0, E) + final norm + LM head match the reference for every E', async function () {
      const native = await loadNative(dirs['tiny-deep']);
      const reference = loadReference(dirs['tiny-deep']);
      const vocab = native.info().vocabSize;
      const tokens = tokenSequence(12, vocab, 16);
      for (const exitLayer of [1, 2, 4, 7, 8]) {
        const context = native.createContext({ contextLength: 64 });
        const logits = await logitsFor(context, tokens, tokens.length, exitLayer);
        const expected = referenceLogitsAtExit(reference, tokens, exitLayer);
        for (let position = 0; position < tokens.length; position++) {
          const error = maxRelativeError(logits.subarray(position * vocab, (position + 1) * vocab), expected[position]);
          assert.ok(error < LOGIT_TOLERANCE, `E=${exitLayer} position ${position}: relative error ${error}`);
        }
        assert.equal(context.layerLength(exitLayer - 1), tokens.length);
        if (exitLayer < 8) assert.equal(context.layerLength(exitLayer), 0);
        context.dispose();
      }
      native.dispose();
    });
  });

  describe('argument checks', function () {
    it('rejects bad token ids, layer ranges and a full context without crashing', async function () {
      const native = await loadNative(dirs['tiny-gqa-bf16']);
      const context = native.createContext({ contextLength: 8 });
      await assert.rejects(context.evaluate(Int32Array.from([512])), /token id 512 is outside the vocabulary \[0, 512\)/);
      assert.throws(() => context.evaluate(Int32Array.from([1]), { layerEnd: 9 }), /layerEnd must be an integer in \[1, 4\], got 9/);
      assert.throws(() => context.evaluate([1] as unknown as Int32Array), /tokens must be an Int32Array/);
      await assert.rejects(context.evaluate(Int32Array.from(tokenSequence(9, 512, 1))), /context is full/);
      assert.throws(() => context.evaluate(Int32Array.from([1]), { temperature: 1 }), /needs uniforms/);
      context.dispose();
      assert.throws(() => context.length(), /disposed/);
      native.dispose();
    });
  });
});
