// A task benchmark as LayerSkip's benchmark.py runs it: every example generated (autoregressive, self-speculative,
// or both on the same example back to back, in alternating order so a drifting machine favours neither), scored
// against its reference (ROUGE, BLEU, edit distance), timed from the first forward pass to the last token (prompt
// tokenization excluded, prefill included: time per token = total / generated tokens), and averaged over examples.
// Empty generations are left out of the metrics, as there. Both modes pay their whole prefill (no cache reuse).
import { ratioSpread, type RatioSpread } from '../benchmark.js';
import type { GenerationResult } from '../generation/generate.js';
import { DEFAULT_NUM_SPECULATIONS, type GenerationOptions, type GenerationStrategy } from '../generation/options.js';
import type { LayerSkipModel } from '../model.js';
import { TextMetrics, type ExampleScores, type TextMetricsSummary } from './text-metrics.js';
import type { TaskExample } from './task-datasets.js';

export interface TaskBenchmarkOptions {
  /** One strategy, or both (autoregressive then self_speculative): the comparison reports the speedup. */
  strategies: GenerationStrategy[];
  /** Sampling, lengths, stop words; exitLayer / numSpeculations for the self-speculative runs. */
  generation: GenerationOptions;
  /** Seed of example i is seed + i, the same for both strategies. */
  seed: number;
  signal?: AbortSignal;
  onExample?: (progress: ExampleProgress) => void;
}

export interface ExampleRun {
  strategy: GenerationStrategy;
  text: string;
  tokenIds: number[];
  scores?: ExampleScores; // absent for an empty generation (not scored)
  totalMs: number;
  acceptanceRate: number;
}

export interface ExampleProgress {
  index: number;
  total: number;
  example: TaskExample;
  runs: ExampleRun[];
  /** The prompt did not fit in the context: not generated. */
  skipped: boolean;
  /** Running results, for a progress line. */
  running: StrategyMetrics[];
}

/** One strategy's results over the examples it generated something for (LayerSkip's EvaluationMetrics). */
export interface StrategyMetrics {
  strategy: GenerationStrategy;
  /** E and k of the self-speculative runs (numLayers and 0 for autoregressive). */
  exitLayer: number;
  numSpeculations: number;
  text: TextMetricsSummary;
  /** Means over scored examples. */
  acceptanceRate: number;
  totalTimeMs: number;
  timePerTokenMs: number;
  tokensPerSecond: number;
  generatedTokens: number;
  /** Examples whose generation was empty (left out, as LayerSkip does). */
  emptyGenerations: number;
}

export interface StrategyComparison {
  /** Per-example self-speculative / autoregressive tokens/s (prefill included), summarized with their spread. */
  speedup: RatioSpread;
  /** Ratio of the two strategies' mean tokens/s (LayerSkip's numbers). */
  meanSpeedup: number;
  examplesCompared: number;
  /** Examples whose token ids were the same both ways (all of them, for greedy decoding). */
  identicalOutputs: number;
}

export interface TaskBenchmarkResult {
  examples: number;
  /** Examples generated (the others were skipped or not reached before an interrupt). */
  completed: number;
  skippedTooLong: number;
  interrupted: boolean;
  strategies: StrategyMetrics[];
  comparison?: StrategyComparison;
}

class StrategyTotals {
  readonly text = new TextMetrics();
  private acceptance = 0;
  private totalMs = 0;
  private timePerTokenMs = 0;
  private tokensPerSecond = 0;
  private generatedTokens = 0;
  private emptyGenerations = 0;

  constructor(
    readonly strategy: GenerationStrategy,
    private readonly exitLayer: number,
    private readonly numSpeculations: number,
  ) {}

  add(result: GenerationResult, reference: string): ExampleScores | undefined {
    const tokens = result.tokenIds.length;
    if (tokens === 0) {
      this.emptyGenerations++;
      return undefined;
    }
    const totalMs = result.stats.totalMs;
    this.acceptance += result.stats.acceptanceRate;
    this.totalMs += totalMs;
    this.timePerTokenMs += totalMs / tokens;
    this.tokensPerSecond += (tokens * 1000) / totalMs;
    this.generatedTokens += tokens;
    return this.text.add(result.text, reference);
  }

  metrics(): StrategyMetrics {
    const scored = this.text.count;
    const mean = (sum: number) => (scored > 0 ? sum / scored : 0);
    return {
      strategy: this.strategy,
      exitLayer: this.exitLayer,
      numSpeculations: this.numSpeculations,
      text: this.text.summary(),
      acceptanceRate: mean(this.acceptance),
      totalTimeMs: mean(this.totalMs),
      timePerTokenMs: mean(this.timePerTokenMs),
      tokensPerSecond: mean(this.tokensPerSecond),
      generatedTokens: this.generatedTokens,
      emptyGenerations: this.emptyGenerations,
    };
  }
}

/** The options one strategy's runs get: the autoregressive runs use every layer when compared with drafting. */
function strategyOptions(strategy: GenerationStrategy, options: TaskBenchmarkOptions): GenerationOptions {
  const base = { ...options.generation, generationStrategy: strategy, reusePromptCache: false, signal: options.signal };
  if (strategy === 'self_speculative' || options.strategies.length === 1) return base;
  return { ...base, exitLayer: undefined, numSpeculations: undefined };
}

export async function runTaskBenchmark(model: LayerSkipModel, examples: TaskExample[], options: TaskBenchmarkOptions): Promise<TaskBenchmarkResult> {
  const numLayers = model.info.numLayers;
  const checkpoint = model.info.speculationDefaults;
  const totals = options.strategies.map((strategy) => {
    const speculative = strategy === 'self_speculative';
    const earlyExit = options.strategies.length === 1 ? options.generation.exitLayer : undefined;
    const exitLayer = (speculative ? (options.generation.exitLayer ?? checkpoint.exitLayer) : earlyExit) ?? numLayers;
    const numSpeculations = speculative ? (options.generation.numSpeculations ?? checkpoint.numSpeculations ?? DEFAULT_NUM_SPECULATIONS) : 0;
    return new StrategyTotals(strategy, exitLayer, numSpeculations);
  });
  const ratios: number[] = [];
  let identicalOutputs = 0;
  let completed = 0;
  let skippedTooLong = 0;
  let interrupted = false;

  for (const [index, example] of examples.entries()) {
    if (options.signal?.aborted) {
      interrupted = true;
      break;
    }
    // Tokenized once, for the length check and both strategies (ids are used as given, BOS included).
    const promptIds = model.encode(example.prompt);
    const runs: ExampleRun[] = [];
    if (promptIds.length + 1 >= model.info.contextLength) {
      skippedTooLong++;
    } else {
      // Alternate which strategy goes first, so slow drift on a shared machine favours neither.
      const order = index % 2 === 0 ? totals : [...totals].reverse();
      const results = new Map<GenerationStrategy, GenerationResult>();
      for (const strategy of order) {
        const result = await model.generate(promptIds, { ...strategyOptions(strategy.strategy, options), seed: options.seed + index });
        if (result.finishReason === 'abort') break;
        results.set(strategy.strategy, result);
      }
      if (results.size < totals.length) {
        interrupted = true; // the example in progress is dropped whole: its runs would be incomparable
        break;
      }
      for (const strategy of totals) {
        const result = results.get(strategy.strategy)!;
        const scores = strategy.add(result, example.reference);
        runs.push({ strategy: strategy.strategy, text: result.text, tokenIds: result.tokenIds, scores, totalMs: result.stats.totalMs, acceptanceRate: result.stats.acceptanceRate });
      }
      if (runs.length === 2 && runs.every((run) => run.tokenIds.length > 0)) {
        const [plain, drafted] = runs;
        const perSecond = (run: ExampleRun) => run.tokenIds.length / run.totalMs;
        ratios.push(perSecond(drafted) / perSecond(plain));
        if (plain.tokenIds.length === drafted.tokenIds.length && plain.tokenIds.every((id, i) => id === drafted.tokenIds[i])) identicalOutputs++;
      }
      completed++;
    }
    options.onExample?.({ index, total: examples.length, example, runs, skipped: runs.length === 0, running: totals.map((t) => t.metrics()) });
  }

  const strategies = totals.map((t) => t.metrics());
  const comparison: StrategyComparison | undefined =
    strategies.length === 2 && ratios.length > 0
      ? {
          speedup: ratioSpread(ratios),
          meanSpeedup: strategies[1].tokensPerSecond / strategies[0].tokensPerSecond,
          examplesCompared: ratios.length,
          identicalOutputs,
        }
      : undefined;
  return { examples: examples.length, completed, skippedTooLong, interrupted, strategies, comparison };
}
