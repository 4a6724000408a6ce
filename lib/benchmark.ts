// Throughput benchmark of a loaded model: prefill tok/s over a prompt of random token ids, decode tok/s over
// greedy generation, and on the CPU the decode roofline (weight bytes read per token over measured memory
// bandwidth); and greedy self-speculative vs autoregressive decoding on the same prompts.
// Used by `layerskip benchmark` and `npm run bench`.
import os from 'node:os';

import type { LayerSkipModel } from './model.js';
import { loadNativeBinding } from './native.js';

/** The most repeats --min-time may add. */
export const MAX_REPEATS = 100;

export interface BenchmarkOptions {
  promptTokens: number;
  generateTokens: number;
  /** At least this many repeats… */
  repeats: number;
  /** …and more, up to MAX_REPEATS, until this many seconds have passed (default 0). */
  minSeconds?: number;
  threads: number;
  /** Early-exit layer for decoding (default: all layers). */
  exitLayer?: number;
}

export interface BenchmarkResult {
  date: string;
  machine: string;
  /** The processor's features the CPU kernels use (the kernel variant that ran is in `backend`). */
  cpuFeatures: string;
  backend: string;
  dtype: string;
  threads: number;
  promptTokens: number;
  generateTokens: number;
  repeats: number;
  prefillTokensPerSecond: number[]; // one per repeat
  decodeTokensPerSecond: number[];
  medianPrefillTokensPerSecond: number;
  medianDecodeTokensPerSecond: number;
  weightBytesPerToken: number;
  /** Host memory read bandwidth (median of the runs); null on a GPU (scripts/gpu-check.sh measures that). */
  readBandwidthBytesPerSecond: number | null;
  /** Every bandwidth probe, to show its spread. */
  readBandwidthRunsBytesPerSecond: number[];
  /** Decode tok/s if every token only had to stream its weights at the measured bandwidth (null on a GPU). */
  rooflineTokensPerSecond: number | null;
  /** medianDecode / roofline (null on a GPU). */
  rooflineFraction: number | null;
}

export interface SpeculativeBenchmarkOptions {
  exitLayer: number;
  numSpeculations: number;
  promptTokens: number;
  generateTokens: number;
  /** At least this many prompts, and more (up to MAX_REPEATS) until minSeconds have passed. */
  repeats: number;
  minSeconds?: number;
}

// Repeat indices: at least `repeats`, then on while less than `minSeconds` has passed (up to MAX_REPEATS).
function* repeatIndices(repeats: number, minSeconds = 0): Generator<number> {
  const started = performance.now();
  for (let repeat = 0; repeat < repeats || (performance.now() - started < minSeconds * 1000 && repeat < MAX_REPEATS); repeat++) {
    yield repeat;
  }
}

export interface SpeculativeBenchmarkResult extends SpeculativeBenchmarkOptions {
  /** Decode tok/s per repeat, greedy autoregressive and self-speculative on the same prompt. */
  autoregressiveTokensPerSecond: number[];
  speculativeTokensPerSecond: number[];
  /** Median over repeats of speculative / autoregressive tok/s on the same prompt (pairs run back to back). */
  speedup: number;
  /** The per-prompt ratios' spread and what it supports (a noisy machine gives 'too noisy to conclude'). */
  speedupSpread: RatioSpread;
  /** Accepted / drafted over all repeats. */
  acceptanceRate: number;
  /** Every repeat produced the same tokens both ways (it must: greedy self-speculative decoding is exact). */
  identical: boolean;
}

/**
 * Paired ratios (new / old, one per prompt run back to back) summarized honestly: their range (with 5 or more, the
 * middle half: 25th to 75th percentile) and a verdict only when that whole range is on one side of 1.
 */
export interface RatioSpread {
  median: number;
  low: number;
  high: number;
  verdict: 'faster' | 'slower' | 'too noisy to conclude';
}

export function ratioSpread(ratios: number[]): RatioSpread {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number) => {
    const position = q * (sorted.length - 1);
    const below = Math.floor(position);
    return sorted[below] + (sorted[Math.min(below + 1, sorted.length - 1)] - sorted[below]) * (position - below);
  };
  const quartiles = sorted.length >= 5;
  const low = quartiles ? at(0.25) : sorted[0], high = quartiles ? at(0.75) : sorted[sorted.length - 1];
  const verdict = sorted.length >= 3 && low > 1 ? 'faster' : sorted.length >= 3 && high < 1 ? 'slower' : 'too noisy to conclude';
  return { median: median(ratios), low, high, verdict };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `count` pseudo-random token ids in [0, vocab), the same for the same seed (a 32-bit LCG). */
export function randomPrompt(count: number, vocab: number, seed: number): number[] {
  const ids: number[] = [];
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    ids.push(state % vocab);
  }
  return ids;
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

/** The processor's instruction-set extensions that the CPU kernels care about, e.g. "avx2 fma f16c avx512f …". */
export function cpuFeatureDescription(): string {
  return loadNativeBinding().cpuInfo().features;
}

export async function runBenchmark(model: LayerSkipModel, options: BenchmarkOptions): Promise<BenchmarkResult> {
  const info = model.info;
  if (options.promptTokens + options.generateTokens + 1 > info.contextLength) {
    throw new RangeError(`prompt + generated tokens exceed the context length ${info.contextLength}`);
  }
  const prefill: number[] = [];
  const decode: number[] = [];
  for (const repeat of repeatIndices(options.repeats, options.minSeconds)) {
    // A fresh prompt each time, so no repeat reuses the previous one's cache.
    const prompt = randomPrompt(options.promptTokens, info.vocabSize, 1000 + repeat);
    const result = await model.generate(prompt, {
      maxSteps: options.generateTokens,
      stopTokenIds: [],
      exitLayer: options.exitLayer,
    });
    prefill.push(result.stats.prefillTokensPerSecond);
    decode.push(result.stats.decodeTokensPerSecond);
  }
  const exitLayer = options.exitLayer ?? info.numLayers;
  const bytesPerToken = info.weightBytesPerLayer * exitLayer + info.headWeightBytes;
  // Three probes, the median used: a single probe on a shared machine can be off by half (reported with the runs).
  const bandwidthRuns = info.device === 'cpu' ? [0, 1, 2].map(() => loadNativeBinding().measureReadBandwidth(options.threads, 1024)) : [];
  const bandwidth = bandwidthRuns.length > 0 ? median(bandwidthRuns) : null;
  const roofline = bandwidth === null ? null : bandwidth / bytesPerToken;
  return {
    date: new Date().toISOString().slice(0, 10),
    machine: machineDescription(),
    cpuFeatures: cpuFeatureDescription(),
    backend: info.backend,
    dtype: info.dtype,
    threads: options.threads,
    promptTokens: options.promptTokens,
    generateTokens: options.generateTokens,
    repeats: decode.length,
    prefillTokensPerSecond: prefill,
    decodeTokensPerSecond: decode,
    medianPrefillTokensPerSecond: median(prefill),
    medianDecodeTokensPerSecond: median(decode),
    weightBytesPerToken: bytesPerToken,
    readBandwidthBytesPerSecond: bandwidth,
    readBandwidthRunsBytesPerSecond: bandwidthRuns,
    rooflineTokensPerSecond: roofline,
    rooflineFraction: roofline === null ? null : median(decode) / roofline,
  };
}

/** Greedy autoregressive and self-speculative decoding of the same random prompts, one pair per repeat. */
export async function runSpeculativeBenchmark(
  model: LayerSkipModel,
  options: SpeculativeBenchmarkOptions,
): Promise<SpeculativeBenchmarkResult> {
  const autoregressive: number[] = [];
  const speculative: number[] = [];
  let drafted = 0;
  let accepted = 0;
  let identical = true;
  for (const repeat of repeatIndices(options.repeats, options.minSeconds)) {
    const prompt = randomPrompt(options.promptTokens, model.info.vocabSize, 2000 + repeat);
    const plain = await model.generate(prompt, { maxSteps: options.generateTokens, stopTokenIds: [] });
    const drafting = await model.generate(prompt, {
      maxSteps: options.generateTokens,
      stopTokenIds: [],
      generationStrategy: 'self_speculative',
      exitLayer: options.exitLayer,
      numSpeculations: options.numSpeculations,
    });
    autoregressive.push(plain.stats.decodeTokensPerSecond);
    speculative.push(drafting.stats.decodeTokensPerSecond);
    drafted += drafting.stats.drafted;
    accepted += drafting.stats.accepted;
    identical &&= plain.tokenIds.length === drafting.tokenIds.length && plain.tokenIds.every((id, i) => id === drafting.tokenIds[i]);
  }
  return {
    ...options,
    repeats: autoregressive.length,
    autoregressiveTokensPerSecond: autoregressive,
    speculativeTokensPerSecond: speculative,
    speedup: median(speculative.map((value, i) => value / autoregressive[i])),
    speedupSpread: ratioSpread(speculative.map((value, i) => value / autoregressive[i])),
    acceptanceRate: drafted > 0 ? accepted / drafted : 0,
    identical,
  };
}

export function formatBenchmark(result: BenchmarkResult): string {
  const lines = [
    `date ${result.date} · ${result.machine} · ${result.backend} · ${result.dtype} weights`,
    `cpu features: ${result.cpuFeatures}`,
    `| metric | median | runs |`,
    `|---|---|---|`,
    `| prefill (${result.promptTokens}-token prompt) | ${result.medianPrefillTokensPerSecond.toFixed(1)} tok/s | ${result.prefillTokensPerSecond.map((v) => v.toFixed(1)).join(', ')} |`,
    `| decode (${result.generateTokens} tokens) | ${result.medianDecodeTokensPerSecond.toFixed(2)} tok/s | ${result.decodeTokensPerSecond.map((v) => v.toFixed(2)).join(', ')} |`,
    `| weights read per token | ${(result.weightBytesPerToken / 2 ** 30).toFixed(3)} GiB | |`,
  ];
  if (result.readBandwidthBytesPerSecond !== null && result.rooflineTokensPerSecond !== null && result.rooflineFraction !== null) {
    lines.push(
      `| memory read bandwidth (${result.threads} threads) | ${(result.readBandwidthBytesPerSecond / 1e9).toFixed(1)} GB/s | ` +
        `${result.readBandwidthRunsBytesPerSecond.map((v) => (v / 1e9).toFixed(1)).join(', ')} |`,
      `| decode roofline | ${result.rooflineTokensPerSecond.toFixed(2)} tok/s | |`,
      `| decode / roofline | ${(result.rooflineFraction * 100).toFixed(1)}% | |`,
    );
  }
  return lines.join('\n');
}

export function formatSpeculativeBenchmark(result: SpeculativeBenchmarkResult): string {
  return [
    `self-speculative, E = ${result.exitLayer}, k = ${result.numSpeculations} (greedy, ${result.generateTokens} tokens, ${result.repeats} prompts)`,
    `| decoding | median tok/s | runs |`,
    `|---|---|---|`,
    `| autoregressive | ${median(result.autoregressiveTokensPerSecond).toFixed(2)} | ${result.autoregressiveTokensPerSecond.map((v) => v.toFixed(2)).join(', ')} |`,
    `| self-speculative | ${median(result.speculativeTokensPerSecond).toFixed(2)} | ${result.speculativeTokensPerSecond.map((v) => v.toFixed(2)).join(', ')} |`,
    `${formatSpeedup(result.speedupSpread, result.repeats, 'prompt', 'more --repeats or a quieter machine')} · acceptance ${(result.acceptanceRate * 100).toFixed(1)}% · ` +
      `output ${result.identical ? 'identical to autoregressive' : 'DIFFERENT from autoregressive'}`,
  ].join('\n');
}

/**
 * "speedup 1.32× (middle half of 5 per-prompt ratios 1.21–1.40×)", or the spread without a ratio when it straddles
 * 1, with `advice` on getting a clearer answer.
 */
export function formatSpeedup(spread: RatioSpread, count: number, unit: 'prompt' | 'example', advice: string): string {
  const range = `${count >= 5 ? 'middle half' : 'all'} of ${count} per-${unit} ratios ${spread.low.toFixed(2)}–${spread.high.toFixed(2)}×`;
  if (spread.verdict === 'too noisy to conclude') return `speedup too noisy to conclude (${range}; ${advice})`;
  return `speedup ${spread.median.toFixed(2)}× (${range})`;
}
