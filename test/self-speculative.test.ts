// Self-speculative decoding against autoregressive decoding on the same engine: greedy outputs are token-for-token
// identical for every exit layer / draft length, the rollback and bonus-token paths are both exercised, stops
// inside an accepted block leave the cache exactly as autoregressive decoding does, and seeded speculative
// sampling draws from the autoregressive distribution (chi-square).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runGeneration, type GenerationResult } from '../lib/generation/generate.js';
import { resolveOptions, type GenerationOptions } from '../lib/generation/options.js';
import { Sequence } from '../lib/generation/sequence.js';
import type { NativeContext, NativeModel } from '../lib/native.js';
import { type CheckpointSpec, writeCheckpoint } from './fixtures/checkpoint-writer.js';
import { SpeculativeStreamer } from '../lib/cli/speculative-streamer.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { loadNative, tokenSequence } from './helpers/native.js';
import { chiSquare, seededGenerations } from './helpers/statistics.js';
import { runLayerskip as layerskip } from './helpers/cli.js';

const CONTEXT_LENGTH = 512;

// A model whose first layer barely moves the (large, tied) embedding, so exiting after it drafts "repeat the
// input token", while 30×-scaled later layers decide something else: with this seed and prompt every draft is
// rejected (checked below, not assumed).
const ALWAYS_REJECT: CheckpointSpec = {
  vocabSize: 512, hiddenSize: 64, intermediateSize: 128, numLayers: 3, numHeads: 4, numKvHeads: 2,
  tieWordEmbeddings: true, dtype: 'F32', seed: 13, weightStd: 0.16, qkStd: 0.25, embedStd: 2.0, normNoise: 0.1,
  scaleLateLayers: { fromLayer: 1, factor: 30 },
};
const ALWAYS_REJECT_PROMPT = [1, 17, 300, 42, 9];

function writeAlwaysRejectModel(): string {
  const hash = crypto.createHash('sha256').update(JSON.stringify(ALWAYS_REJECT)).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `layerskip-always-reject-${hash}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) writeCheckpoint(dir, ALWAYS_REJECT);
  return dir;
}

interface Run {
  result: GenerationResult;
  sequence: Sequence;
  context: NativeContext;
}

// One generation on a fresh context, keeping the context so tests can look at the cache afterwards.
async function generate(native: NativeModel, prompt: number[], options: GenerationOptions): Promise<Run> {
  const info = native.info();
  const context = native.createContext({ contextLength: CONTEXT_LENGTH });
  const sequence = new Sequence(context, CONTEXT_LENGTH, info.numLayers);
  const resolved = resolveOptions({ stopTokenIds: [], ...options }, { numLayers: info.numLayers, vocabSize: info.vocabSize, eosTokenIds: [] });
  const result = await runGeneration({ sequence, promptIds: prompt, options: resolved, device: 'cpu' });
  return { result, sequence, context };
}

async function tokens(native: NativeModel, prompt: number[], options: GenerationOptions): Promise<GenerationResult> {
  const info = native.info();
  const context = native.createContext({ contextLength: CONTEXT_LENGTH });
  try {
    const sequence = new Sequence(context, CONTEXT_LENGTH, info.numLayers);
    const resolved = resolveOptions({ stopTokenIds: [], ...options }, { numLayers: info.numLayers, vocabSize: info.vocabSize, eosTokenIds: [] });
    return await runGeneration({ sequence, promptIds: prompt, options: resolved, device: 'cpu' });
  } finally {
    context.dispose();
  }
}

function layerLengths(context: NativeContext, numLayers: number): number[] {
  return Array.from({ length: numLayers }, (_, layer) => context.layerLength(layer));
}

// The exit layers the issue asks for — 1, L/4, L/2, L − 1 — that exist for L layers.
function exitLayersFor(numLayers: number): number[] {
  const candidates = [1, Math.floor(numLayers / 4), Math.floor(numLayers / 2), numLayers - 1];
  return [...new Set(candidates.filter((layer) => layer >= 1 && layer < numLayers))];
}

describe('self-speculative decoding', function () {
  const MODELS = ['tiny-deep', 'tiny-gqa-bf16', 'tiny-llama3-rope', 'tiny-f16'];
  const natives: Record<string, NativeModel> = {};
  before(async function () {
    const dirs = ensureFixtures(MODELS);
    for (const name of MODELS) natives[name] = await loadNative(dirs[name], 1);
    natives['always-reject'] = await loadNative(writeAlwaysRejectModel(), 1);
  });
  after(function () {
    for (const native of Object.values(natives)) native.dispose();
  });

  describe('greedy output equals autoregressive output token for token', function () {
    for (const name of MODELS) {
      it(`${name}: E ∈ {1, L/4, L/2, L−1}, k ∈ {1, 3, 8}, 160 tokens, two prompts`, async function () {
        const native = natives[name];
        const { numLayers, vocabSize } = native.info();
        let rejected = 0;
        for (const prompt of [tokenSequence(6, vocabSize, 21), tokenSequence(17, vocabSize, 22)]) {
          const expected = await tokens(native, prompt, { maxSteps: 160 });
          for (const exitLayer of exitLayersFor(numLayers)) {
            for (const numSpeculations of [1, 3, 8]) {
              const { tokenIds, stats } = await tokens(native, prompt, {
                maxSteps: 160, generationStrategy: 'self_speculative', exitLayer, numSpeculations,
              });
              assert.deepEqual(tokenIds, expected.tokenIds, `E=${exitLayer} k=${numSpeculations}`);
              assert.ok(stats.drafted > stats.accepted, `E=${exitLayer} k=${numSpeculations}: no draft was ever rejected`);
              rejected += stats.drafted - stats.accepted;
            }
          }
        }
        assert.ok(rejected > 200, `only ${rejected} rejections crossed`);
      });
    }
  });

  it('E = L: every draft is accepted and every full step ends with the bonus token', async function () {
    const native = natives['tiny-deep'];
    const prompt = tokenSequence(5, 512, 23);
    const expected = await tokens(native, prompt, { maxSteps: 100 });
    for (const numSpeculations of [1, 3, 8]) {
      const { tokenIds, stats } = await tokens(native, prompt, {
        maxSteps: 100, generationStrategy: 'self_speculative', exitLayer: 8, numSpeculations,
      });
      assert.deepEqual(tokenIds, expected.tokenIds);
      assert.equal(stats.acceptanceRate, 1);
      assert.equal(stats.accepted, stats.drafted);
      // 100 tokens: the first from prefill, then steps of k + 1 (k drafts + bonus); the last step is cut to fit.
      const fullSteps = Math.floor(99 / (numSpeculations + 1));
      assert.equal(stats.tokensPerVerifyStep[numSpeculations + 1], fullSteps, JSON.stringify(stats.tokensPerVerifyStep));
      assert.equal(stats.verifySteps, Math.ceil(99 / (numSpeculations + 1)));
    }
  });

  it('a model whose drafts are always rejected: every step rolls back to one token', async function () {
    const native = natives['always-reject'];
    const expected = await tokens(native, ALWAYS_REJECT_PROMPT, { maxSteps: 80 });
    for (const numSpeculations of [1, 3, 8]) {
      const run = await generate(native, ALWAYS_REJECT_PROMPT, {
        maxSteps: 80, generationStrategy: 'self_speculative', exitLayer: 1, numSpeculations,
      });
      const { tokenIds, stats } = run.result;
      assert.deepEqual(tokenIds, expected.tokenIds);
      assert.equal(stats.accepted, 0);
      // Step s (0 … 78) may still yield 79 − s tokens, so it drafts min(k, 78 − s).
      const drafted = Array.from({ length: 79 }, (_, step) => Math.min(numSpeculations, 78 - step)).reduce((a, b) => a + b);
      assert.equal(stats.drafted, drafted);
      assert.equal(stats.tokensPerVerifyStep[1], 79);
      assert.deepEqual(layerLengths(run.context, 3), [84, 84, 84]); // prompt 5 + 79 evaluated tokens
      run.context.dispose();
    }
  });

  it('layers below E run ahead while drafting and every layer holds the same length between steps', async function () {
    const native = natives['tiny-deep'];
    const context = native.createContext({ contextLength: CONTEXT_LENGTH });
    const sequence = new Sequence(context, CONTEXT_LENGTH, 8);
    const exitLayer = 3;
    let draftsThisStep = 0;
    let checked = 0;
    const options = resolveOptions(
      {
        maxSteps: 60, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations: 4,
        onSpeculation: (event) => {
          if (event.type === 'verify') {
            // After verify, before rollback: all layers hold x + every verified draft.
            const lengths = layerLengths(context, 8);
            assert.deepEqual(lengths, Array(8).fill(sequence.length + 1 + event.drafts.length));
            assert.equal(draftsThisStep, event.drafts.length);
            draftsThisStep = 0;
            return;
          }
          // The draft phase is one native call (draftRun): by its first draft event every pass of the step has run.
          draftsThisStep++;
          const below = context.layerLength(exitLayer - 1);
          const above = context.layerLength(exitLayer);
          assert.equal(above, sequence.length, 'layers ≥ E moved during drafting');
          assert.ok(below >= sequence.length + draftsThisStep, 'layers < E hold x + the step\'s draft passes');
          assert.equal(context.exitRows(), below - sequence.length);
          checked++;
        },
      },
      { numLayers: 8, vocabSize: 512, eosTokenIds: [] },
    );
    await runGeneration({ sequence, promptIds: tokenSequence(9, 512, 24), options, device: 'cpu' });
    assert.ok(checked > 40);
    assert.deepEqual(layerLengths(context, 8), Array(8).fill(sequence.length));
    assert.equal(context.exitRows(), 0);
    context.dispose();
  });

  describe('stops inside an accepted block', function () {
    // E = L accepts every draft, so blocks of k + 1 = 9 tokens; E = 4 mixes accepts and rejects.
    for (const exitLayer of [8, 4]) {
      it(`E=${exitLayer}: a stop token or maxSteps mid-block ends exactly where autoregressive decoding ends`, async function () {
        const native = natives['tiny-deep'];
        const prompt = tokenSequence(7, 512, 25);
        const free = await tokens(native, prompt, { maxSteps: 40 });
        const stopAt = free.tokenIds.findIndex((token, index) => index >= 5 && free.tokenIds.indexOf(token) === index);
        const cases: GenerationOptions[] = [
          { maxSteps: 40, stopTokenIds: [free.tokenIds[stopAt]] },
          { maxSteps: 7 },
          { maxSteps: 12 },
        ];
        for (const stopping of cases) {
          const autoregressive = await generate(native, prompt, stopping);
          const speculative = await generate(native, prompt, {
            ...stopping, generationStrategy: 'self_speculative', exitLayer, numSpeculations: 8,
          });
          const label = JSON.stringify(stopping);
          assert.deepEqual(speculative.result.tokenIds, autoregressive.result.tokenIds, label);
          assert.equal(speculative.result.finishReason, autoregressive.result.finishReason, label);
          assert.deepEqual(speculative.sequence.tokens, autoregressive.sequence.tokens, label);
          assert.deepEqual(layerLengths(speculative.context, 8), Array(8).fill(autoregressive.sequence.length), label);
          assert.equal(speculative.context.exitRows(), 0);

          // The cache is good to continue from: a longer prompt reusing it generates what a fresh context does.
          const continued = [...speculative.sequence.tokens, 3, 4];
          const sequence = speculative.sequence;
          const resolved = resolveOptions(
            { maxSteps: 20, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations: 3 },
            { numLayers: 8, vocabSize: 512, eosTokenIds: [] },
          );
          const reused = await runGeneration({ sequence, promptIds: continued, options: resolved, device: 'cpu' });
          assert.equal(reused.stats.reusedPromptTokens, continued.length - 2);
          const fresh = await tokens(native, continued, { maxSteps: 20 });
          assert.deepEqual(reused.tokenIds, fresh.tokenIds, label);
          autoregressive.context.dispose();
          speculative.context.dispose();
        }
      });
    }
  });

  it('draftConfidence stops drafting early and leaves the output unchanged', async function () {
    const native = natives['tiny-deep'];
    const prompt = tokenSequence(6, 512, 26);
    const expected = await tokens(native, prompt, { maxSteps: 80 });
    const base = { maxSteps: 80, generationStrategy: 'self_speculative', exitLayer: 4, numSpeculations: 6 } as const;
    const always = await tokens(native, prompt, base);
    const adaptive = await tokens(native, prompt, { ...base, draftConfidence: 0.5 });
    const never = await tokens(native, prompt, { ...base, draftConfidence: 1 });
    for (const run of [always, adaptive, never]) assert.deepEqual(run.tokenIds, expected.tokenIds);
    assert.ok(adaptive.stats.drafted < always.stats.drafted, `${adaptive.stats.drafted} vs ${always.stats.drafted}`);
    assert.ok(adaptive.stats.acceptanceRate > always.stats.acceptanceRate);
    assert.equal(never.stats.drafted, 0);
    assert.equal(never.stats.tokensPerVerifyStep[1], 79);
    await assert.rejects(tokens(native, prompt, { ...base, draftConfidence: 1.5 }), /draftConfidence must be in \[0, 1\]/);
  });

  it('sampling is reproducible for a seed', async function () {
    const native = natives['tiny-deep'];
    const options = {
      maxSteps: 40, sample: true, temperature: 1, seed: 77, generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 4,
    } as const;
    const first = await tokens(native, [1, 2, 3], options);
    const second = await tokens(native, [1, 2, 3], options);
    assert.deepEqual(first.tokenIds, second.tokenIds);
    assert.ok(first.stats.drafted > first.stats.accepted && first.stats.accepted > 0);
  });

  it('speculative sampling draws from the autoregressive distribution (chi-square, α = 0.001)', async function () {
    // Tokens 2–4 of each generation come from speculative steps (token 1 from prefill). Draft at E = 3 of
    // tiny-deep, whose early exit agrees with the full model about half the time, so both the acceptance test
    // and the residual draw matter. Two-sample chi-square per position: N runs of each strategy on disjoint seeds,
    // categories with fewer than 10 pooled observations merged. Power: the same test against early-exit sampling at
    // E = 3 — what an "always accept" rule produces — must reject (χ² ≈ 2300 against a critical value ≈ 97); so must one
    // for speculative runs at a 20 % lower temperature (χ² ≈ 215 against ≈ 64), a subtler shift than a wrong
    // residual or acceptance rule makes. Four tests at α = 0.001: a false alarm has probability ≤ 0.4 % (and the
    // seeds are fixed, so the outcome is reproducible).
    const native = natives['tiny-deep'];
    const runs = 2500;
    const prompt = [5, 77, 300];
    const sampling = { maxSteps: 4, sample: true, temperature: 1, topK: 12, topP: 1 } as const;
    const speculative = { generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 3 } as const;
    const collect = (options: GenerationOptions, seedBase: number) => seededGenerations(native, prompt, options, runs, seedBase);
    const autoregressive = await collect(sampling, 0);
    const selfSpeculative = await collect({ ...sampling, ...speculative }, 1_000_000);
    const earlyExit = await collect({ ...sampling, exitLayer: 3 }, 2_000_000);
    const cooler = await collect({ ...sampling, ...speculative, temperature: 0.8 }, 3_000_000);

    for (const position of [1, 2, 3]) {
      const column = (samples: number[][]) => samples.map((tokens) => tokens[position]);
      const same = chiSquare(column(autoregressive), column(selfSpeculative));
      assert.ok(same.statistic < same.critical, `token ${position + 1}: χ² = ${same.statistic.toFixed(1)} ≥ ${same.critical.toFixed(1)} (df ${same.df})`);
    }
    // Power checks on the pair (token 2, token 3), which every rule error shifts.
    const pair = (samples: number[][]) => samples.map((tokens) => tokens[1] * 512 + tokens[2]);
    const ok = chiSquare(pair(autoregressive), pair(selfSpeculative));
    assert.ok(ok.statistic < ok.critical, `pairs: χ² = ${ok.statistic.toFixed(1)} ≥ ${ok.critical.toFixed(1)}`);
    const wrongRule = chiSquare(pair(autoregressive), pair(earlyExit));
    assert.ok(wrongRule.statistic > wrongRule.critical, `always-accept not detected: χ² = ${wrongRule.statistic.toFixed(1)}`);
    const shifted = chiSquare(pair(autoregressive), pair(cooler));
    assert.ok(shifted.statistic > shifted.critical, `temperature shift not detected: χ² = ${shifted.statistic.toFixed(1)}`);
  });
});

describe('self-speculative CLI', function () {
  let modelDir: string;
  let promptsFile: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
    promptsFile = path.join(os.tmpdir(), `layerskip-prompts-${process.pid}.jsonl`);
    fs.writeFileSync(promptsFile, '{"prompt": "Hello world"}\n\n{"prompt": [128000, 9906, 1917]}\n{"prompt": "The quick brown fox"}\n');
  });
  after(function () {
    fs.rmSync(promptsFile, { force: true });
  });

  it('correctness: one ok line per prompt, an error count, exit code 0', function () {
    const run = layerskip(['correctness', '--model', modelDir, '--prompts', promptsFile, '--exit_layer', '1', '--num-speculations', '3', '--max-steps', '24']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /E = 1 of 2 layers, k = 3, 24 tokens per prompt/);
    assert.equal(run.stdout.match(/^prompt \d: ok \(24 tokens, [\d.]+% accepted\)$/gm)?.length, 3, run.stdout);
    assert.match(run.stdout, /^errors: 0 of 3 prompts/m);
  });

  it('correctness: a malformed prompts file names the line', function () {
    fs.writeFileSync(promptsFile + '.bad', '{"prompt": "ok"}\n{"text": "no prompt"}\n');
    const run = layerskip(['correctness', '--model', modelDir, '--prompts', promptsFile + '.bad']);
    fs.rmSync(promptsFile + '.bad');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\.bad:2: needs a "prompt" string or token-id array/);
  });

  it('generate --generation_strategy self_speculative prints the speculation stats', function () {
    const run = layerskip([
      'generate', '--model', modelDir, '--prompt', 'Hello', '--generation_strategy', 'self_speculative',
      '--exit_layer', '1', '--num_speculations', '3', '--max-steps', '12', '--streamer', 'speculative',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /\x1b/); // not a TTY: plain streaming
    assert.match(run.stderr, /\[speculation\] drafted \d+, accepted \d+ \([\d.]+%\), \d+ verify steps \(tokens per step [\d: ]+\)/);
    const bad = layerskip(['generate', '--model', modelDir, '--prompt', 'Hi', '--streamer', 'fancy']);
    assert.equal(bad.code, 2);
  });

  it('the speculative streamer shows drafts dimmed and erases them at the verdict', function () {
    const writes: string[] = [];
    const out = { columns: 12, write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
    const streamer = new SpeculativeStreamer(out, (ids) => ids.map((id) => `<${id}>`).join(''));
    streamer.write('Hi');
    streamer.onSpeculation({ type: 'draft', token: 1 });
    streamer.onSpeculation({ type: 'draft', token: 22 });
    streamer.onSpeculation({ type: 'draft', token: 333 });
    streamer.onSpeculation({ type: 'verify', drafts: [1, 22, 333], accepted: 1 });
    streamer.write('<1><5>');
    assert.deepEqual(writes, [
      'Hi',
      '\x1b7\x1b[2m<1>\x1b[0m',
      '\x1b8\x1b[J\x1b[2m<1><22>\x1b[0m',
      '\x1b8\x1b[J\x1b[2m<1><22><3\x1b[0m', // cut at the right margin: 12 − 2 − 1 columns
      '\x1b8\x1b[J',
      '<1><5>',
    ]);
    // A terminal that reports 0 columns still shows the drafts (as 80 wide), not empty overlays.
    const narrow: string[] = [];
    const zero = new SpeculativeStreamer({ columns: 0, write: (text: string) => narrow.push(text) } as unknown as NodeJS.WriteStream, (ids) => ids.map((id) => `<${id}>`).join(''));
    zero.onSpeculation({ type: 'draft', token: 7 });
    assert.deepEqual(narrow, ['\x1b7\x1b[2m<7>\x1b[0m']);
  });
});
