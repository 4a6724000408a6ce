// Continuous batching benchmark: aggregate decode throughput of N concurrent greedy streams on one BatchEngine,
// against one stream, on the Llama-3.2-1B-shaped checkpoint that bench-speculative.ts writes (late layers scaled
// to 0.02, so self-speculation at E 4 is accepted often). For each N, rounds are interleaved (1, 2, 4, 8, 1, 2, …)
// and medians reported with their spread. Mixes: all autoregressive; half or all of the streams self-speculative
// (E 4, k 4) under the adaptive policy or 'always' (--mixes picks some; all-ar always runs, as the baseline). Every
// stream's text must equal its single-request greedy text.
//
//   npx tsx scripts/bench-batching.ts [--model DIR] [--streams 1,2,4,8] [--tokens 64] [--rounds 3] [--threads N]
//                                     [--weights q8|q4] [--mixes half-spec-adaptive,all-spec-always,…] [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { median } from '../lib/benchmark.js';
import { cpuInfo, loadModel, type LayerSkipModel, type QuantType } from '../lib/index.js';
import type { EngineObserver, EngineRequest, EngineStrategy } from '../lib/server/engine-api.js';
import { BatchEngine } from '../lib/server/batch-engine.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(os.homedir(), '.cache/layerskip/bench/llama-3.2-1b-shape-late0.02') },
    streams: { type: 'string', default: '1,2,4,8' },
    tokens: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string' },
    weights: { type: 'string' },
    mixes: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (!fs.existsSync(path.join(args.model!, 'config.json'))) {
  throw new Error(`${args.model}: no checkpoint; run \`npx tsx scripts/bench-speculative.ts --suite 1b\` once to write it`);
}
const streamCounts = args.streams!.split(',').map(Number);
const tokens = Number(args.tokens);
const rounds = Number(args.rounds);

type Mix = 'all-ar' | 'half-spec-adaptive' | 'half-spec-always' | 'all-spec-adaptive' | 'all-spec-always';
const ALL_MIXES: Mix[] = ['all-ar', 'half-spec-adaptive', 'half-spec-always', 'all-spec-adaptive', 'all-spec-always'];
const MIXES = ['all-ar', ...(args.mixes ? args.mixes.split(',').filter((m) => m !== 'all-ar') : ALL_MIXES.slice(1))] as Mix[];
for (const mix of MIXES) if (!ALL_MIXES.includes(mix)) throw new Error(`unknown mix ${mix} (${ALL_MIXES.join(', ')})`);

function prompt(i: number, vocab: number): number[] {
  return Array.from({ length: 12 + (i % 4) * 5 }, (_, t) => (1 + i * 7919 + t * 104729) % vocab);
}

function strategyFor(mix: Mix, i: number, numLayers: number): EngineStrategy {
  const speculative = mix.startsWith('all-spec') || (mix.startsWith('half-spec') && i % 2 === 1);
  return speculative
    ? { generationStrategy: 'self_speculative', exitLayer: 4, numSpeculations: 4, draftConfidence: 0 }
    : { generationStrategy: 'autoregressive', exitLayer: numLayers, numSpeculations: 1, draftConfidence: 0 };
}

// Counts decode tokens while every stream of a run is decoding: from the moment the last stream got its first
// token until the first stream finishes (the steady state a server with N busy slots is in).
class SteadyWindow implements EngineObserver {
  private streams = 0;
  private firsts = 0;
  private started = 0;
  private ended = 0;
  tokens = 0;
  reset(streams: number): void {
    Object.assign(this, { streams, firsts: 0, started: 0, ended: 0, tokens: 0 });
  }
  onFirstToken = (): void => {
    if (++this.firsts === this.streams) this.started = performance.now();
  };
  onToken = (): void => {
    if (this.started > 0 && this.ended === 0) this.tokens++;
  };
  onFinish = (): void => {
    if (this.ended === 0) this.ended = performance.now();
  };
  tokensPerSecond(): number {
    return this.ended > this.started ? (this.tokens * 1000) / (this.ended - this.started) : NaN;
  }
}

async function runOnce(model: LayerSkipModel, engine: BatchEngine, window: SteadyWindow, streams: number, mix: Mix, expected: Map<string, number[]>) {
  const numLayers = model.info.numLayers;
  const requests: EngineRequest[] = Array.from({ length: streams }, (_, i) => ({
    promptIds: prompt(i, model.info.vocabSize),
    maxTokens: tokens,
    sampling: { temperature: 0, topK: 0, topP: 1 },
    seed: 1,
    stopStrings: [],
    stopTokenIds: [],
    strategy: strategyFor(mix, i, numLayers),
  }));
  window.reset(streams);
  const results = await Promise.all(requests.map((request) => engine.submit(request)));
  results.forEach((result, i) => {
    const key = `${i}`;
    if (!expected.has(key)) expected.set(key, result.tokenIds);
    else if (JSON.stringify(expected.get(key)) !== JSON.stringify(result.tokenIds)) {
      throw new Error(`stream ${i} (${mix}, N ${streams}) differs from its greedy text`);
    }
  });
  return {
    aggregate: window.tokensPerSecond(),
    drafted: results.reduce((sum, r) => sum + r.timings.draftN, 0),
    accepted: results.reduce((sum, r) => sum + r.timings.draftNAccepted, 0),
  };
}

const model = await loadModel(args.model!, {
  threads: args.threads ? Number(args.threads) : undefined,
  weights: args.weights as QuantType | undefined,
  contextLength: 512,
});
const info = cpuInfo();
const maxStreams = Math.max(...streamCounts);
const window = new SteadyWindow();
const engineOptions = { parallel: maxStreams, queueLimit: 64, requestTimeoutMs: 0, contextLength: 512, observer: window };
const engines = {
  adaptive: await BatchEngine.create(model, engineOptions),
  always: await BatchEngine.create(model, { ...engineOptions, speculation: 'always' }),
};
const expected = new Map<string, number[]>();
const samples = new Map<string, { aggregate: number[]; drafted: number; accepted: number }>();
// Warm-up (and the reference greedy texts, from one stream at a time).
for (let i = 0; i < maxStreams; i++) await runOnce(model, engines.adaptive, window, 1, 'all-ar', new Map());
for (let round = 0; round < rounds; round++) {
  for (const mix of MIXES) {
    for (const streams of streamCounts) {
      const engine = mix.endsWith('always') ? engines.always : engines.adaptive;
      const run = await runOnce(model, engine, window, streams, mix, expected);
      const key = `${mix}|${streams}`;
      const entry = samples.get(key) ?? { aggregate: [], drafted: 0, accepted: 0 };
      entry.aggregate.push(run.aggregate);
      entry.drafted += run.drafted;
      entry.accepted += run.accepted;
      samples.set(key, entry);
      if (!args.json) process.stderr.write(`round ${round + 1} ${mix} N=${streams}: ${run.aggregate.toFixed(1)} tok/s\n`);
    }
  }
}
await engines.adaptive.close(1000);
await engines.always.close(1000);

const rows = [];
for (const mix of MIXES) {
  const single = median(samples.get(`all-ar|1`)!.aggregate);
  for (const streams of streamCounts) {
    const entry = samples.get(`${mix}|${streams}`)!;
    const med = median(entry.aggregate);
    rows.push({
      mix,
      streams,
      medianTokensPerSecond: med,
      min: Math.min(...entry.aggregate),
      max: Math.max(...entry.aggregate),
      vsOneStream: med / single,
      acceptance: entry.drafted > 0 ? entry.accepted / entry.drafted : undefined,
    });
  }
}
const header = `${info.model}; ${model.info.backend}; ${model.info.dtype}; ${tokens} tokens per stream; ${rounds} interleaved rounds`;
if (args.json) {
  console.log(JSON.stringify({ header, rows }, null, 2));
} else {
  console.log(header);
  console.log('| mix | streams | aggregate decode tok/s (median) | min–max | × one AR stream | acceptance |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.mix} | ${r.streams} | ${r.medianTokensPerSecond.toFixed(1)} | ${r.min.toFixed(1)}–${r.max.toFixed(1)} | ` +
        `${r.vsOneStream.toFixed(2)}× | ${r.acceptance === undefined ? '—' : `${(r.acceptance * 100).toFixed(0)}%`} |`,
    );
  }
}
await model.dispose();
