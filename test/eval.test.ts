// Per-exit-layer evaluation: the native sums against the reference model's per-layer logits (windowed, and chunked
// by max_batch / max_logit_rows), the binding's argument checks, the cache left usable, the exit-layer
// recommendation on synthetic rows, and `layerskip eval`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { evaluateExitLayers, headCostRatio, recommendExitLayer, type ExitLayerRow, type LayerSkipModel } from '../lib/index.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { useFixtureModels } from './helpers/fixture-models.js';
import { loadNative, tokenSequence } from './helpers/native.js';
import { referenceGreedy, referenceLogitsAtExit, type ReferenceModel } from './reference/llama.js';
import { runLayerskip as layerskip } from './helpers/cli.js';

// Reference logits closer than this at the top are a tie the engine's float32 may break either way.
const TIE_MARGIN = 1e-3;

interface ReferenceLayerSums {
  nll: number;
  correct: number;
  /** Predictions whose target or argmax is within TIE_MARGIN of a tie. */
  ambiguousCorrect: number;
  argmax: number[];
  nearTie: boolean[];
}

/** Per-layer sums of one window from the reference: position t predicts window[t + 1]. */
function referenceWindowSums(reference: ReferenceModel, window: number[]): ReferenceLayerSums[] {
  const inputs = window.slice(0, -1);
  const sums: ReferenceLayerSums[] = [];
  for (let exitLayer = 1; exitLayer <= reference.config.numLayers; exitLayer++) {
    const layer: ReferenceLayerSums = { nll: 0, correct: 0, ambiguousCorrect: 0, argmax: [], nearTie: [] };
    referenceLogitsAtExit(reference, inputs, exitLayer).forEach((logits, t) => {
      const target = window[t + 1];
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      let runnerUp = -Infinity;
      let total = 0;
      for (let i = 0; i < logits.length; i++) {
        if (i !== best) runnerUp = Math.max(runnerUp, logits[i]);
        total += Math.exp(logits[i] - logits[best]);
      }
      layer.nll += Math.log(total) + logits[best] - logits[target];
      const nearTie = logits[best] - runnerUp < TIE_MARGIN;
      if (best === target) layer.correct++;
      if (nearTie || (best !== target && logits[best] - logits[target] < TIE_MARGIN)) layer.ambiguousCorrect++;
      layer.argmax.push(best);
      layer.nearTie.push(nearTie);
    });
    sums.push(layer);
  }
  return sums;
}

/** Reference rows for `tokens` cut into disjoint windows, as evaluateExitLayers does. */
function referenceRows(reference: ReferenceModel, tokens: number[], window: number) {
  const numLayers = reference.config.numLayers;
  const rows = Array.from({ length: numLayers }, () => ({ nll: 0, correct: 0, agree: 0, ambiguousCorrect: 0, ambiguousAgree: 0 }));
  let count = 0;
  for (let start = 0; start + 1 < tokens.length; start += window) {
    const sums = referenceWindowSums(reference, tokens.slice(start, start + window));
    const last = sums[numLayers - 1];
    sums.forEach((layer, index) => {
      rows[index].nll += layer.nll;
      rows[index].correct += layer.correct;
      rows[index].ambiguousCorrect += layer.ambiguousCorrect;
      layer.argmax.forEach((best, t) => {
        if (best === last.argmax[t]) rows[index].agree++;
        if (layer.nearTie[t] || last.nearTie[t]) rows[index].ambiguousAgree++;
      });
    });
    count += sums[0].argmax.length;
  }
  return { rows, count };
}

function assertMatchesReference(native: ExitLayerRow[], reference: ReferenceModel, tokens: number[], window: number): void {
  const expected = referenceRows(reference, tokens, window);
  assert.equal(native.length, reference.config.numLayers);
  native.forEach((row, index) => {
    const want = expected.rows[index];
    const label = `exit layer ${row.exitLayer}`;
    assert.equal(row.exitLayer, index + 1);
    assert.equal(row.tokens, expected.count, label);
    const perplexity = Math.exp(want.nll / expected.count);
    assert.ok(Math.abs(row.perplexity - perplexity) <= 1e-3 * perplexity, `${label}: perplexity ${row.perplexity} vs ${perplexity}`);
    assert.ok(Math.abs(row.accuracy * row.tokens - want.correct) <= want.ambiguousCorrect + 1e-9, `${label}: accuracy`);
    assert.ok(Math.abs(row.agreement * row.tokens - want.agree) <= want.ambiguousAgree + 1e-9, `${label}: agreement`);
  });
  assert.equal(native.at(-1)!.agreement, 1);
}

/** A stream the model partly predicts: random ids, the model's greedy continuation, an early exit's continuation. */
async function predictableStream(model: LayerSkipModel, seed: number): Promise<number[]> {
  const vocab = model.info.vocabSize;
  const prompt = tokenSequence(5, vocab, seed);
  const full = await model.generate(prompt, { maxSteps: 20, stopTokenIds: [] });
  const early = await model.generate(prompt, { maxSteps: 12, stopTokenIds: [], exitLayer: 2 });
  return [...prompt, ...full.tokenIds, ...tokenSequence(6, vocab, seed + 1), ...prompt, ...early.tokenIds];
}

describe('exit-layer evaluation', function () {
  const FIXTURES = ['tiny-gqa-bf16', 'tiny-deep'];
  const { dirs, models, references } = useFixtureModels(FIXTURES, 32);

  for (const name of FIXTURES) {
    it(`${name}: per-layer perplexity, accuracy and agreement equal the reference's`, async function () {
      const model = models[name];
      const tokens = await predictableStream(model, 41);
      const progress: number[] = [];
      const rows = await evaluateExitLayers(model, Int32Array.from(tokens), { window: 20, onProgress: (done) => progress.push(done) });
      assertMatchesReference(rows, references[name], tokens, 20);
      assert.equal(tokens.length, 48);
      assert.deepEqual(progress, [20, 40, 48]);
      assert.ok(rows.at(-1)!.accuracy > rows[0].accuracy, 'the stream is more predictable at full depth');
      // maxTokens cuts the stream first.
      const capped = await evaluateExitLayers(model, Int32Array.from(tokens), { window: 20, maxTokens: 25 });
      assertMatchesReference(capped, references[name], tokens.slice(0, 25), 20);
    });
  }

  it('leaves the model ready to generate, equal to the reference', async function () {
    const model = models['tiny-deep'];
    const prompt = tokenSequence(6, 512, 52);
    await model.generate(prompt, { maxSteps: 4, stopTokenIds: [] }); // cached prompt the evaluation overwrites
    await evaluateExitLayers(model, Int32Array.from(tokenSequence(30, 512, 53)), { window: 16 });
    const result = await model.generate(prompt, { maxSteps: 6, stopTokenIds: [] });
    assert.deepEqual(result.tokenIds, referenceGreedy(references['tiny-deep'], prompt, 6));
  });

  it('native sums do not depend on max_batch / max_logit_rows chunking', async function () {
    const native = await loadNative(dirs['tiny-deep'], 1);
    try {
      const tokens = Int32Array.from(tokenSequence(30, 512, 54));
      const unchunked = native.createContext({ contextLength: 32 });
      const whole = await unchunked.evaluateExitLayers(tokens);
      unchunked.dispose();
      const chunked = native.createContext({ contextLength: 32, maxBatch: 7, maxLogitRows: 3 });
      const sums = await chunked.evaluateExitLayers(tokens);
      assert.equal(chunked.length(), 29); // the cache holds the fed positions
      chunked.dispose();
      assert.equal(sums.count, 29);
      assert.deepEqual([...sums.correct], [...whole.correct]);
      assert.deepEqual([...sums.agree], [...whole.agree]);
      sums.nll.forEach((nll, layer) => assert.ok(Math.abs(nll - whole.nll[layer]) <= 1e-9 * whole.nll[layer]));
      assert.equal(sums.agree.at(-1), 29);
    } finally {
      native.dispose();
    }
  });

  it('refuses bad windows with clear errors', async function () {
    const native = await loadNative(dirs['tiny-deep'], 1);
    try {
      const context = native.createContext({ contextLength: 16 });
      await assert.rejects(async () => context.evaluateExitLayers([1, 2] as unknown as Int32Array), /tokens must be an Int32Array/);
      await assert.rejects(async () => context.evaluateExitLayers(Int32Array.of(1)), /between 2 and context length \+ 1 \(17\)/);
      await assert.rejects(async () => context.evaluateExitLayers(new Int32Array(18)), /got 18/);
      await assert.rejects(context.evaluateExitLayers(Int32Array.of(1, 2, 512)), /token id 512 at position 2 is outside the vocabulary/);
      assert.equal((await context.evaluateExitLayers(new Int32Array(17))).count, 16);
      context.dispose();
    } finally {
      native.dispose();
    }
    const model = models['tiny-deep'];
    await assert.rejects(evaluateExitLayers(model, Int32Array.of(1)), /at least 2 tokens/);
    await assert.rejects(evaluateExitLayers(model, new Int32Array(8), { window: 34 }), /window must be an integer in \[2, 33\]/);
  });
});

describe('recommendExitLayer', function () {
  const rows = (agreements: number[]): ExitLayerRow[] =>
    agreements.map((agreement, index) => ({ exitLayer: index + 1, accuracy: 0.5, perplexity: 10, agreement, tokens: 100 }));

  it('headCostRatio is the head weights over the layer stack (Llama-2-7B shapes: about 0.02)', function () {
    const h = headCostRatio({
      hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128, vocabSize: 32000,
    });
    assert.ok(Math.abs(h - (32000 * 4096) / (32 * (4 * 4096 * 4096 + 3 * 4096 * 11008))) < 1e-12);
    assert.ok(h > 0.019 && h < 0.021);
  });

  it('picks a high-agreement early layer with a sensible draft count, never the last layer', function () {
    const picked = recommendExitLayer(rows([0.2, 0.4, 0.9, 0.93, 0.96, 0.98, 0.99, 1]), 8, 0.05)!;
    assert.deepEqual([picked.exitLayer, picked.numSpeculations], [3, 4]);
    assert.equal(picked.acceptanceRate, 0.9);
    // The formula at the pick: tokens per step (1 − a^(k+1)) / (1 − a); cost k(E/L + h) + E/L + (1 − E/L + h).
    const tokensPerStep = (1 - 0.9 ** 5) / (1 - 0.9);
    assert.ok(Math.abs(picked.tokensPerStep - tokensPerStep) < 1e-12);
    assert.ok(Math.abs(picked.predictedSpeedup - (tokensPerStep * 1.05) / (4 * (3 / 8 + 0.05) + 3 / 8 + (5 / 8 + 0.05))) < 1e-12);
    assert.ok(picked.predictedSpeedup > 1.5);
    // A late exit that almost always agrees saves little: drafting through 7 of 8 layers costs nearly a full step.
    assert.ok(recommendExitLayer(rows([0, 0, 0, 0, 0, 0, 0.99, 1]), 8, 0.05)!.predictedSpeedup < 1.1);
  });

  it('with measured pass costs, a compute-bound verify (cost ∝ rows) predicts what the memory-bound model misses', function () {
    const agreements = rows([0.2, 0.4, 0.9, 0.93, 0.96, 0.98, 0.99, 1]);
    const flat = { stackMs: Array(9).fill(1), headMs: Array(9).fill(0.05) };
    const flatPick = recommendExitLayer(agreements, 8, 0.05, flat)!;
    const memoryBound = recommendExitLayer(agreements, 8, 0.05)!;
    assert.equal(flatPick.costModel, 'measured');
    assert.equal(memoryBound.costModel, 'memory-bound');
    assert.ok(Math.abs(flatPick.predictedSpeedup - memoryBound.predictedSpeedup) < 1e-12, 'flat measured costs = the memory-bound model');
    const linear = { stackMs: Array.from({ length: 9 }, (_, i) => i + 1), headMs: Array.from({ length: 9 }, (_, i) => 0.05 * (i + 1)) };
    const pick = recommendExitLayer(agreements, 8, 0.05, linear)!;
    const { exitLayer: e, numSpeculations: k, acceptanceRate: a } = pick;
    const f = e / 8;
    const expected = (((1 - a ** (k + 1)) / (1 - a)) * 1.05) / (k * (f + 0.05) + f + (1 - f) * (k + 1) + 0.05 * (k + 1));
    assert.ok(Math.abs(pick.predictedSpeedup - expected) < 1e-12);
    assert.ok(pick.predictedSpeedup < 1.1, `compute-bound verification leaves little to gain (${pick.predictedSpeedup})`);
  });

  it('perfect agreement drafts the most from the first layer; no agreement predicts a slowdown', function () {
    const perfect = recommendExitLayer(rows([1, 1, 1, 1]), 4, 0.1)!;
    assert.deepEqual([perfect.exitLayer, perfect.numSpeculations, perfect.tokensPerStep], [1, 8, 9]);
    const none = recommendExitLayer(rows([0, 0, 0, 1]), 4, 0.1)!;
    assert.ok(none.exitLayer < 4);
    assert.ok(none.predictedSpeedup < 1);
    assert.equal(recommendExitLayer(rows([1]), 1, 0.1), undefined);
  });
});

describe('layerskip eval', function () {
  let modelDir: string;
  let dataDir: string;
  let dataFile: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-eval-'));
    dataFile = path.join(dataDir, 'text.txt');
    fs.writeFileSync(dataFile, 'The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.\n');
  });
  after(function () {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });


  it('prints one table row per layer and a recommendation', function () {
    const run = layerskip(['eval', '--model', modelDir, '--data', dataFile, '--window', '16']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /exit layer +accuracy +perplexity +agreement w\/ last layer/);
    const tableRows = run.stdout.split('\n').filter((line) => /^ +\d+ +[\d.]+% +[\d.]+ +[\d.]+%$/.test(line));
    assert.deepEqual(tableRows.map((line) => Number(line.trim().split(/ +/)[0])), [1, 2]);
    assert.match(tableRows[1], /100\.00%$/);
    assert.match(run.stdout, /recommended: --exit-layer 1 --num-speculations \d+ \(predicted speedup [\d.]+×/);
  });

  it('--json prints one object', function () {
    const run = layerskip(['eval', '--model', modelDir, '--data', dataFile, '--json', '--max-tokens', '12']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.tokens, 12);
    assert.equal(result.predictions, 11);
    assert.equal(result.layers.length, 2);
    assert.equal(result.layers[1].agreement, 1);
    assert.equal(result.recommendation.exitLayer, 1);
  });

  it('usage errors: no --data, a path that does not exist', function () {
    const missing = layerskip(['eval', '--model', modelDir]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.trim(), 'layerskip: give the text to evaluate on with --data PATH');
    const badPath = layerskip(['eval', '--model', modelDir, '--data', path.join(dataDir, 'nope.txt')]);
    assert.equal(badPath.code, 2);
    assert.match(badPath.stderr, /--data: corpus path .*nope\.txt does not exist/);
  });
});
