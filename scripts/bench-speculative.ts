// Self-speculative decoding benchmark. Writes (once, cached outside the repo) random bf16 models whose layers
// ≥ L/4 have o_proj/down_proj scaled by a small factor, so early exit agrees with the full model at a controllable
// rate, then for a few (E, k) measures: acceptance rate, decode tokens/s, speedup over autoregressive decoding,
// and the speedup predicted from the acceptance rate and the isolated draft-pass / verify-step / plain-token
// times — predicted = (1 + k·acceptance) · t_token / (k · t_draft + t_verify(k)). Greedy output must be identical
// to autoregressive output. Also: the cost breakdown of a draft pass (layers [0, E) vs final norm + LM head) and
// the peak RSS of each strategy, each in its own process.
//
// With --weights q8|q4 the models are quantized while loading; --draft-heads none,q4 measures each configuration
// once per listed draft head (a quantized copy of the LM head used only for proposals; output is unchanged).
//
//   npx tsx scripts/bench-speculative.ts [--suite mid|1b|all] [--only NAME-PART] [--threads N] [--repeats N]
//                                        [--tokens N] [--weights q8|q4] [--draft-heads none,q8,q4] [--json]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { median } from '../lib/benchmark.js';
import { loadModel, quantizeModel, type LayerSkipModel, type QuantType } from '../lib/index.js';
import { loadNativeBinding, type NativeContext } from '../lib/native.js';
import { type CheckpointSpec, LLAMA_3_2_1B_SHAPE, writeCheckpoint } from '../test/fixtures/checkpoint-writer.js';

const PROMPT = [1, 791, 4062, 14198, 29935, 25308, 927, 279, 16053, 5679, 13, 578, 5679, 374, 1633, 16053];

interface BenchModel {
  name: string;
  spec: CheckpointSpec;
  configs: { exitLayer: number; numSpeculations: number; draftConfidence?: number }[];
}

// A mid-size model (~130 MB of weights per token, so decoding is memory-bound like real checkpoints) at two
// late-layer scales, and the Llama-3.2-1B shape (16 layers, hidden 2048, 32/8 heads, FFN 8192, 128256-token untied head).
const MID_SHAPE = {
  vocabSize: 32000, hiddenSize: 512, intermediateSize: 1536, numLayers: 16, numHeads: 8, numKvHeads: 2,
  tieWordEmbeddings: false, dtype: 'BF16', seed: 91, maxPositionEmbeddings: 4096, lmHeadStd: 0.1,
} as const;
const BENCH_1B_MODEL = { ...LLAMA_3_2_1B_SHAPE, tieWordEmbeddings: false, dtype: 'BF16', seed: 2024 } as const;

const SUITES: Record<string, BenchModel[]> = {
  mid: [
    {
      name: 'mid-16L-late0.02',
      spec: { ...MID_SHAPE, scaleLateLayers: { fromLayer: 4, factor: 0.02 } },
      configs: [{ exitLayer: 4, numSpeculations: 4 }, { exitLayer: 4, numSpeculations: 8 }, { exitLayer: 8, numSpeculations: 4 }],
    },
    {
      name: 'mid-16L-late0.1',
      spec: { ...MID_SHAPE, scaleLateLayers: { fromLayer: 4, factor: 0.1 } },
      configs: [
        { exitLayer: 4, numSpeculations: 4 },
        { exitLayer: 4, numSpeculations: 4, draftConfidence: 0.1 },
        { exitLayer: 4, numSpeculations: 4, draftConfidence: 0.3 },
        { exitLayer: 8, numSpeculations: 4 },
        { exitLayer: 8, numSpeculations: 4, draftConfidence: 0.1 },
      ],
    },
  ],
  '1b': [
    {
      name: 'llama-3.2-1b-shape-late0.02',
      spec: { ...BENCH_1B_MODEL, scaleLateLayers: { fromLayer: 4, factor: 0.02 } },
      configs: [{ exitLayer: 4, numSpeculations: 4 }],
    },
    {
      name: 'llama-3.2-1b-shape-late0.005',
      spec: { ...BENCH_1B_MODEL, scaleLateLayers: { fromLayer: 4, factor: 0.005 } },
      configs: [{ exitLayer: 4, numSpeculations: 4 }, { exitLayer: 4, numSpeculations: 6 }, { exitLayer: 4, numSpeculations: 8 }],
    },
    {
      name: 'llama-3.2-1b-shape-late0.001',
      spec: { ...BENCH_1B_MODEL, scaleLateLayers: { fromLayer: 4, factor: 0.001 } },
      configs: [{ exitLayer: 4, numSpeculations: 4 }, { exitLayer: 4, numSpeculations: 6 }],
    },
  ],
};
SUITES.all = [...SUITES.mid, ...SUITES['1b']];

function ensureModel(model: BenchModel): string {
  const root = process.env.LAYERSKIP_CACHE ?? path.join(os.homedir(), '.cache', 'layerskip');
  const dir = path.join(root, 'bench', model.name);
  const stamp = path.join(dir, '.spec.json');
  const spec = JSON.stringify(model.spec);
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === spec) return dir;
  process.stderr.write(`writing ${model.name} to ${dir} (once)…\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  writeCheckpoint(dir, model.spec);
  fs.writeFileSync(stamp, spec);
  return dir;
}

// The model quantized once by `layerskip quantize` into a sibling cache folder (rewritten when the source changes).
async function ensureQuantized(dir: string, type: QuantType): Promise<string> {
  const out = `${dir}-${type}`;
  const stamp = path.join(out, '.source-spec.json');
  const source = fs.readFileSync(path.join(dir, '.spec.json'), 'utf8');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === source) return out;
  fs.rmSync(out, { recursive: true, force: true });
  const report = await quantizeModel(dir, out, { type });
  process.stderr.write(`quantized ${dir} to ${type} in ${report.seconds.toFixed(1)} s\n`);
  fs.writeFileSync(stamp, source);
  return out;
}

async function medianMs(repeats: number, once: () => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) times.push(await once());
  return median(times);
}

// Isolated step costs on a raw context holding the prompt: one plain token, one draft pass (and its split into
// layers and head), one verify step over k drafts.
async function stepCosts(context: NativeContext, numLayers: number, exitLayer: number, numSpeculations: number) {
  await context.evaluate(Int32Array.from(PROMPT), { logitRows: 0 });
  const n = PROMPT.length;
  const timed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    const ms = performance.now() - started;
    context.truncate(n);
    return ms;
  };
  const repeats = 7;
  context.reserveSpeculation(numSpeculations);
  const token = await medianMs(repeats, () => timed(() => context.evaluate(Int32Array.of(1000), { layerEnd: numLayers })));
  const layersOnly = await medianMs(repeats, () => timed(() => context.evaluate(Int32Array.of(1000), { layerEnd: exitLayer, logitRows: 0 })));
  const draft = await medianMs(repeats, () => timed(() => context.draft(1000, { exitLayer })));
  const verify = await medianMs(repeats, async () => {
    let next = 1000;
    for (let i = 0; i < numSpeculations; i++) next = (await context.draft(next, { exitLayer })).token;
    return timed(() => context.verify(numSpeculations));
  });
  return { token, draft, draftLayers: layersOnly, draftHead: draft - layersOnly, verify };
}

interface Row {
  model: string;
  exitLayer: number;
  numSpeculations: number;
  draftConfidence: number;
  acceptanceRate: number;
  tokensPerStep: number;
  autoregressiveTokS: number;
  speculativeTokS: number;
  speedup: number;
  predictedSpeedup: number;
  measuredOverPredicted: number;
  identical: boolean;
  costs: Awaited<ReturnType<typeof stepCosts>>;
}

interface Measured {
  config: BenchModel['configs'][number];
  acceptanceRate: number;
  tokensPerStep: number;
  speculativeTokS: number;
  identical: boolean;
}

async function measureGeneration(model: LayerSkipModel, config: BenchModel['configs'][number], tokens: number, repeats: number, baselineIds: number[]): Promise<Measured> {
  const { exitLayer, numSpeculations, draftConfidence } = config;
  const runs = [];
  let ids: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const result = await model.generate(PROMPT, { maxSteps: tokens, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations, draftConfidence });
    ids = result.tokenIds;
    runs.push(result.stats);
  }
  const stats = runs[0];
  return {
    config,
    acceptanceRate: stats.acceptanceRate,
    tokensPerStep: (stats.generatedTokens - 1) / stats.verifySteps,
    speculativeTokS: median(runs.map((run) => run.decodeTokensPerSecond)),
    identical: JSON.stringify(ids) === JSON.stringify(baselineIds),
  };
}

function toRow(name: string, measured: Measured, autoregressiveTokS: number, costs: Row['costs']): Row {
  const { exitLayer, numSpeculations } = measured.config;
  const predictedSpeedup = ((1 + numSpeculations * measured.acceptanceRate) * costs.token) / (numSpeculations * costs.draft + costs.verify);
  const speedup = measured.speculativeTokS / autoregressiveTokS;
  return {
    model: name, exitLayer, numSpeculations, draftConfidence: measured.config.draftConfidence ?? 0,
    acceptanceRate: measured.acceptanceRate, tokensPerStep: measured.tokensPerStep,
    autoregressiveTokS, speculativeTokS: measured.speculativeTokS, speedup, predictedSpeedup,
    measuredOverPredicted: speedup / predictedSpeedup, identical: measured.identical, costs,
  };
}

// Peak RSS of one generation in a fresh process (this script re-run with --memory-probe).
function peakRss(dir: string, threads: number, tokens: number, strategy: string, exitLayer: number, numSpeculations: number, weights?: string): number {
  const script = fileURLToPath(import.meta.url);
  const probe = spawnSync(process.execPath, ['--import', 'tsx', script, '--memory-probe', dir, '--threads', String(threads), '--tokens', String(tokens), '--strategy', strategy, '--exit-layer', String(exitLayer), '--num-speculations', String(numSpeculations), ...(weights ? ['--weights', weights] : [])], { encoding: 'utf8', env: process.env });
  const match = /maxRSS (\d+)/.exec(probe.stdout);
  if (!match) throw new Error(`memory probe failed: ${probe.stderr}`);
  return Number(match[1]) * 1024;
}

async function memoryProbe(values: Record<string, string | boolean | undefined>): Promise<void> {
  const model = await loadModel(values['memory-probe'] as string, {
    threads: Number(values.threads), contextLength: 1024, weights: values.weights as QuantType | undefined,
  });
  await model.generate(PROMPT, {
    maxSteps: Number(values.tokens), stopTokenIds: [], generationStrategy: values.strategy as 'autoregressive' | 'self_speculative',
    exitLayer: Number(values['exit-layer']), numSpeculations: Number(values['num-speculations']),
  });
  process.stdout.write(`maxRSS ${process.resourceUsage().maxRSS}\n`);
  await model.dispose();
}

function formatRows(rows: Row[]): string {
  const header = '| model | E | k | conf | accept | tok/step | AR tok/s | spec tok/s | speedup | predicted | meas/pred | identical | t_token | t_draft (layers + head) | t_verify |';
  const rule = '|' + '---|'.repeat(15);
  const lines = rows.map((r) =>
    `| ${r.model} | ${r.exitLayer} | ${r.numSpeculations} | ${r.draftConfidence || '–'} | ${(r.acceptanceRate * 100).toFixed(1)}% | ` +
    `${r.tokensPerStep.toFixed(2)} | ${r.autoregressiveTokS.toFixed(1)} | ${r.speculativeTokS.toFixed(1)} | ${r.speedup.toFixed(2)}× | ` +
    `${r.predictedSpeedup.toFixed(2)}× | ${(r.measuredOverPredicted * 100).toFixed(0)}% | ${r.identical ? 'yes' : 'NO'} | ` +
    `${r.costs.token.toFixed(1)} ms | ${r.costs.draft.toFixed(1)} ms (${r.costs.draftLayers.toFixed(1)} + ${r.costs.draftHead.toFixed(1)}) | ${r.costs.verify.toFixed(1)} ms |`,
  );
  return [header, rule, ...lines].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      suite: { type: 'string', default: 'mid' },
      only: { type: 'string' },
      threads: { type: 'string', default: String(os.cpus().length) },
      repeats: { type: 'string', default: '3' },
      tokens: { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
      'memory-probe': { type: 'string' },
      strategy: { type: 'string' },
      'exit-layer': { type: 'string' },
      'num-speculations': { type: 'string' },
      weights: { type: 'string' },
      'draft-heads': { type: 'string', default: 'none' },
    },
  });
  if (values['memory-probe']) return memoryProbe(values);
  const suite = SUITES[values.suite]?.filter((model) => !values.only || model.name.includes(values.only));
  if (!suite) throw new Error(`--suite must be one of ${Object.keys(SUITES).join(', ')}`);
  if (suite.length === 0) throw new Error(`--only ${values.only} matches no model of suite ${values.suite}`);
  const threads = Number(values.threads);
  const repeats = Number(values.repeats);
  const tokens = Number(values.tokens);
  const weights = values.weights as QuantType | undefined;
  if (weights !== undefined && weights !== 'q8' && weights !== 'q4') throw new Error('--weights must be q8 or q4');
  const draftHeads = values['draft-heads'].split(',').map((head) => (head === 'none' ? undefined : (head as QuantType)));
  const rows: Row[] = [];
  const memory: string[] = [];
  for (const benchModel of suite) {
    const dir = weights ? await ensureQuantized(ensureModel(benchModel), weights) : ensureModel(benchModel);
    for (const draftHead of draftHeads) {
      const label = `${benchModel.name}${weights ? ` ${weights}` : ''}${draftHead ? ` +${draftHead} draft head` : ''}`;
      // Phase 1: whole generations. Phase 2 (after the model is disposed, so only one thread pool runs): isolated
      // step costs on a raw context.
      const model = await loadModel(dir, { threads, contextLength: 1024, draftHead });
      let autoregressiveTokS = 0;
      const measured: Measured[] = [];
      try {
        await model.generate(PROMPT, { maxSteps: 4, stopTokenIds: [] }); // warm the page cache and the thread pool
        const autoregressive = [];
        let ids: number[] = [];
        for (let i = 0; i < repeats; i++) {
          const result = await model.generate(PROMPT, { maxSteps: tokens, stopTokenIds: [] });
          autoregressive.push(result.stats.decodeTokensPerSecond);
          ids = result.tokenIds;
        }
        autoregressiveTokS = median(autoregressive);
        for (const config of benchModel.configs) measured.push(await measureGeneration(model, config, tokens, repeats, ids));
      } finally {
        await model.dispose();
      }
      const native = await loadNativeBinding().NativeModel.load(dir, { device: 'cpu', threads, draftHead: draftHead ?? '' });
      try {
        for (const result of measured) {
          const context = native.createContext({ contextLength: 1024 });
          const costs = await stepCosts(context, benchModel.spec.numLayers, result.config.exitLayer, result.config.numSpeculations);
          context.dispose();
          const row = toRow(label, result, autoregressiveTokS, costs);
          rows.push(row);
          process.stderr.write(formatRows([row]).split('\n').at(-1) + '\n');
        }
      } finally {
        native.dispose();
      }
    }
    const { exitLayer, numSpeculations } = benchModel.configs[0];
    const rssAr = peakRss(dir, threads, 16, 'autoregressive', benchModel.spec.numLayers, numSpeculations);
    const rssSpec = peakRss(dir, threads, 16, 'self_speculative', exitLayer, numSpeculations);
    const exitCacheBytes = (numSpeculations + 1) * benchModel.spec.hiddenSize * 4;
    memory.push(
      `| ${benchModel.name} | ${(rssAr / 2 ** 20).toFixed(1)} MiB | ${(rssSpec / 2 ** 20).toFixed(1)} MiB (E=${exitLayer}, k=${numSpeculations}) | ` +
        `${((rssSpec - rssAr) / 2 ** 20).toFixed(1)} MiB | ${(exitCacheBytes / 1024).toFixed(1)} KiB |`,
    );
  }
  if (values.json) {
    process.stdout.write(JSON.stringify({ rows, memory }, null, 2) + '\n');
    return;
  }
  const date = new Date().toISOString().slice(0, 10);
  process.stdout.write(
    `Self-speculative decoding, greedy, ${weights ?? 'stored'} weights, ${tokens} generated tokens, median of ${repeats}, ${threads} threads, ${os.cpus()[0]?.model ?? 'cpu'}, ${date}\n\n` +
      formatRows(rows) +
      '\n\nPeak RSS (one 16-token generation per process; weights are mmapped):\n\n' +
      '| model | autoregressive | self-speculative | difference | exit cache |\n|---|---|---|---|---|\n' +
      memory.join('\n') + '\n',
  );
}

await main();
