// Options of `layerskip train` / trainModel(), their defaults, and validation that names the bad option.
import type { DropoutShape, ExitCurriculum, ExitScale } from './schedules.js';
import { DROPOUT_SHAPES, EXIT_CURRICULA, EXIT_SCALES } from './schedules.js';

export interface ModelShape {
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  /** Tokenizer vocabulary size (a BPE tokenizer of this size is trained unless one is given). */
  vocabSize: number;
  /** max_position_embeddings. */
  contextLength: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
}

export interface TrainOptions {
  /** Files or folders of training text. */
  data: string[];
  /** Only files with these extensions (e.g. ['.py']); default: all. */
  extensions?: string[];
  /** File or folder names to skip inside the data folders (e.g. ['test', 'site-packages']). */
  exclude?: string[];
  /** Fraction of files held out for evaluation (by a hash of their path, so the same files on every machine). */
  heldOutFraction: number;
  /** Output folder: the HF checkpoint, tokenizer, checkpoint/ for resuming, train_log.jsonl. */
  out: string;
  /** Continue from this HF Llama checkpoint (continual pretraining / fine-tuning) instead of from scratch. */
  init?: string;
  /** Reuse tokenizer.json (+ tokenizer_config.json) from this folder instead of training one. */
  tokenizer?: string;
  shape: ModelShape;
  steps: number;
  batchSize: number;
  sequenceLength: number;
  learningRate: number;
  warmupSteps: number;
  minLearningRateRatio: number;
  weightDecay: number;
  clipNorm: number;
  beta1: number;
  beta2: number;
  seed: number;
  evalInterval: number;
  /** Held-out sequences per evaluation. */
  evalSequences: number;
  checkpointInterval: number;
  /** Continue from out/checkpoint/ when it exists. */
  resume: boolean;
  /** Start over in an `out` that already holds a run (without it, and without resume, such an `out` is refused). */
  overwrite?: boolean;
  /** p_max; 0 disables layer dropout. */
  layerDropout: number;
  layerDropoutShape: DropoutShape;
  /** S(t) = 2^(t/(T−1)) − 1 ('exp', the default from scratch) or 1 ('constant', the default with init). */
  layerDropoutSchedule?: 'exp' | 'constant';
  /** false: the loss is the last layer's only. */
  earlyExitLoss: boolean;
  /** Which layers get an exit loss: "all", a slice like "0::4", or "1,3,7" (0-based; the last is always in). */
  earlyExitLayers: string;
  earlyExitScale: ExitScale;
  earlyExitCurriculum: ExitCurriculum;
  /** R for the rotational curriculum. */
  earlyExitRotation: number;
  threads: number;
  /** dtype of the exported model.safetensors. */
  dtype: 'bf16' | 'f32';
}

export const DEFAULT_SHAPE: ModelShape = {
  numLayers: 8, hiddenSize: 256, numHeads: 4, numKvHeads: 2, intermediateSize: 768, vocabSize: 2048,
  contextLength: 256, ropeTheta: 10000, tieWordEmbeddings: true,
};

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, 'data' | 'out'> = {
  heldOutFraction: 0.03,
  shape: DEFAULT_SHAPE,
  steps: 1000,
  batchSize: 8,
  sequenceLength: 256,
  learningRate: 2e-3,
  warmupSteps: 50,
  minLearningRateRatio: 0.1,
  weightDecay: 0.1,
  clipNorm: 1.0,
  beta1: 0.9,
  beta2: 0.95,
  seed: 1,
  evalInterval: 100,
  evalSequences: 16,
  checkpointInterval: 100,
  resume: false,
  layerDropout: 0.1,
  layerDropoutShape: 'exp',
  earlyExitLoss: true,
  earlyExitLayers: 'all',
  earlyExitScale: 'sum_l',
  earlyExitCurriculum: 'none',
  earlyExitRotation: 2,
  threads: 0,
  dtype: 'bf16',
};

function check(condition: boolean, message: string): void {
  if (!condition) throw new RangeError(message);
}

const positiveInteger = (value: number) => Number.isInteger(value) && value > 0;

/** Throws a RangeError naming the first invalid option. */
export function validateTrainOptions(options: TrainOptions): void {
  const s = options.shape;
  check(options.data.length > 0, 'data: give at least one file or folder');
  check(typeof options.out === 'string' && options.out.length > 0, 'out: give an output folder');
  for (const [name, value] of Object.entries({
    steps: options.steps, batchSize: options.batchSize, sequenceLength: options.sequenceLength,
    evalInterval: options.evalInterval, evalSequences: options.evalSequences,
    checkpointInterval: options.checkpointInterval, earlyExitRotation: options.earlyExitRotation,
    numLayers: s.numLayers, hiddenSize: s.hiddenSize, numHeads: s.numHeads, numKvHeads: s.numKvHeads,
    intermediateSize: s.intermediateSize, vocabSize: s.vocabSize, contextLength: s.contextLength,
  })) check(positiveInteger(value), `${name} must be a positive integer, got ${value}`);
  check(s.hiddenSize % s.numHeads === 0, `hiddenSize (${s.hiddenSize}) must be a multiple of numHeads (${s.numHeads})`);
  check((s.hiddenSize / s.numHeads) % 2 === 0, `the head dimension hiddenSize / numHeads must be even`);
  check(s.numHeads % s.numKvHeads === 0, `numHeads (${s.numHeads}) must be a multiple of numKvHeads (${s.numKvHeads})`);
  check(s.vocabSize >= 258 + 2, `vocabSize must be at least 260 (256 bytes + special tokens), got ${s.vocabSize}`);
  check(options.sequenceLength <= s.contextLength,
    `sequenceLength (${options.sequenceLength}) must not exceed the context length (${s.contextLength})`);
  check(options.learningRate > 0 && options.learningRate < 1, `learningRate must be in (0, 1), got ${options.learningRate}`);
  check(Number.isInteger(options.warmupSteps) && options.warmupSteps >= 0, 'warmupSteps must be a non-negative integer');
  check(options.minLearningRateRatio >= 0 && options.minLearningRateRatio <= 1, 'minLearningRateRatio must be in [0, 1]');
  check(options.weightDecay >= 0, 'weightDecay must be ≥ 0');
  check(options.clipNorm >= 0, 'clipNorm must be ≥ 0 (0 = no clipping)');
  check(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1, 'beta1 and beta2 must be in [0, 1)');
  check(options.heldOutFraction >= 0 && options.heldOutFraction < 1, 'heldOutFraction must be in [0, 1)');
  check(options.layerDropout >= 0 && options.layerDropout < 1, `layerDropout must be in [0, 1), got ${options.layerDropout}`);
  check(DROPOUT_SHAPES.includes(options.layerDropoutShape), `layerDropoutShape must be one of ${DROPOUT_SHAPES.join(', ')}`);
  check(EXIT_SCALES.includes(options.earlyExitScale), `earlyExitScale must be one of ${EXIT_SCALES.join(', ')}`);
  check(EXIT_CURRICULA.includes(options.earlyExitCurriculum), `earlyExitCurriculum must be one of ${EXIT_CURRICULA.join(', ')}`);
  check(Number.isInteger(options.threads) && options.threads >= 0, 'threads must be a non-negative integer (0 = all cores)');
  check(options.dtype === 'bf16' || options.dtype === 'f32', `dtype must be bf16 or f32, got ${options.dtype}`);
}
