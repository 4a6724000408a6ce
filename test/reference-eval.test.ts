// compareToReference (lib/eval/reference-eval.ts) and `layerskip eval --reference`: a model against a second load of
// itself scores KL 0; against a perturbed copy (what quantization does) and against a different checkpoint of the
// same vocabulary, KL, top-1 agreement and both perplexities equal an independent computation from the TS reference
// model's logits; windows longer than one logits chunk, the model's queue and cache, and vocabulary mismatches.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { evaluateExitLayers } from '../lib/eval/exit-layer-eval.js';
import { LOGIT_ROWS_PER_CHUNK } from '../lib/eval/logit-rows.js';
import { compareToReference, comparePrediction, type ReferenceComparison } from '../lib/eval/reference-eval.js';
import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { readCheckpointTensors, readSafetensorsHeader, writeSafetensors, type NamedTensor } from '../lib/training/safetensors-io.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { useFixtureModels } from './helpers/fixture-models.js';
import { tokenSequence } from './helpers/native.js';
import { argmax, loadReference, referenceGreedy, referenceLogits, softmax, type ReferenceModel } from './reference/llama.js';
import { runLayerskip as layerskip } from './helpers/cli.js';

const CONTEXT_LENGTH = 128;
// Reference logits closer than this at the top are a tie the engine's float32 may break either way.
const TIE_MARGIN = 1e-3;

/** Copies the checkpoint folder `source` into `target` (JSON files as they are), `change` applied to each tensor. */
function writeChangedCopy(source: string, target: string, change: (tensor: NamedTensor) => void): void {
  fs.mkdirSync(target, { recursive: true });
  for (const file of fs.readdirSync(source)) {
    if (file.endsWith('.json')) fs.copyFileSync(path.join(source, file), path.join(target, file));
  }
  const tensors = [...readCheckpointTensors(source).values()];
  tensors.forEach(change);
  writeSafetensors(path.join(target, 'model.safetensors'), tensors, readSafetensorsHeader(path.join(source, 'model.safetensors'))[0].dtype);
}

/**
 * A copy with every layer matrix scaled elementwise by 1 + amplitude·u, u uniform in [−1, 1) from a fixed seed: a
 * stand-in for quantization error.
 */
function writePerturbedCopy(source: string, target: string, amplitude: number): void {
  let state = 12345;
  writeChangedCopy(source, target, (tensor) => {
    if (!tensor.name.startsWith('model.layers.') || tensor.shape.length !== 2) return;
    for (let i = 0; i < tensor.data.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      tensor.data[i] *= 1 + amplitude * (state / 2 ** 31 - 1);
    }
  });
}

interface IndependentComparison {
  kl: number[];
  top1Matches: number;
  /** Positions where either model's top two reference logits are within TIE_MARGIN. */
  nearTies: number;
  perplexity: number;
  referencePerplexity: number;
}

/** KL(P_reference ‖ P_model) per prediction from the TS reference models' float64 logits, windows cut as eval does. */
function independentComparison(model: ReferenceModel, reference: ReferenceModel, tokens: number[], window: number): IndependentComparison {
  const result: IndependentComparison = { kl: [], top1Matches: 0, nearTies: 0, perplexity: 0, referencePerplexity: 0 };
  let nll = 0;
  let referenceNll = 0;
  const nearTie = (logits: Float64Array) => {
    const best = argmax(logits);
    return logits.some((value, i) => i !== best && logits[best] - value < TIE_MARGIN);
  };
  for (let start = 0; start + 1 < tokens.length; start += window) {
    const windowTokens = tokens.slice(start, start + window);
    const inputs = windowTokens.slice(0, -1);
    const modelLogits = referenceLogits(model, inputs);
    const referenceLogitRows = referenceLogits(reference, inputs);
    inputs.forEach((_, t) => {
      const p = softmax(referenceLogitRows[t]);
      const q = softmax(modelLogits[t]);
      result.kl.push(p.reduce((sum, pi, i) => sum + pi * Math.log(pi / q[i]), 0));
      if (argmax(p) === argmax(q)) result.top1Matches++;
      if (nearTie(modelLogits[t]) || nearTie(referenceLogitRows[t])) result.nearTies++;
      nll -= Math.log(q[windowTokens[t + 1]]);
      referenceNll -= Math.log(p[windowTokens[t + 1]]);
    });
  }
  result.perplexity = Math.exp(nll / result.kl.length);
  result.referencePerplexity = Math.exp(referenceNll / result.kl.length);
  return result;
}

function close(actual: number, expected: number, relative: number, label: string): void {
  assert.ok(Math.abs(actual - expected) <= relative * Math.abs(expected) + 1e-7, `${label}: ${actual} vs ${expected}`);
}

function assertMatchesIndependent(actual: ReferenceComparison, expected: IndependentComparison): void {
  const sorted = [...expected.kl].sort((a, b) => a - b);
  const at = (q: number) => {
    const rank = q * (sorted.length - 1);
    const below = Math.floor(rank);
    return sorted[below] + (sorted[Math.min(below + 1, sorted.length - 1)] - sorted[below]) * (rank - below);
  };
  assert.equal(actual.predictions, sorted.length);
  close(actual.meanKl, sorted.reduce((a, b) => a + b, 0) / sorted.length, 0.02, 'mean KL');
  close(actual.medianKl, at(0.5), 0.02, 'median KL');
  close(actual.p99Kl, at(0.99), 0.02, '99th percentile KL');
  close(actual.maxKl, sorted.at(-1)!, 0.02, 'max KL');
  assert.ok(Math.abs(actual.top1Matches - expected.top1Matches) <= expected.nearTies, `top-1 ${actual.top1Matches} vs ${expected.top1Matches}`);
  assert.equal(actual.top1Agreement, actual.top1Matches / actual.predictions);
  close(actual.perplexity, expected.perplexity, 1e-3, 'perplexity');
  close(actual.referencePerplexity, expected.referencePerplexity, 1e-3, 'reference perplexity');
  close(actual.perplexityRatio, expected.perplexity / expected.referencePerplexity, 2e-3, 'perplexity ratio');
}

describe('compareToReference', function () {
  const FIXTURES = ['tiny-gqa-bf16', 'tiny-sharded', 'tiny-f16'];
  const { dirs, models, references } = useFixtureModels(FIXTURES, CONTEXT_LENGTH);
  let scratch: string;
  let perturbedDir: string;
  let flatterDir: string;
  let perturbed: LayerSkipModel;
  let flatter: LayerSkipModel;
  let secondLoad: LayerSkipModel;
  // 150 tokens: windows of 100 (two logits chunks) and 50.
  const tokens = tokenSequence(150, 512, 71);

  before(async function () {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-reference-eval-'));
    perturbedDir = path.join(scratch, 'perturbed');
    writePerturbedCopy(dirs['tiny-gqa-bf16'], perturbedDir, 0.03);
    perturbed = await loadModel(perturbedDir, { threads: 1, contextLength: CONTEXT_LENGTH });
    // Halving the LM head halves every logit: the same argmaxes, flatter distributions (temperature 2).
    flatterDir = path.join(scratch, 'flatter');
    writeChangedCopy(dirs['tiny-gqa-bf16'], flatterDir, (tensor) => {
      if (tensor.name === 'lm_head.weight') tensor.data.forEach((value, i) => (tensor.data[i] = value / 2));
    });
    flatter = await loadModel(flatterDir, { threads: 1, contextLength: CONTEXT_LENGTH });
    secondLoad = await loadModel(dirs['tiny-gqa-bf16'], { threads: 1, contextLength: CONTEXT_LENGTH });
  });
  after(async function () {
    await perturbed?.dispose();
    await flatter?.dispose();
    await secondLoad?.dispose();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('a model against a second load of itself: KL 0, every argmax agrees, equal perplexities', async function () {
    const progress: number[] = [];
    const result = await compareToReference(models['tiny-gqa-bf16'], secondLoad, Int32Array.from(tokens), {
      window: 100,
      onProgress: (done) => progress.push(done),
    });
    assert.deepEqual(progress, [100, 150]);
    assert.equal(result.predictions, 99 + 49);
    assert.ok(result.maxKl < 1e-9, `max KL ${result.maxKl}`);
    assert.equal(result.meanKl, 0);
    assert.deepEqual([result.top1Matches, result.top1Agreement], [148, 1]);
    assert.equal(result.perplexity, result.referencePerplexity);
    assert.equal(result.perplexityRatio, 1);
  });

  it('against a perturbed copy: KL > 0 and every statistic equals the TS reference computation', async function () {
    assert.ok(100 > LOGIT_ROWS_PER_CHUNK, 'the first window spans two logits chunks');
    const result = await compareToReference(perturbed, models['tiny-gqa-bf16'], Int32Array.from(tokens), { window: 100 });
    const expected = independentComparison(loadReference(perturbedDir), references['tiny-gqa-bf16'], tokens, 100);
    assertMatchesIndependent(result, expected);
    assert.ok(result.meanKl > 1e-4 && result.meanKl < 0.5, `a perturbation's KL is small but not 0: ${result.meanKl}`);
    assert.ok(result.top1Agreement > 0.5 && result.top1Agreement < 1, `top-1 agreement ${result.top1Agreement}`);
    // The model's perplexity is the one evaluateExitLayers reports at full depth on the same windows.
    const rows = await evaluateExitLayers(perturbed, Int32Array.from(tokens), { window: 100 });
    close(result.perplexity, rows.at(-1)!.perplexity, 1e-9, 'perplexity vs evaluateExitLayers');
  });

  it('against a different checkpoint of the same vocabulary: large KL, equal to the TS reference computation', async function () {
    const result = await compareToReference(models['tiny-sharded'], models['tiny-gqa-bf16'], Int32Array.from(tokens), { window: 40, maxTokens: 90 });
    assertMatchesIndependent(result, independentComparison(references['tiny-sharded'], references['tiny-gqa-bf16'], tokens.slice(0, 90), 40));
    assert.ok(result.meanKl > 1, `unrelated random models disagree widely: ${result.meanKl}`);
  });

  it('KL is KL(reference ‖ model), not the reverse: a flatter model scores another KL than a flatter reference', async function () {
    const stream = Int32Array.from(tokens);
    const flatterModel = await compareToReference(flatter, models['tiny-gqa-bf16'], stream, { window: 100 });
    const flatterReference = await compareToReference(models['tiny-gqa-bf16'], flatter, stream, { window: 100 });
    const flatterReferenceModel = loadReference(flatterDir);
    assertMatchesIndependent(flatterModel, independentComparison(flatterReferenceModel, references['tiny-gqa-bf16'], tokens, 100));
    assertMatchesIndependent(flatterReference, independentComparison(references['tiny-gqa-bf16'], flatterReferenceModel, tokens, 100));
    assert.ok(Math.abs(flatterModel.meanKl - flatterReference.meanKl) > 0.2 * flatterModel.meanKl, `${flatterModel.meanKl} vs ${flatterReference.meanKl}`);
    assert.equal(flatterModel.top1Agreement, 1);
  });

  it('comparePrediction: KL of known distributions, lowest-id argmax, NLLs', function () {
    const model = Float32Array.of(0, Math.log(3), 0); // p = (0.2, 0.6, 0.2)
    const reference = Float32Array.of(Math.log(2), Math.log(2), 0); // p = (0.4, 0.4, 0.2)
    const compared = comparePrediction(model, reference, 2);
    close(compared.kl, 0.4 * Math.log(0.4 / 0.2) + 0.4 * Math.log(0.4 / 0.6), 1e-6, 'KL');
    assert.equal(compared.sameTop1, false); // reference ties 0 and 1: the lowest id, 0, is its argmax
    close(compared.nll, -Math.log(0.2), 1e-6, 'nll');
    close(compared.referenceNll, -Math.log(0.2), 1e-6, 'reference nll');
    assert.equal(comparePrediction(model, model, 0).kl, 0);
  });

  it('leaves both models ready to generate, and waits for a generation in progress', async function () {
    const model = models['tiny-gqa-bf16'];
    const prompt = tokenSequence(6, 512, 72);
    const expected = referenceGreedy(references['tiny-gqa-bf16'], prompt, 6);
    await model.generate(prompt, { maxSteps: 3, stopTokenIds: [] }); // a cached prompt the comparison overwrites
    const running = model.generate(prompt, { maxSteps: 6, stopTokenIds: [] });
    const comparison = compareToReference(model, secondLoad, Int32Array.from(tokens), { window: 30 });
    const queued = secondLoad.generate(prompt, { maxSteps: 6, stopTokenIds: [] });
    assert.deepEqual((await running).tokenIds, expected);
    assert.equal((await comparison).maxKl, 0);
    assert.deepEqual((await queued).tokenIds, expected);
    assert.deepEqual((await model.generate(prompt, { maxSteps: 6, stopTokenIds: [] })).tokenIds, expected);
  });

  it('refuses the same model object, another vocabulary, and a window either context cannot hold', async function () {
    const model = models['tiny-gqa-bf16'];
    const stream = Int32Array.from(tokens);
    await assert.rejects(compareToReference(model, model, stream), /reference must be a separately loaded model/);
    await assert.rejects(
      compareToReference(model, models['tiny-f16'], stream),
      (error: Error) => error.message.includes(dirs['tiny-gqa-bf16']) && error.message.includes(dirs['tiny-f16']) && /vocab_size 512 vs 384/.test(error.message),
    );
    await assert.rejects(compareToReference(model, secondLoad, stream, { window: CONTEXT_LENGTH + 2 }), /window must be an integer in \[2, 129\]/);
    await assert.rejects(compareToReference(model, secondLoad, Int32Array.of(1)), /at least 2 tokens/);
  });
});

describe('layerskip eval --reference', function () {
  let modelDir: string;
  let scratch: string;
  let perturbedDir: string;
  let dataFile: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama2'])['tok-llama2'];
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-eval-reference-'));
    perturbedDir = path.join(scratch, 'tok-llama2-perturbed');
    writePerturbedCopy(modelDir, perturbedDir, 0.3);
    dataFile = path.join(scratch, 'text.txt');
    fs.writeFileSync(dataFile, 'The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.\n');
  });
  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });


  it('prints the exit-layer table, then the vs-reference block', function () {
    const run = layerskip(['eval', '--model', perturbedDir, '--data', dataFile, '--window', '16', '--timing', 'False', '--reference', modelDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /exit layer +accuracy +perplexity +agreement w\/ last layer/);
    const block = run.stdout.slice(run.stdout.indexOf('vs reference'));
    assert.match(block, new RegExp(`^vs reference ${modelDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(same (\\d+) predictions, full depth\\):\n`));
    const kl = /KL\(reference \|\| model\) +mean ([\d.]+) +median ([\d.]+) +p99 ([\d.]+) +max ([\d.]+)/.exec(block);
    assert.ok(kl, block);
    const [mean, median, p99, max] = kl.slice(1).map(Number);
    assert.ok(mean > 0 && median <= p99 && p99 <= max && mean <= max, block);
    assert.match(block, /top-1 agreement +[\d.]+% \(\d+\/\d+\)/);
    assert.match(block, /perplexity +[\d.]+ vs reference [\d.]+ \(ratio [\d.]+\)/);
  });

  it('--json holds the comparison; the model against itself scores KL 0', function () {
    const run = layerskip(['eval', '--model', modelDir, '--data', dataFile, '--json', '--timing', 'False', '--reference', modelDir]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.reference.dir, modelDir);
    assert.equal(result.reference.predictions, result.predictions);
    assert.deepEqual([result.reference.meanKl, result.reference.maxKl, result.reference.top1Agreement], [0, 0, 1]);
    assert.equal(result.reference.perplexity, result.layers.at(-1).perplexity);
    const without = JSON.parse(layerskip(['eval', '--model', modelDir, '--data', dataFile, '--json', '--timing', 'False']).stdout);
    assert.equal(without.reference, null);
  });

  it('rejects a reference with another vocabulary, naming both folders', function () {
    const { 'tok-llama3': llama3Dir, 'tok-llama2-meta': metaDir } = ensureFixtures(['tok-llama3', 'tok-llama2-meta']);
    const size = layerskip(['eval', '--model', modelDir, '--data', dataFile, '--reference', llama3Dir]);
    assert.equal(size.code, 2);
    assert.equal(
      size.stderr.trim(),
      `layerskip: --reference ${llama3Dir} and --model ${modelDir} have different vocabularies (vocab_size 32000 vs 128256); ` +
        'the comparison needs the same token ids',
    );
    // Same vocab_size, but the two Llama 2 tokenizer builds number their merges differently.
    const tokens = layerskip(['eval', '--model', modelDir, '--data', dataFile, '--reference', metaDir]);
    assert.equal(tokens.code, 2);
    assert.match(tokens.stderr, /have different vocabularies \(token \d+ is ".*" vs ".*"\)/);
    assert.ok(tokens.stderr.includes(metaDir) && tokens.stderr.includes(modelDir), tokens.stderr);
  });
});
