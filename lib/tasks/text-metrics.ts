// Text-quality metrics of LayerSkip's benchmark.py — ROUGE-1/2/3/L F-measure, corpus BLEU-4 and mean character edit
// distance — with the semantics of the torchmetrics 1.3.2 functions it calls (functional/text/rouge.py, bleu.py,
// edit.py + helper.py), computed in float64 (torchmetrics rounds each score to float32; expect ~1e-7 differences).
//
// - ROUGE as ROUGEScore(rouge_keys=..., normalizer=lambda s: s.lower()), no stemmer: lowercase, split on Python's
//   `\s+`, drop empty tokens. ROUGE-N: clipped n-gram hits, P = hits / predicted n-grams, R = hits / reference
//   n-grams, F = 2PR / (P + R); 0 when either side has no n-grams or there are no hits. ROUGE-L: the same with the
//   longest common subsequence of the token lists over their lengths. A corpus score is the mean of the per-example
//   F-measures. LayerSkip calls `metric.update(reference, prediction)`, i.e. with the arguments swapped; F, hits and
//   the LCS are symmetric, so the swap changes nothing here.
// - BLEU as BLEUScore(n_gram=4), no smoothing: tokens from Python's `str.split()` (no lowercasing); clipped n-gram
//   matches and candidate n-gram counts (n = 1..4) and the candidate / reference lengths are summed over the corpus,
//   then BLEU = BP · exp(Σ ¼ log pₙ), BP = 1 when the candidates are longer than the references, else
//   exp(1 − ref/cand); 0 when any n has no match. Here the candidate is the model's prediction and the reference the
//   dataset's. LayerSkip passes them swapped, and because BLEUScore.update expects lists it then iterates the
//   reference *string*: every character becomes a one-token candidate, every character of the prediction a one-token
//   reference, no 2-gram can exist, and its bleu_score is always 0. We deliberately compute the correct corpus BLEU.
// - Edit distance as EditDistance() (reduction "mean"): Levenshtein distance over characters with unit insertion,
//   deletion and substitution cost, averaged over examples. "Character" means Unicode code point, as Python's str
//   iterates (🦙 is one, 👍🏽 is two), not UTF-16 unit. torchmetrics computes it with sacrebleu's TER routine, which
//   only fills a band of ±25 cells (wider for very unequal lengths) around the scaled diagonal of the DP table: for
//   long texts whose alignment drifts further than that it reports more than the true distance. So both are kept:
//   `editDistance` is the exact distance, `torchmetricsEditDistance` the banded value LayerSkip prints (as
//   "exact_match"), with rows = the dataset reference and columns = the prediction, as its swapped call makes them.
//
// TextMetrics accumulates example by example, so a benchmark can print running results and an interrupted run still
// reports what it has; with no examples every value is 0 (torchmetrics would give NaN there).
import { pythonSplit } from './python-strings.js';

/** Per-example ROUGE F-measures and edit distances (BLEU is only defined over the corpus here). */
export interface ExampleScores {
  rouge1: number;
  rouge2: number;
  rouge3: number;
  rougeL: number;
  /** Exact Levenshtein distance in code points. */
  editDistance: number;
  /** torchmetrics' banded Levenshtein distance, as LayerSkip reports it (≥ editDistance). */
  torchmetricsEditDistance: number;
}

export interface TextMetricsSummary {
  /** Examples added. */
  count: number;
  /** Means over examples of the per-example F-measures. */
  rouge1: number;
  rouge2: number;
  rouge3: number;
  rougeL: number;
  /** Corpus BLEU-4 of all examples so far. */
  bleu4: number;
  /** Means over examples. */
  editDistance: number;
  torchmetricsEditDistance: number;
}

/** BLEU-4 sufficient statistics; index n − 1 holds the n-gram counts. */
export interface BleuStatistics {
  /** Clipped n-gram matches of the candidate against the reference. */
  matches: number[];
  /** n-grams in the candidate. */
  candidateNgrams: number[];
  candidateLength: number;
  referenceLength: number;
}

const BLEU_MAX_ORDER = 4;

/** ROUGE tokens: lowercased text split on whitespace runs, empty tokens dropped. */
export function rougeTokens(text: string): string[] {
  return pythonSplit(text.toLowerCase());
}

/** Counts of the n-grams of one order; tokens hold no whitespace, so a space-joined key is unambiguous. */
function countNgrams(tokens: string[], order: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let start = 0; start + order <= tokens.length; start++) {
    const key = tokens.slice(start, start + order).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Σ over n-grams of min(count in a, count in b). */
function clippedMatches(a: Map<string, number>, b: Map<string, number>): number {
  let matches = 0;
  for (const [key, count] of a) matches += Math.min(count, b.get(key) ?? 0);
  return matches;
}

function fMeasure(matches: number, predictedCount: number, referenceCount: number): number {
  if (matches === 0 || predictedCount === 0 || referenceCount === 0) return 0;
  const precision = matches / predictedCount;
  const recall = matches / referenceCount;
  return (2 * precision * recall) / (precision + recall);
}

function rougeN(predicted: string[], reference: string[], order: number): number {
  const predictedNgrams = countNgrams(predicted, order);
  const referenceNgrams = countNgrams(reference, order);
  const predictedCount = Math.max(0, predicted.length - order + 1);
  const referenceCount = Math.max(0, reference.length - order + 1);
  return fMeasure(clippedMatches(predictedNgrams, referenceNgrams), predictedCount, referenceCount);
}

/** Length of the longest common subsequence of two token lists (one DP row over b). */
function longestCommonSubsequence(a: string[], b: string[]): number {
  const ids = new Map<string, number>();
  const idOf = (token: string): number => {
    let id = ids.get(token);
    if (id === undefined) ids.set(token, (id = ids.size));
    return id;
  };
  const aIds = Int32Array.from(a, idOf);
  const bIds = Int32Array.from(b, idOf);
  const row = new Int32Array(bIds.length + 1); // row[j]: LCS of a[0, i) and b[0, j)
  for (let i = 0; i < aIds.length; i++) {
    let diagonal = 0; // LCS of a[0, i) and b[0, j) before row[j] is overwritten
    for (let j = 1; j <= bIds.length; j++) {
      const above = row[j];
      row[j] = aIds[i] === bIds[j - 1] ? diagonal + 1 : Math.max(above, row[j - 1]);
      diagonal = above;
    }
  }
  return row[bIds.length];
}

function rougeL(predicted: string[], reference: string[]): number {
  if (predicted.length === 0 || reference.length === 0) return 0;
  return fMeasure(longestCommonSubsequence(predicted, reference), predicted.length, reference.length);
}

export function emptyBleuStatistics(): BleuStatistics {
  return {
    matches: new Array<number>(BLEU_MAX_ORDER).fill(0),
    candidateNgrams: new Array<number>(BLEU_MAX_ORDER).fill(0),
    candidateLength: 0,
    referenceLength: 0,
  };
}

/** One example's BLEU-4 statistics: candidate = the model's prediction, reference = the dataset's. */
export function bleuStatistics(prediction: string, reference: string): BleuStatistics {
  const candidateTokens = pythonSplit(prediction);
  const referenceTokens = pythonSplit(reference);
  const statistics = emptyBleuStatistics();
  statistics.candidateLength = candidateTokens.length;
  statistics.referenceLength = referenceTokens.length;
  for (let order = 1; order <= BLEU_MAX_ORDER; order++) {
    const candidateNgrams = countNgrams(candidateTokens, order);
    statistics.matches[order - 1] = clippedMatches(candidateNgrams, countNgrams(referenceTokens, order));
    statistics.candidateNgrams[order - 1] = Math.max(0, candidateTokens.length - order + 1);
  }
  return statistics;
}

/** Adds `example` into `total` in place. */
export function addBleuStatistics(total: BleuStatistics, example: BleuStatistics): void {
  for (let index = 0; index < BLEU_MAX_ORDER; index++) {
    total.matches[index] += example.matches[index];
    total.candidateNgrams[index] += example.candidateNgrams[index];
  }
  total.candidateLength += example.candidateLength;
  total.referenceLength += example.referenceLength;
}

/** Unsmoothed BLEU-4 from summed statistics; 0 when some order has no match (or nothing was added). */
export function bleuFromStatistics(statistics: BleuStatistics): number {
  if (statistics.matches.some((matches) => matches === 0)) return 0;
  let logPrecisionSum = 0;
  for (let index = 0; index < BLEU_MAX_ORDER; index++) {
    logPrecisionSum += Math.log(statistics.matches[index] / statistics.candidateNgrams[index]) / BLEU_MAX_ORDER;
  }
  const { candidateLength, referenceLength } = statistics;
  const brevityPenalty = candidateLength > referenceLength ? 1 : Math.exp(1 - referenceLength / candidateLength);
  return brevityPenalty * Math.exp(logPrecisionSum);
}

/** Corpus BLEU-4 of predictions[i] against references[i]. */
export function bleuScore(predictions: string[], references: string[]): number {
  if (predictions.length !== references.length) {
    throw new Error(`bleuScore: ${predictions.length} predictions but ${references.length} references`);
  }
  const total = emptyBleuStatistics();
  predictions.forEach((prediction, index) => addBleuStatistics(total, bleuStatistics(prediction, references[index])));
  return bleuFromStatistics(total);
}

/** The Unicode code points of a string (a lone surrogate counts as one, as in Python). */
function codePoints(text: string): Int32Array {
  const points = new Int32Array(text.length);
  let count = 0;
  for (const character of text) points[count++] = character.codePointAt(0)!;
  return points.subarray(0, count);
}

/** Exact Levenshtein distance over code points, unit costs; O(|a|·|b|) time, one DP row of memory. */
export function characterEditDistance(a: string, b: string): number {
  let longer = codePoints(a);
  let shorter = codePoints(b);
  if (longer.length < shorter.length) [longer, shorter] = [shorter, longer];

  // A common prefix and suffix cost nothing; dropping them first shrinks the table.
  let prefix = 0;
  while (prefix < shorter.length && longer[prefix] === shorter[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < shorter.length - prefix &&
    longer[longer.length - 1 - suffix] === shorter[shorter.length - 1 - suffix]
  ) {
    suffix++;
  }
  longer = longer.subarray(prefix, longer.length - suffix);
  shorter = shorter.subarray(prefix, shorter.length - suffix);

  const row = new Int32Array(shorter.length + 1); // row[j]: distance of longer[0, i) to shorter[0, j)
  for (let j = 0; j <= shorter.length; j++) row[j] = j;
  for (let i = 1; i <= longer.length; i++) {
    let diagonal = row[0]; // distance of longer[0, i − 1) to shorter[0, j − 1)
    row[0] = i;
    for (let j = 1; j <= shorter.length; j++) {
      const above = row[j];
      const substitution = diagonal + (longer[i - 1] === shorter[j - 1] ? 0 : 1);
      row[j] = Math.min(substitution, above + 1, row[j - 1] + 1);
      diagonal = above;
    }
  }
  return row[shorter.length];
}

/** Half-width of torchmetrics' (sacrebleu's) Levenshtein band, _BEAM_WIDTH. */
const TORCHMETRICS_BEAM_WIDTH = 25;

/**
 * torchmetrics' character edit distance `edit_distance(preds, target)`: Levenshtein over code points with one DP row
 * per code point of `preds`, computing in row i only the columns around ⌊i·|target|/|preds|⌋ (all of them in the last
 * row). Cells outside the band are unreachable, so the result is the exact distance when the best alignment stays in
 * the band and larger otherwise. Not symmetric; LayerSkip's call makes `preds` the dataset reference.
 */
export function torchmetricsEditDistance(preds: string, target: string): number {
  const rowPoints = codePoints(preds);
  const columnPoints = codePoints(target);
  const rowCount = rowPoints.length;
  const columnCount = columnPoints.length;
  const lengthRatio = rowCount > 0 ? columnCount / rowCount : 1;
  const halfRatio = lengthRatio / 2;
  const beamWidth =
    halfRatio > TORCHMETRICS_BEAM_WIDTH ? Math.ceil(halfRatio + TORCHMETRICS_BEAM_WIDTH) : TORCHMETRICS_BEAM_WIDTH;

  // Two rows, Infinity outside the band each was computed over.
  let previous = Float64Array.from({ length: columnCount + 1 }, (_, j) => j); // (columnCount + 1)
  let current = new Float64Array(columnCount + 1).fill(Infinity); // (columnCount + 1)
  let currentBandStart = 0;
  let currentBandEnd = 0;
  let previousBandStart = 0;
  let previousBandEnd = columnCount + 1;
  for (let i = 1; i <= rowCount; i++) {
    current.fill(Infinity, currentBandStart, currentBandEnd);
    const pseudoDiagonal = Math.floor(i * lengthRatio);
    const bandStart = Math.max(0, pseudoDiagonal - beamWidth);
    const bandEnd = i === rowCount ? columnCount + 1 : Math.min(columnCount + 1, pseudoDiagonal + beamWidth);
    for (let j = bandStart; j < bandEnd; j++) {
      if (j === 0) {
        current[0] = previous[0] + 1;
        continue;
      }
      const substitution = previous[j - 1] + (rowPoints[i - 1] === columnPoints[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, previous[j] + 1, current[j - 1] + 1);
    }
    [previous, current] = [current, previous];
    [currentBandStart, currentBandEnd] = [previousBandStart, previousBandEnd];
    [previousBandStart, previousBandEnd] = [bandStart, bandEnd];
  }
  return previous[columnCount];
}

function checkText(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeof value}`);
}

/** ROUGE F-measures and edit distances of one model prediction against its reference. */
export function scoreExample(prediction: string, reference: string): ExampleScores {
  checkText(prediction, 'prediction');
  checkText(reference, 'reference');
  const predictedTokens = rougeTokens(prediction);
  const referenceTokens = rougeTokens(reference);
  return {
    rouge1: rougeN(predictedTokens, referenceTokens, 1),
    rouge2: rougeN(predictedTokens, referenceTokens, 2),
    rouge3: rougeN(predictedTokens, referenceTokens, 3),
    rougeL: rougeL(predictedTokens, referenceTokens),
    editDistance: characterEditDistance(prediction, reference),
    torchmetricsEditDistance: torchmetricsEditDistance(reference, prediction),
  };
}

/** Running text metrics over a benchmark, one example at a time. */
export class TextMetrics {
  private exampleCount = 0;
  private readonly scoreSums: ExampleScores = {
    rouge1: 0,
    rouge2: 0,
    rouge3: 0,
    rougeL: 0,
    editDistance: 0,
    torchmetricsEditDistance: 0,
  };
  private readonly bleuTotals = emptyBleuStatistics();

  /** Scores one example, folds it into the totals and returns its own scores. */
  add(prediction: string, reference: string): ExampleScores {
    const scores = scoreExample(prediction, reference);
    for (const key of Object.keys(this.scoreSums) as (keyof ExampleScores)[]) this.scoreSums[key] += scores[key];
    addBleuStatistics(this.bleuTotals, bleuStatistics(prediction, reference));
    this.exampleCount++;
    return scores;
  }

  get count(): number {
    return this.exampleCount;
  }

  /** Means of the per-example scores and the corpus BLEU so far; all 0 before the first example. */
  summary(): TextMetricsSummary {
    const mean = (sum: number): number => (this.exampleCount === 0 ? 0 : sum / this.exampleCount);
    return {
      count: this.exampleCount,
      rouge1: mean(this.scoreSums.rouge1),
      rouge2: mean(this.scoreSums.rouge2),
      rouge3: mean(this.scoreSums.rouge3),
      rougeL: mean(this.scoreSums.rougeL),
      bleu4: bleuFromStatistics(this.bleuTotals),
      editDistance: mean(this.scoreSums.editDistance),
      torchmetricsEditDistance: mean(this.scoreSums.torchmetricsEditDistance),
    };
  }
}
