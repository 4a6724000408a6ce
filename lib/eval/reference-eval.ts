// How far a model's next-token distributions are from a reference model's on the same text — what quantized weights
// cost, as llama.cpp's `perplexity --kl-divergence` reports it. Both models run the same windows at full depth (each
// from an empty cache, as evaluateExitLayers cuts them); per predicted position: KL(P_reference ‖ P_model) over the
// whole vocabulary, whether the two argmaxes agree, and −log p(next token) under each. Logits are streamed a chunk of
// rows at a time (logit-rows.ts); only one KL value per prediction is kept, for the median and percentiles.
import type { LayerSkipModel } from '../model.js';
import { evalWindows, type ExitLayerEvalOptions } from './exit-layer-eval.js';
import { logitsRows, LOGIT_ROWS_PER_CHUNK, withModelContext } from './logit-rows.js';

export interface ReferenceComparison {
  /** Predictions compared: window length − 1 per window. */
  predictions: number;
  /** KL(P_reference ‖ P_model) in nats over the predictions: mean, median, 99th percentile (interpolated), max. */
  meanKl: number;
  medianKl: number;
  p99Kl: number;
  maxKl: number;
  /** Predictions whose argmax (lowest id on ties) is the same token under both models. */
  top1Matches: number;
  /** top1Matches / predictions. */
  top1Agreement: number;
  /** exp(mean −log p(next token)) under the model. */
  perplexity: number;
  /** The same under the reference, on the same windows. */
  referencePerplexity: number;
  /** perplexity / referencePerplexity. */
  perplexityRatio: number;
}

/** Window, maxTokens and progress as evaluateExitLayers takes them; the window must fit both models' contexts. */
export type ReferenceComparisonOptions = ExitLayerEvalOptions;

/** One predicted position compared. */
export interface PredictionComparison {
  /** KL(P_reference ‖ P_model) in nats, ≥ 0. */
  kl: number;
  /** The argmaxes (lowest id on ties) agree. */
  sameTop1: boolean;
  /** −log P_model(next). */
  nll: number;
  /** −log P_reference(next). */
  referenceNll: number;
}

/** Index of the largest value (lowest index on ties) and log Σ exp(row), in float64. */
function argmaxAndLogSumExp(row: Float32Array): { argmax: number; logSumExp: number } {
  let argmax = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[argmax]) argmax = i;
  const max = row[argmax];
  let total = 0;
  for (let i = 0; i < row.length; i++) total += Math.exp(row[i] - max);
  return { argmax, logSumExp: max + Math.log(total) };
}

/**
 * Compares one position's logits rows (vocab,) from the model and the reference, `next` being the token that
 * follows. The log-softmax of each is taken in float64 (max-subtracted), so KL is exactly 0 for equal rows; a
 * rounding error below 0 is clamped.
 */
export function comparePrediction(modelRow: Float32Array, referenceRow: Float32Array, next: number): PredictionComparison {
  if (modelRow.length !== referenceRow.length) throw new RangeError(`logits rows of ${modelRow.length} and ${referenceRow.length} values`);
  const model = argmaxAndLogSumExp(modelRow);
  const reference = argmaxAndLogSumExp(referenceRow);
  let kl = 0;
  for (let i = 0; i < modelRow.length; i++) {
    const referenceLogProbability = referenceRow[i] - reference.logSumExp;
    kl += Math.exp(referenceLogProbability) * (referenceLogProbability - (modelRow[i] - model.logSumExp));
  }
  return {
    kl: Math.max(0, kl),
    sameTop1: model.argmax === reference.argmax,
    nll: model.logSumExp - modelRow[next],
    referenceNll: reference.logSumExp - referenceRow[next],
  };
}

/**
 * Why `model` and `reference` cannot be compared token for token, or undefined: a different vocab_size, or (when
 * both folders have tokenizer.json) a different token at some id.
 */
export function vocabularyMismatch(model: LayerSkipModel, reference: LayerSkipModel): string | undefined {
  if (model.info.vocabSize !== reference.info.vocabSize) {
    return `vocab_size ${model.info.vocabSize} vs ${reference.info.vocabSize}`;
  }
  const ours = model.tokenizer;
  const theirs = reference.tokenizer;
  if (!ours || !theirs) return undefined;
  if (ours.vocabSize !== theirs.vocabSize) return `tokenizer.json holds ${ours.vocabSize} vs ${theirs.vocabSize} tokens`;
  for (let id = 0; id < ours.vocabSize; id++) {
    const token = ours.idToToken(id);
    const referenceToken = theirs.idToToken(id);
    if (token !== referenceToken) return `token ${id} is ${JSON.stringify(token)} vs ${JSON.stringify(referenceToken)}`;
  }
  return undefined;
}

/** The q-quantile of ascending `sorted`, interpolating linearly between ranks (numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const rank = q * (sorted.length - 1);
  const below = Math.floor(rank);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (rank - below);
}

/**
 * Runs `tokens` window by window through `model` and `reference` (a separately loaded LayerSkipModel over the same
 * vocabulary) and compares their next-token distributions at every predicted position. Each model's work waits for
 * its generations in progress and leaves its cache empty; the two are held together, so do not run another
 * comparison with the roles swapped at the same time.
 */
export async function compareToReference(
  model: LayerSkipModel,
  reference: LayerSkipModel,
  tokens: Int32Array,
  options: ReferenceComparisonOptions = {},
): Promise<ReferenceComparison> {
  if (!(tokens instanceof Int32Array)) throw new TypeError('tokens must be an Int32Array');
  if (model === reference) throw new RangeError('the reference must be a separately loaded model (load its folder again)');
  const mismatch = vocabularyMismatch(model, reference);
  if (mismatch) throw new RangeError(`${model.info.dir} and the reference ${reference.info.dir} do not share a vocabulary: ${mismatch}`);
  const windows = evalWindows(tokens.length, Math.min(model.info.contextLength, reference.info.contextLength), options);
  const total = windows.at(-1)!.end;
  const vocab = model.info.vocabSize;

  const kl = new Float64Array(windows.reduce((sum, { start, end }) => sum + end - start - 1, 0)); // (predictions,)
  let predictions = 0;
  let top1Matches = 0;
  let nll = 0;
  let referenceNll = 0;
  await withModelContext(model, (modelContext) =>
    withModelContext(reference, async (referenceContext) => {
      for (const { start, end } of windows) {
        modelContext.truncate(0);
        referenceContext.truncate(0);
        // Positions start … end − 2 each predict the token after them.
        for (let first = start; first < end - 1; first += LOGIT_ROWS_PER_CHUNK) {
          const chunk = tokens.subarray(first, Math.min(first + LOGIT_ROWS_PER_CHUNK, end - 1));
          const modelLogits = await logitsRows(modelContext, chunk); // (chunk, vocab)
          const referenceLogits = await logitsRows(referenceContext, chunk); // (chunk, vocab)
          for (let row = 0; row < chunk.length; row++) {
            const span = [row * vocab, (row + 1) * vocab] as const;
            const compared = comparePrediction(modelLogits.subarray(...span), referenceLogits.subarray(...span), tokens[first + row + 1]);
            if (!Number.isFinite(compared.kl + compared.nll + compared.referenceNll)) {
              throw new Error(`non-finite logits at token ${first + row} (model ${model.info.dir}, reference ${reference.info.dir})`);
            }
            kl[predictions++] = compared.kl;
            if (compared.sameTop1) top1Matches++;
            nll += compared.nll;
            referenceNll += compared.referenceNll;
          }
        }
        options.onProgress?.(end, total);
      }
    }),
  );

  const sorted = kl.slice().sort();
  const perplexity = Math.exp(nll / predictions);
  const referencePerplexity = Math.exp(referenceNll / predictions);
  return {
    predictions,
    meanKl: sorted.reduce((sum, value) => sum + value, 0) / predictions,
    medianKl: quantile(sorted, 0.5),
    p99Kl: quantile(sorted, 0.99),
    maxKl: sorted[predictions - 1],
    top1Matches,
    top1Agreement: top1Matches / predictions,
    perplexity,
    referencePerplexity,
    perplexityRatio: perplexity / referencePerplexity,
  };
}
