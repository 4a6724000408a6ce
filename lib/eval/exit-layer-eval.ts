// Per-exit-layer evaluation: for every exit layer l = 1..L (the first l layers, then the model's own final norm and
// LM head) the next-token accuracy, perplexity and agreement of its argmax with the last layer's over a token
// stream, and the exit layer and draft count that self-speculative decoding is predicted to run fastest with.
// This is how a user learns whether a checkpoint is LayerSkip-ready and which E to pick.
import { median } from '../benchmark.js';
import type { LayerSkipModel, ModelInfo } from '../model.js';

export interface ExitLayerRow {
  /** l: layers [0, l) then the final norm and LM head. */
  exitLayer: number;
  /** Fraction of predictions whose argmax is the next token. */
  accuracy: number;
  /** exp(mean −log p(next token)). */
  perplexity: number;
  /** Fraction of predictions whose argmax equals the last layer's: greedy draft acceptance at E = l. */
  agreement: number;
  /** Predictions scored. */
  tokens: number;
}

export interface ExitLayerEvalOptions {
  /**
   * Tokens per window: the stream is cut into windows, each scored from an empty cache (window − 1 predictions).
   * In [2, contextLength + 1]; default min(1024, contextLength).
   */
  window?: number;
  /** Score at most the first maxTokens tokens of the stream (default: all). */
  maxTokens?: number;
  /** Called after each window with the stream tokens done and the total to do. */
  onProgress?: (doneTokens: number, totalTokens: number) => void;
}

export interface ExitLayerRecommendation {
  /** E: draft from layers [0, E). */
  exitLayer: number;
  /** k: tokens drafted per step. */
  numSpeculations: number;
  /** Agreement at E, taken as each draft's acceptance probability. */
  acceptanceRate: number;
  /** Expected tokens emitted per draft-and-verify step. */
  tokensPerStep: number;
  /** Predicted tokens/s relative to autoregressive decoding (below 1: slower). */
  predictedSpeedup: number;
  /**
   * 'measured': from this device's pass times (measurePassCosts); 'memory-bound': from weight counts alone, also when
   * the pass times were too noisy to use ('memory-bound (pass times too noisy)').
   */
  costModel: 'measured' | 'memory-bound' | 'memory-bound (pass times too noisy)';
}

export const MAX_RECOMMENDED_SPECULATIONS = 8;

/** The window evaluateExitLayers uses when none is given: min(1024, contextLength). */
export function defaultEvalWindow(contextLength: number): number {
  return Math.min(1024, contextLength);
}

/** One window of an evaluation: tokens [start, end) of the stream, scored from an empty cache. */
export interface EvalWindow {
  start: number;
  end: number;
}

/**
 * Cuts the first min(tokenCount, maxTokens) tokens of a stream into disjoint windows of `window` tokens (default
 * defaultEvalWindow(contextLength)); each window of n tokens makes n − 1 predictions, and a trailing single token
 * has nothing to predict and is left out. Throws a RangeError naming a bad window, maxTokens or too short a stream.
 */
export function evalWindows(
  tokenCount: number,
  contextLength: number,
  options: Pick<ExitLayerEvalOptions, 'window' | 'maxTokens'> = {},
): EvalWindow[] {
  const window = options.window ?? defaultEvalWindow(contextLength);
  if (!Number.isInteger(window) || window < 2 || window > contextLength + 1) {
    throw new RangeError(`window must be an integer in [2, ${contextLength + 1}] (the context length + 1), got ${JSON.stringify(window)}`);
  }
  const maxTokens = options.maxTokens;
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 2)) {
    throw new RangeError(`maxTokens must be an integer ≥ 2, got ${JSON.stringify(maxTokens)}`);
  }
  const total = Math.min(tokenCount, maxTokens ?? Infinity);
  if (total < 2) throw new RangeError(`evaluation needs at least 2 tokens, got ${total}`);
  const windows: EvalWindow[] = [];
  for (let start = 0; start + 1 < total; start += window) windows.push({ start, end: Math.min(start + window, total) });
  return windows;
}

/** Scores `tokens` window by window at every exit layer; one row per exit layer 1..L. */
export async function evaluateExitLayers(
  model: LayerSkipModel,
  tokens: Int32Array,
  options: ExitLayerEvalOptions = {},
): Promise<ExitLayerRow[]> {
  if (!(tokens instanceof Int32Array)) throw new TypeError('tokens must be an Int32Array');
  const { contextLength, numLayers } = model.info;
  const windows = evalWindows(tokens.length, contextLength, options);
  const total = windows.at(-1)!.end;

  const nll = new Float64Array(numLayers);
  const correct = new Float64Array(numLayers);
  const agree = new Float64Array(numLayers);
  let count = 0;
  for (const { start, end } of windows) {
    const sums = await model.scoreExitLayers(tokens.subarray(start, end));
    for (let layer = 0; layer < numLayers; layer++) {
      nll[layer] += sums.nll[layer];
      correct[layer] += sums.correct[layer];
      agree[layer] += sums.agree[layer];
    }
    count += sums.count;
    options.onProgress?.(end, total);
  }
  return Array.from({ length: numLayers }, (_, layer) => ({
    exitLayer: layer + 1,
    accuracy: correct[layer] / count,
    perplexity: Math.exp(nll[layer] / count),
    agreement: agree[layer] / count,
    tokens: count,
  }));
}

type ModelShapes = Pick<ModelInfo, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize'>;

/**
 * h: the LM head's cost relative to the whole layer stack, as weights read per token (decoding is memory-bound):
 * vocab·hidden over L × (q, k, v, o and the three MLP matrices of one layer).
 */
export function headCostRatio(shapes: ModelShapes): number {
  const qDim = shapes.numHeads * shapes.headDim;
  const kvDim = shapes.numKvHeads * shapes.headDim;
  const perLayer = shapes.hiddenSize * (2 * qDim + 2 * kvDim) + 3 * shapes.hiddenSize * shapes.intermediateSize;
  return (shapes.vocabSize * shapes.hiddenSize) / (shapes.numLayers * perLayer);
}

/** Measured forward-pass times on the model's device; index n − 1 holds the time for n rows. */
export interface PassCosts {
  /** ms for n tokens through every layer (no logits). */
  stackMs: number[];
  /** ms for the final norm + LM head (and token pick) over n rows. */
  headMs: number[];
  /**
   * How far apart the rounds measured one decode step (largest over smallest of the per-round one-row times, minus
   * 1). Above NOISY_PASS_SPREAD the measurement says more about the machine's other work than about the model.
   */
  spread?: number;
}

/** Rounds of pass timings whose one-row times differ by more than this are not used to recommend. */
export const NOISY_PASS_SPREAD = 0.25;

/**
 * Times passes of 1 … maxRows tokens through the whole stack, with and without logits (model.timeForwardPass),
 * so the recommendation can use this device's real costs: on a CPU a small model is compute-bound and verifying
 * k + 1 rows costs several decode steps, which the memory-bound model below would not see.
 */
export async function measurePassCosts(
  model: LayerSkipModel,
  maxRows = MAX_RECOMMENDED_SPECULATIONS + 1,
  rounds = 3,
): Promise<PassCosts> {
  // Rounds interleave every row count, so a burst of other work on the machine hits all of them alike.
  const limit = Math.min(maxRows, model.info.contextLength);
  const stackRuns: number[][] = Array.from({ length: limit }, () => []);
  const withHeadRuns: number[][] = Array.from({ length: limit }, () => []);
  for (let round = 0; round < rounds; round++) {
    for (let rows = 1; rows <= limit; rows++) {
      stackRuns[rows - 1].push(await model.timeForwardPass(rows, 0));
      withHeadRuns[rows - 1].push(await model.timeForwardPass(rows, rows));
    }
  }
  // Medians per row count, then made non-decreasing in rows (more rows never cost less; a dip is noise).
  const stackMs: number[] = [];
  const headMs: number[] = [];
  for (let i = 0; i < limit; i++) {
    const stack = Math.max(median(stackRuns[i]), stackMs[i - 1] ?? 0);
    stackMs.push(stack);
    headMs.push(Math.max(median(withHeadRuns[i]) - median(stackRuns[i]), headMs[i - 1] ?? 0, 0));
  }
  const oneRow = stackRuns[0];
  const spread = Math.max(...oneRow) / Math.min(...oneRow) - 1;
  return { stackMs, headMs, spread };
}

/**
 * Picks the exit layer E ∈ [1, L − 1] and draft count k ∈ [1, 8] with the highest predicted self-speculative
 * speedup. With a = agreement at E, taken as each draft's acceptance probability (independent drafts):
 *   tokensPerStep = (1 − a^(k+1)) / (1 − a)   (k + 1 when a = 1): accepted drafts + the verifier's token
 *   speedup       = tokensPerStep · t_step / (k · t_draft + t_verify)
 * With measured pass costs (measurePassCosts; f = E/L, a layer range costing its share of the stack):
 *   t_step = stack(1) + head(1)        t_draft = f·stack(1) + head(1)
 *   t_verify = f·stack(1) + (1 − f)·stack(k + 1) + head(k + 1)   (the last draft through [0, E), then [E, L) over
 *                                                                  k + 1 rows — context.h verify)
 * Without them, a memory-bound model in units of one pass of the layer stack, h = headCostRatio, where a pass over
 * a few rows costs what one row does: t_step = 1 + h, t_draft = f + h, t_verify = f + (1 − f) + h.
 * E = L is never proposed (it drafts with the whole model). Undefined when the model has one layer.
 */
export function recommendExitLayer(
  rows: ExitLayerRow[],
  numLayers: number,
  headCost: number,
  measured?: PassCosts,
): ExitLayerRecommendation | undefined {
  // Timings too noisy to trust fall back to the memory-bound model (the result says which was used).
  const costs = measured && !((measured.spread ?? 0) > NOISY_PASS_SPREAD) ? measured : undefined;
  const stack = (n: number) => (costs ? costs.stackMs[Math.min(n, costs.stackMs.length) - 1] : 1);
  const head = (n: number) => (costs ? costs.headMs[Math.min(n, costs.headMs.length) - 1] : headCost);
  const stepCost = stack(1) + head(1);
  let best: ExitLayerRecommendation | undefined;
  for (const row of rows) {
    const exitLayer = row.exitLayer;
    if (exitLayer < 1 || exitLayer >= numLayers) continue;
    const acceptanceRate = Math.min(1, Math.max(0, row.agreement));
    const share = exitLayer / numLayers;
    const draftCost = share * stack(1) + head(1);
    for (let numSpeculations = 1; numSpeculations <= MAX_RECOMMENDED_SPECULATIONS; numSpeculations++) {
      const tokensPerStep =
        acceptanceRate === 1 ? numSpeculations + 1 : (1 - acceptanceRate ** (numSpeculations + 1)) / (1 - acceptanceRate);
      const verifyCost = share * stack(1) + (1 - share) * stack(numSpeculations + 1) + head(numSpeculations + 1);
      const predictedSpeedup = (tokensPerStep * stepCost) / (numSpeculations * draftCost + verifyCost);
      if (!best || predictedSpeedup > best.predictedSpeedup) {
        best = {
          exitLayer, numSpeculations, acceptanceRate, tokensPerStep, predictedSpeedup,
          costModel: costs ? 'measured' : measured ? 'memory-bound (pass times too noisy)' : 'memory-bound',
        };
      }
    }
  }
  return best;
}
