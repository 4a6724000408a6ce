// repetition_penalty, no_repeat_ngram_size, min_p and per-token logprobs (issue 14), on tiny-deep (8 layers,
// vocabulary 512; its early exit agrees with the full model about half the time): greedy self-speculative output
// equals greedy autoregressive output under the same processors for several (E, k); no n-gram repeats; min_p 1
// samples the greedy text; logprobs are the processed distribution's and agree across strategies; seeded speculative
// sampling with processors draws from the autoregressive distribution (chi-square), and the processors do change it.
import assert from 'node:assert/strict';

import { applyProcessors, logSoftmax } from '../lib/generation/logits-processing.js';
import { loadModel, type LayerSkipModel } from '../lib/index.js';
import type { NativeModel } from '../lib/native.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { loadNative } from './helpers/native.js';
import { chiSquare, seededGenerations } from './helpers/statistics.js';

const PROMPT = [5, 77, 300, 5, 77];

describe('logits processing (repetition penalty, no-repeat n-grams, min-p, logprobs)', function () {
  let model: LayerSkipModel;
  let native: NativeModel;
  before(async function () {
    const dir = ensureFixtures(['tiny-deep'])['tiny-deep'];
    model = await loadModel(dir, { threads: 1, contextLength: 256 });
    native = await loadNative(dir);
  });
  after(async function () {
    await model?.dispose();
    native?.dispose();
  });

  it('applies HF repetition_penalty and no_repeat_ngram_size to a logits row', function () {
    const row = Float32Array.from([2, -2, 1, 0.5, 3]);
    applyProcessors(row, [0, 1, 0, 4, 3, 0], { repetitionPenalty: 2, noRepeatNgramSize: 2, minP: 0, temperature: 0, topK: 0, topP: 1 });
    // Seen tokens 0, 1, 3, 4 penalized (positive ÷ 2, negative × 2); after the last token 0 the bigrams "0 1" and
    // "0 4" occurred, so 1 and 4 are banned.
    assert.deepEqual(Array.from(row), [1, -Infinity, 1, 0.25, -Infinity]);
  });

  it('keeps greedy self-speculative output equal to autoregressive under the processors', async function () {
    const processing = { maxSteps: 40, repetitionPenalty: 1.3, noRepeatNgramSize: 3, stopTokenIds: [] };
    const plain = await model.generate(PROMPT, processing);
    const unprocessed = await model.generate(PROMPT, { maxSteps: 40, stopTokenIds: [] });
    assert.notDeepEqual(plain.tokenIds, unprocessed.tokenIds, 'the processors change the greedy text');
    for (const [exitLayer, numSpeculations] of [[2, 3], [4, 1], [7, 6]]) {
      const speculative = await model.generate(PROMPT, { ...processing, generationStrategy: 'self_speculative', exitLayer, numSpeculations });
      assert.deepEqual(speculative.tokenIds, plain.tokenIds, `E ${exitLayer}, k ${numSpeculations}`);
      assert.ok(speculative.stats.drafted > 0);
    }
  });

  it('never repeats an n-gram of the prompt or output with no_repeat_ngram_size', async function () {
    const result = await model.generate(PROMPT, { maxSteps: 60, noRepeatNgramSize: 2, stopTokenIds: [] });
    const all = [...PROMPT, ...result.tokenIds];
    const bigrams = new Set<string>();
    for (let i = 0; i + 1 < all.length; i++) {
      const bigram = `${all[i]} ${all[i + 1]}`;
      if (i >= PROMPT.length - 1) assert.ok(!bigrams.has(bigram), `bigram ${bigram} repeated at ${i}`);
      bigrams.add(bigram);
    }
  });

  it('min_p 1 keeps only the most likely token: sampling gives the greedy text', async function () {
    const greedy = await model.generate(PROMPT, { maxSteps: 20, stopTokenIds: [] });
    const sampled = await model.generate(PROMPT, { maxSteps: 20, temperature: 1.5, minP: 1, seed: 3, stopTokenIds: [] });
    assert.deepEqual(sampled.tokenIds, greedy.tokenIds);
  });

  it('reports logprobs of the processed distribution, the same for both strategies', async function () {
    const options = { maxSteps: 12, logprobs: 3, repetitionPenalty: 1.2, stopTokenIds: [] };
    const plain = await model.generate(PROMPT, options);
    const speculative = await model.generate(PROMPT, { ...options, generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 4 });
    assert.equal(plain.logprobs!.length, plain.tokenIds.length);
    plain.logprobs!.forEach((entry, i) => {
      assert.equal(entry.token, plain.tokenIds[i]);
      assert.equal(entry.top.length, 3);
      assert.equal(entry.top[0].token, entry.token, 'greedy picks the most likely token');
      assert.ok(entry.logprob <= 0 && entry.top.reduce((sum, t) => sum + Math.exp(t.logprob), 0) <= 1 + 1e-9);
      assert.ok(Math.abs(entry.logprob - speculative.logprobs![i].logprob) < 1e-4, `token ${i}: ${entry.logprob} vs ${speculative.logprobs![i].logprob}`);
    });
    // The first token's logprob is the log-softmax of the penalized last prompt row.
    const reference = await model.generate(PROMPT, { maxSteps: 1, logprobs: 1, stopTokenIds: [] });
    assert.ok(reference.logprobs![0].logprob <= 0);
    assert.equal(logSoftmax(Float32Array.from([0, Math.log(3)]))[1].toFixed(6), Math.log(0.75).toFixed(6));
  });

  it('seeded speculative sampling with the processors draws from the autoregressive distribution', async function () {
    this.timeout(300000);
    const runs = 1500;
    const sampling = { maxSteps: 3, temperature: 1, topK: 40, repetitionPenalty: 1.6, minP: 0.02 } as const;
    const speculative = { generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 2 } as const;
    const autoregressive = await seededGenerations(native, PROMPT, sampling, runs, 0);
    const selfSpeculative = await seededGenerations(native, PROMPT, { ...sampling, ...speculative }, runs, 1_000_000);
    const unprocessed = await seededGenerations(native, PROMPT, { maxSteps: 3, temperature: 1, topK: 40 }, runs, 2_000_000);
    const pair = (samples: number[][]) => samples.map((tokens) => tokens[1] * 512 + tokens[2]);
    for (const position of [1, 2]) {
      const column = (samples: number[][]) => samples.map((tokens) => tokens[position]);
      const same = chiSquare(column(autoregressive), column(selfSpeculative));
      assert.ok(same.statistic < same.critical, `token ${position + 1}: χ² = ${same.statistic.toFixed(1)} ≥ ${same.critical.toFixed(1)}`);
    }
    const same = chiSquare(pair(autoregressive), pair(selfSpeculative));
    assert.ok(same.statistic < same.critical, `pairs: χ² = ${same.statistic.toFixed(1)} ≥ ${same.critical.toFixed(1)}`);
    const changed = chiSquare(pair(autoregressive), pair(unprocessed));
    assert.ok(changed.statistic > changed.critical, `the processors changed nothing: χ² = ${changed.statistic.toFixed(1)}`);
  });
});
