// Logits processing beyond temperature / top-k / top-p, as HF transformers' generate() applies it, in its order:
// processors on the raw logits (repetition_penalty, no_repeat_ngram_size), then the warpers (temperature, top-k,
// top-p, min-p), then greedy argmax or a draw. Done in TypeScript on logits rows read back from the engine (the
// slow path of generate.ts, taken only when one of these options is on), so the same function serves plain decoding,
// the draft passes and the verification rows of self-speculative decoding: every row is processed with the tokens
// that precede its position, which is what keeps greedy self-speculative output equal to plain decoding.
import type { Sampling } from './sequence.js';

export interface ProcessingOptions extends Sampling {
  /** HF's repetition_penalty θ: a seen token's logit is divided by θ when positive, multiplied when negative. 1 = off. */
  repetitionPenalty: number;
  /** HF's no_repeat_ngram_size n: a token that would repeat an n-gram of the context is banned. 0 = off. */
  noRepeatNgramSize: number;
  /** min-p: drop tokens whose probability is below minP × the top probability (after temperature). 0 = off. */
  minP: number;
}

export function processingActive(options: { repetitionPenalty: number; noRepeatNgramSize: number; minP: number; logprobs: number }): boolean {
  return options.repetitionPenalty !== 1 || options.noRepeatNgramSize > 0 || options.minP > 0 || options.logprobs > 0;
}

/** Applies the processors in place to a logits row whose position follows `context` (prompt + generated). */
export function applyProcessors(logits: Float32Array, context: readonly number[], options: ProcessingOptions): void {
  if (options.repetitionPenalty !== 1) {
    const penalty = options.repetitionPenalty;
    for (const token of new Set(context)) {
      const value = logits[token];
      logits[token] = value < 0 ? value * penalty : value / penalty;
    }
  }
  const n = options.noRepeatNgramSize;
  if (n > 0 && context.length >= n - 1) {
    const start = context.length - (n - 1);
    for (let i = 0; i + n - 1 < context.length; i++) {
      let matches = true;
      for (let j = 0; j < n - 1 && matches; j++) matches = context[i + j] === context[start + j];
      if (matches) logits[context[i + n - 1]] = -Infinity;
    }
  }
}

/** The argmax (lowest id on ties), as the engine's greedy pick. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** log-softmax of a processed logits row: the model's distribution after the processors (temperature 1). */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  const logZ = max + Math.log(sum);
  return Float64Array.from(logits, (value) => value - logZ);
}

/**
 * The sampling distribution of a processed logits row: softmax at the temperature, then top-k, top-p and min-p
 * (renormalized). Greedy (temperature 0): all mass on the argmax.
 */
export function samplingDistribution(logits: Float32Array, options: ProcessingOptions): Float64Array {
  const probabilities = new Float64Array(logits.length);
  if (options.temperature <= 0) {
    probabilities[argmax(logits)] = 1;
    return probabilities;
  }
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += probabilities[i] = Math.exp((logits[i] - max) / options.temperature);
  for (let i = 0; i < logits.length; i++) probabilities[i] /= sum;
  // Truncations keep the most likely tokens: find the kept set by walking tokens in decreasing probability.
  const order = Array.from(probabilities.keys()).filter((i) => probabilities[i] > 0).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  let keep = order.length;
  if (options.topK > 0) keep = Math.min(keep, options.topK);
  if (options.topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += probabilities[order[i]];
      if (mass >= options.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  if (options.minP > 0) {
    const floor = options.minP * probabilities[order[0]];
    let kept = 0;
    while (kept < keep && probabilities[order[kept]] >= floor) kept++;
    keep = Math.max(1, kept);
  }
  const truncated = new Float64Array(logits.length);
  let keptMass = 0;
  for (let i = 0; i < keep; i++) keptMass += probabilities[order[i]];
  for (let i = 0; i < keep; i++) truncated[order[i]] = probabilities[order[i]] / keptMass;
  return truncated;
}

/** A draw from `probabilities` with a uniform in [0, 1) (inverse CDF over token ids). */
export function draw(probabilities: Float64Array, uniform: number): number {
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probabilities.length; i++) {
    if (probabilities[i] <= 0) continue;
    cumulative += probabilities[i];
    last = i;
    if (uniform < cumulative) return i;
  }
  return last;
}

/** One generated token's log-probability and the `count` most likely alternatives (OpenAI's top_logprobs). */
export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

export function tokenLogprob(logprobs: Float64Array, token: number, count: number): TokenLogprob {
  const top: { token: number; logprob: number }[] = [];
  for (let i = 0; i < logprobs.length; i++) {
    if (top.length < count || logprobs[i] > top[top.length - 1].logprob) {
      top.push({ token: i, logprob: logprobs[i] });
      top.sort((a, b) => b.logprob - a.logprob || a.token - b.token);
      if (top.length > count) top.pop();
    }
  }
  return { token, logprob: logprobs[token], top };
}
