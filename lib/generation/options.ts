// Generation options: the public shape, LayerSkip's defaults, and validation with errors that name the option.
import type { SpeculationDefaults } from './checkpoint-defaults.js';
import type { SpeculationListener } from './self-speculative.js';

export type GenerationStrategy = 'autoregressive' | 'self_speculative';

export interface GenerationOptions {
  /** Most tokens to generate (LayerSkip's name). Default 512, bounded by the context. */
  maxSteps?: number;
  /** Alias of maxSteps. */
  maxTokens?: number;
  /** Sample instead of greedy decoding. Default: true when `temperature` > 0, else false; false forces greedy. */
  sample?: boolean;
  /** Sampling temperature; 0 = greedy. Default 0.6 when sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). Default 0. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). Default 0.9 when sampling. */
  topP?: number;
  /** Seed for sampling; the same seed gives the same output. Default: random. */
  seed?: number;
  /** Token ids that end generation. Default: the model's eos ids. */
  stopTokenIds?: number[];
  /** Strings that end generation; they are not included in the output. */
  stopStrings?: string[];
  /** Cancels generation; the result so far is returned with finishReason "abort". */
  signal?: AbortSignal;
  /** "autoregressive" (default) or "self_speculative". */
  generationStrategy?: GenerationStrategy;
  /** E: with autoregressive, early-exit decoding through the first E layers; with self_speculative, the draft depth. */
  exitLayer?: number;
  /** k: tokens drafted per self-speculative step. */
  numSpeculations?: number;
  /** Self-speculative: stop drafting when the draft's top probability falls below this. Default 0 (always k). */
  draftConfidence?: number;
  /**
   * Self-speculative: sees each draft proposal and each verify verdict (for speculative streamers). An async
   * listener is awaited; its rejection fails the generation with that error, as a throw does.
   */
  onSpeculation?: SpeculationListener;
  /** Add the tokenizer's BOS token as its files specify. Default true. */
  addSpecialTokens?: boolean;
  /** HF's repetition_penalty: > 1 discourages tokens already in the prompt or output. Default 1 (off). */
  repetitionPenalty?: number;
  /** HF's no_repeat_ngram_size: never repeat an n-gram of the prompt or output. Default 0 (off). */
  noRepeatNgramSize?: number;
  /** min-p sampling: drop tokens below minP × the top probability. Default 0 (off). */
  minP?: number;
  /** Report the log-probability of each generated token and this many alternatives (0–20). Default 0 (none). */
  logprobs?: number;
  /**
   * A prompt too long for the context: 'none' (default) is an error; 'left' drops its oldest tokens (keeping a
   * leading BOS) so that it leaves room for min(maxSteps, contextLength / 4) new tokens.
   */
  truncatePrompt?: 'none' | 'left';
  /**
   * Reuse the cached K/V of the previous generation's prompt where this prompt starts the same. Default true;
   * benchmarks turn it off so every run pays its whole prefill.
   */
  reusePromptCache?: boolean;
}

/** LayerSkip's sampling defaults (its generate.py): temperature 0.6, top-p 0.9. */
export const DEFAULT_TEMPERATURE = 0.6;
export const DEFAULT_TOP_P = 0.9;
/** Tokens generated when maxSteps is not given (LayerSkip's default). */
export const DEFAULT_MAX_STEPS = 512;
/** Drafts per self-speculative step when not given, in the API and every command (LayerSkip's examples use 6). */
export const DEFAULT_NUM_SPECULATIONS = 6;

export interface ResolvedOptions {
  maxSteps: number;
  temperature: number; // 0 = greedy
  topK: number;
  topP: number;
  seed: number;
  stopTokenIds: Set<number>;
  stopStrings: string[];
  signal?: AbortSignal;
  generationStrategy: GenerationStrategy;
  exitLayer: number; // = numLayers when not set
  numSpeculations: number;
  draftConfidence: number;
  onSpeculation?: SpeculationListener;
  addSpecialTokens: boolean;
  truncatePrompt: 'none' | 'left';
  reusePromptCache: boolean;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  minP: number;
  logprobs: number;
  /** The model's vocabulary size (rows of logits read back are this long). */
  vocabSize: number;
}

export interface ModelLimits {
  numLayers: number;
  vocabSize: number;
  eosTokenIds: number[];
  /** The checkpoint's own E and k (generation_config.json), for self-speculative generations that give none. */
  speculationDefaults?: SpeculationDefaults;
}

function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function numberOption(name: string, value: unknown, check: (n: number) => boolean, expectation: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw new RangeError(`${name} must be ${expectation}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function resolveOptions(options: GenerationOptions, limits: ModelLimits): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.maxSteps !== undefined && options.maxTokens !== undefined && options.maxSteps !== options.maxTokens) {
    throw new RangeError('maxSteps and maxTokens are aliases; give one of them');
  }
  const maxSteps = integerOption('maxSteps', options.maxSteps ?? options.maxTokens ?? DEFAULT_MAX_STEPS, 0, 1 << 24);
  // As in HF and llama.cpp: a temperature > 0 samples and 0 is greedy; `sample: false` (LayerSkip's --sample False)
  // forces greedy whatever the temperature.
  if (options.temperature !== undefined) {
    numberOption('temperature', options.temperature, (t) => t >= 0 && t <= 1000, 'a number in [0, 1000] (0 = greedy)');
  }
  const sample = options.sample ?? (options.temperature !== undefined && options.temperature > 0);
  if (typeof sample !== 'boolean') throw new TypeError('sample must be true or false');
  const temperature = sample ? (options.temperature ?? DEFAULT_TEMPERATURE) : 0;
  const topK = integerOption('topK', options.topK ?? 0, 0, limits.vocabSize);
  const topP = numberOption('topP', options.topP ?? (sample ? DEFAULT_TOP_P : 1), (p) => p > 0 && p <= 1, 'in (0, 1]');
  const seed =
    options.seed === undefined
      ? Math.floor(Math.random() * 2 ** 32)
      : integerOption('seed', options.seed, -(2 ** 53) + 1, 2 ** 53 - 1);

  const stopTokenIds = new Set<number>();
  for (const id of options.stopTokenIds ?? limits.eosTokenIds) {
    stopTokenIds.add(integerOption('stopTokenIds[]', id, 0, limits.vocabSize - 1));
  }
  const stopStrings = options.stopStrings ?? [];
  if (!Array.isArray(stopStrings) || stopStrings.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new TypeError('stopStrings must be an array of non-empty strings');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError('signal must be an AbortSignal');
  }

  const generationStrategy = options.generationStrategy ?? 'autoregressive';
  if (generationStrategy !== 'autoregressive' && generationStrategy !== 'self_speculative') {
    throw new RangeError(`generationStrategy must be "autoregressive" or "self_speculative", got ${JSON.stringify(generationStrategy)}`);
  }
  const speculative = generationStrategy === 'self_speculative';
  const checkpoint = speculative ? (limits.speculationDefaults ?? {}) : {};
  if (speculative && options.exitLayer === undefined && checkpoint.exitLayer === undefined) {
    // Drafting with every layer would accept everything and gain nothing: never do it silently.
    throw new RangeError(
      `exitLayer: self_speculative decoding needs the draft depth E (1 ≤ E < ${limits.numLayers}), and this checkpoint's ` +
        'generation_config.json has no assistant_early_exit; pass it, or measure the best with `layerskip sweep --write-defaults`',
    );
  }
  const exitLayer = integerOption('exitLayer', options.exitLayer ?? checkpoint.exitLayer ?? limits.numLayers, 1, limits.numLayers);
  const numSpeculations = integerOption('numSpeculations', options.numSpeculations ?? checkpoint.numSpeculations ?? DEFAULT_NUM_SPECULATIONS, 1, 64);
  const draftConfidence = numberOption('draftConfidence', options.draftConfidence ?? 0, (c) => c >= 0 && c <= 1, 'in [0, 1]');
  if (options.onSpeculation !== undefined && typeof options.onSpeculation !== 'function') {
    throw new TypeError('onSpeculation must be a function');
  }
  const addSpecialTokens = options.addSpecialTokens ?? true;
  const repetitionPenalty = numberOption('repetitionPenalty', options.repetitionPenalty ?? 1, (p) => p > 0 && p <= 100, 'in (0, 100]');
  const noRepeatNgramSize = integerOption('noRepeatNgramSize', options.noRepeatNgramSize ?? 0, 0, 1 << 16);
  const minP = numberOption('minP', options.minP ?? 0, (p) => p >= 0 && p <= 1, 'in [0, 1]');
  const logprobs = integerOption('logprobs', options.logprobs ?? 0, 0, 20);
  const reusePromptCache = options.reusePromptCache ?? true;
  if (typeof reusePromptCache !== 'boolean') throw new TypeError('reusePromptCache must be true or false');
  const truncatePrompt = options.truncatePrompt ?? 'none';
  if (truncatePrompt !== 'none' && truncatePrompt !== 'left') {
    throw new RangeError(`truncatePrompt must be "none" or "left", got ${JSON.stringify(truncatePrompt)}`);
  }

  return {
    maxSteps,
    temperature,
    topK,
    topP,
    seed,
    stopTokenIds,
    stopStrings,
    signal: options.signal,
    generationStrategy,
    exitLayer,
    numSpeculations,
    draftConfidence,
    onSpeculation: options.onSpeculation,
    addSpecialTokens,
    truncatePrompt,
    reusePromptCache,
    repetitionPenalty,
    noRepeatNgramSize,
    minP,
    logprobs,
    vocabSize: limits.vocabSize,
  };
}
