// Self-speculative speedup of a trained LayerSkip model on held-out code: for each model (the demo model and, to
// compare, the ablation trained without the recipe) the per-exit-layer table from `layerskip eval`, then greedy
// autoregressive vs self-speculative decoding from prompts cut from held-out files, at the recommended (E, k) and
// a few neighbours (and draftConfidence values): acceptance rate, tokens/s, speedup, and whether every generated
// token equals autoregressive decoding's.
//
//   npx tsx scripts/bench-demo.ts --data-root DIR [--model models/default] [--compare DIR] [--threads N]
//        [--tokens N] [--prompts N] [--repeats N] [--json]
// The held-out files are the model folder's held_out_files.txt, relative to --data-root (the corpus root).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { evaluateExitLayers, headCostRatio, measurePassCosts, recommendExitLayer } from '../lib/eval/exit-layer-eval.js';
import { median } from '../lib/benchmark.js';
import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { listCorpusFiles, tokenizeCorpus } from '../lib/training/corpus.js';

interface Config { exitLayer: number; numSpeculations: number; draftConfidence?: number }

/** Prompts: the first `length` tokens of each held-out file (BOS included), up to `count` files. */
function heldOutPrompts(model: LayerSkipModel, files: string[], count: number, length: number): number[][] {
  const prompts: number[][] = [];
  for (const file of files) {
    const ids = model.encode(fs.readFileSync(file, 'utf8'));
    if (ids.length >= length + 16) prompts.push(ids.slice(0, length));
    if (prompts.length === count) break;
  }
  return prompts;
}

/** Greedy decoding of every prompt; decode tokens/s over all prompts (median of repeats) and the token ids. */
async function decodeAll(model: LayerSkipModel, prompts: number[][], tokens: number, repeats: number, config?: Config) {
  const rates: number[] = [];
  let ids: number[][] = [];
  let drafted = 0, accepted = 0;
  for (let r = 0; r < repeats; r++) {
    let decodeMs = 0, decoded = 0;
    ids = [];
    drafted = accepted = 0;
    for (const prompt of prompts) {
      const result = await model.generate(prompt, {
        maxSteps: tokens, stopTokenIds: [],
        ...(config ? { generationStrategy: 'self_speculative', ...config } : {}),
      });
      decodeMs += result.stats.decodeMs;
      decoded += result.stats.generatedTokens - 1;
      drafted += result.stats.drafted;
      accepted += result.stats.accepted;
      ids.push(result.tokenIds);
    }
    rates.push(decoded / (decodeMs / 1000));
  }
  return { tokS: median(rates), ids, acceptanceRate: drafted ? accepted / drafted : 0 };
}

async function benchModel(dir: string, dataRoot: string, values: Record<string, string | boolean | undefined>) {
  const threads = Number(values.threads), tokens = Number(values.tokens), repeats = Number(values.repeats);
  const heldOut = fs.readFileSync(path.join(dir, 'held_out_files.txt'), 'utf8').split('\n').filter(Boolean)
    .map((file) => path.join(dataRoot, file));
  const model = await loadModel(dir, { threads });
  try {
    const stream = tokenizeCorpus(model.tokenizer!, listCorpusFiles(heldOut)).tokens;
    const rows = await evaluateExitLayers(model, stream, { window: 256 });
    const recommended = recommendExitLayer(rows, model.info.numLayers, headCostRatio(model.info), await measurePassCosts(model));
    const prompts = heldOutPrompts(model, heldOut, Number(values.prompts), 48);
    await decodeAll(model, prompts.slice(0, 1), 8, 1); // warm up
    const baseline = await decodeAll(model, prompts, tokens, repeats);
    const configs: Config[] = [];
    if (recommended) {
      const { exitLayer: e, numSpeculations: k } = recommended;
      const neighbours = [[e, k], [e, Math.max(1, k - 2)], [e, k + 2], [e + 1, k], [Math.max(1, e - 1), k], [e, 4], [4, 4]];
      for (const [exitLayer, numSpeculations] of neighbours) {
        if (exitLayer < model.info.numLayers && !configs.some((c) => c.exitLayer === exitLayer && c.numSpeculations === numSpeculations)) {
          configs.push({ exitLayer, numSpeculations });
        }
      }
      // Adaptive drafting: a long draft budget cut short when the draft's top probability falls below the threshold.
      for (const draftConfidence of [0.3, 0.5, 0.7]) configs.push({ exitLayer: e, numSpeculations: Math.max(6, k + 2), draftConfidence });
    }
    const results = [];
    for (const config of configs) {
      const run = await decodeAll(model, prompts, tokens, repeats, config);
      results.push({
        ...config, acceptanceRate: run.acceptanceRate, tokS: run.tokS, speedup: run.tokS / baseline.tokS,
        identical: JSON.stringify(run.ids) === JSON.stringify(baseline.ids),
      });
    }
    return { dir, rows, recommended, prompts: prompts.length, autoregressiveTokS: baseline.tokS, results };
  } finally {
    await model.dispose();
  }
}

function formatModel(report: Awaited<ReturnType<typeof benchModel>>): string {
  const table = report.rows.map((r) =>
    `| ${r.exitLayer} | ${(100 * r.accuracy).toFixed(1)}% | ${r.perplexity.toFixed(2)} | ${(100 * r.agreement).toFixed(1)}% |`).join('\n');
  const rec = report.recommended;
  const runs = report.results.map((r) =>
    `| ${r.exitLayer} | ${r.numSpeculations} | ${r.draftConfidence ?? '–'} | ${(100 * r.acceptanceRate).toFixed(1)}% | ${r.tokS.toFixed(1)} | ${r.speedup.toFixed(2)}× | ${r.identical ? 'yes' : 'NO'} |`).join('\n');
  return `### ${report.dir}\n\n| exit layer | accuracy | perplexity | agreement w/ last |\n|---|---|---|---|\n${table}\n\n` +
    (rec ? `recommended: E = ${rec.exitLayer}, k = ${rec.numSpeculations} (predicted ${rec.predictedSpeedup.toFixed(2)}×)\n\n` : 'no exit layer is predicted to beat autoregressive decoding\n\n') +
    `autoregressive: ${report.autoregressiveTokS.toFixed(1)} tok/s over ${report.prompts} held-out prompts\n\n` +
    `| E | k | draftConfidence | acceptance | tok/s | speedup | identical to AR |\n|---|---|---|---|---|---|---|\n${runs}\n`;
}

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    compare: { type: 'string' },
    'data-root': { type: 'string' },
    threads: { type: 'string', default: String(os.cpus().length) },
    tokens: { type: 'string', default: '128' },
    prompts: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
if (!values['data-root']) throw new Error('--data-root is required: the corpus folder the held-out paths are relative to');
const reports = [];
for (const dir of [values.model!, values.compare].filter((d): d is string => Boolean(d))) {
  reports.push(await benchModel(dir, values['data-root'], values));
}
if (values.json) {
  process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
} else {
  process.stdout.write(`Greedy decoding, ${values.tokens} tokens per prompt, median of ${values.repeats}, ${values.threads} threads, ` +
    `${os.cpus()[0]?.model ?? 'cpu'}, ${new Date().toISOString().slice(0, 10)}\n\n${reports.map(formatModel).join('\n')}`);
}
