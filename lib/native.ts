// The raw native binding, typed once. Everything else in lib/ goes through the classes in model.ts; nothing
// outside this file touches the addon directly.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeModelInfo {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number;
  eosTokenIds: number[];
  /** Dtype of the layer matrices as they run: "BF16" | "F16" | "F32", or "q8" | "q4" when quantized. */
  dtype: string;
  /** "cpu" or "cuda". */
  device: string;
  /** e.g. "cpu (avx512bf16, 2 threads)": the device and, on the CPU, the kernel variant and threads. */
  backend: string;
  /** Why device "auto" fell back to the CPU ("" when it did not). */
  deviceFallbackReason: string;
  weightBytesPerToken: number;
  weightBytesPerLayer: number;
  headWeightBytes: number;
  /** The LM head's dtype as it runs ("BF16", "q8", …). */
  headDtype: string;
  /** The head self-speculative drafts use: the draft head's format, else headDtype. */
  draftHeadDtype: string;
  draftHeadWeightBytes: number;
  /**
   * Bytes of weights held in the backend's memory after loading: on CUDA the device copies (rows padded to 64
   * columns) and f32 norm vectors; on the CPU the mapped checkpoint matrices plus f32 norm copies.
   */
  residentWeightBytes: number;
  /** CUDA: free device memory right after the weights were uploaded; null on the CPU. */
  deviceFreeBytes: number | null;
  /** CUDA: total device memory; null on the CPU. */
  deviceTotalBytes: number | null;
}

/** Called after each tensor is uploaded: checkpoint bytes so far and in all; increasing, ends at the total. */
export type LoadProgressCallback = (uploadedBytes: number, totalBytes: number) => void;

export interface NativeLoadOptions {
  /** "cpu" (default), "cuda" or "auto". */
  device?: string;
  /** CPU threads; 0 = one per core. */
  threads?: number;
  /** CPU kernel variant: "" or "auto" (LAYERSKIP_CPU, else the best supported), "scalar", "avx2", "avx512", "avx512bf16", "amx". */
  cpuKernels?: string;
  /** '' (as stored), 'q8' or 'q4'. */
  weights?: string;
  /** '' (none), 'q8' or 'q4': the quantized draft head. */
  draftHead?: string;
  /** Progress while uploading weights; calls may be coalesced, the last one always reports the total. */
  onProgress?: LoadProgressCallback;
}

/** What probing CUDA device `deviceIndex` found; `reason` says why it is not usable ("" when it is). */
export interface NativeCudaProbe {
  usable: boolean;
  reason: string;
  name: string;
  totalBytes: number;
  freeBytes: number;
}

export interface NativeEvaluateOptions {
  /** Run layers [0, layerEnd); default all. */
  layerEnd?: number;
  /** Compute logits and pick a token for the last `logitRows` tokens (0 = none); default 1. */
  logitRows?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** One uniform in [0, 1) per logit row; required when temperature > 0. */
  uniforms?: Float64Array;
}

export interface NativeEvaluateResult {
  tokens: Int32Array;
  probabilities: Float32Array;
}

export interface NativeSamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
}

export interface NativeDraftOptions extends NativeSamplingOptions {
  /** E: the draft runs layers [0, exitLayer). */
  exitLayer: number;
  /** A uniform in [0, 1); required when temperature > 0. */
  uniform?: number;
}

/** One draft pass's proposal (core/context.h DraftProposal). */
export interface NativeDraftProposal {
  token: number;
  /** p_draft(token). */
  probability: number;
  /** The draft distribution's top probability. */
  confidence: number;
}

export interface NativeDraftRunOptions extends NativeSamplingOptions {
  /** E: the drafts run layers [0, exitLayer). */
  exitLayer: number;
  /** Stop once this many proposals are kept (0: one pass whose proposal is dropped). */
  maxDrafts: number;
  /** A proposal whose top probability is below this is dropped and ends the run (0 = never). */
  draftConfidence?: number;
  /** A kept proposal among these ends the run. */
  stopTokenIds?: Int32Array;
  /** max(1, maxDrafts) uniforms in [0, 1), one per pass; required when temperature > 0. */
  uniforms?: Float64Array;
}

/** The kept proposals of one draft phase, in order (see NativeDraftProposal). */
export interface NativeDraftRun {
  tokens: Int32Array;
  probabilities: Float32Array;
  confidences: Float32Array;
}

export interface NativeVerifyOptions extends NativeSamplingOptions {
  /** draftCount + 1 uniforms in [0, 1); required when temperature > 0. */
  uniforms?: Float64Array;
}

/**
 * Row i verifies draft i (the token after the step's position n + i); draftCount + 1 rows. Greedy: `tokens` are
 * the verifier's argmax. Sampling: tokens[i] is drawn from normalize(max(0, p_verify − p_draft)) for i <
 * draftCount (used at the first rejection) and from p_verify for the last row (the bonus token);
 * verify/draftProbabilities[i] are p_verify(d) and p_draft(d) of draft i (greedy: 1 or 0, and 1).
 */
export interface NativeVerifyResult {
  tokens: Int32Array;
  verifyProbabilities: Float32Array;
  draftProbabilities: Float32Array;
}

/**
 * Per-exit-layer sums over one window's predictions (core/exit_evaluation.h); index l − 1 is exit layer l (layers
 * [0, l), then the final norm and LM head).
 */
export interface NativeExitLayerSums {
  /** (layers) Σ −log p(next token). */
  nll: Float64Array;
  /** (layers) predictions whose argmax (lowest id on ties) is the next token. */
  correct: Float64Array;
  /** (layers) predictions whose argmax equals the last layer's. */
  agree: Float64Array;
  /** Predictions per layer: tokens.length − 1. */
  count: number;
}

export interface NativeContext {
  evaluate(tokens: Int32Array, options?: NativeEvaluateOptions): Promise<NativeEvaluateResult>;
  /**
   * Scores a window of 2..contextLength() + 1 tokens at every exit layer: position t predicts tokens[t + 1]. Starts
   * from an empty cache and leaves it holding tokens[0, length − 1).
   */
  evaluateExitLayers(tokens: Int32Array): Promise<NativeExitLayerSums>;
  /** Sizes the exit cache (numSpeculations + 1 hidden rows) once; it only grows. */
  reserveSpeculation(numSpeculations: number): void;
  /** Runs `token` through layers [0, exitLayer) at the step's next position and proposes the token after it. */
  draft(token: number, options: NativeDraftOptions): Promise<NativeDraftProposal>;
  /**
   * A whole draft phase in one call: draft from `token`, then from each kept proposal, until maxDrafts are kept, a
   * kept proposal is a stop token, or one falls below draftConfidence (dropped; verify(tokens.length) then drops its
   * pass too).
   */
  draftRun(token: number, options: NativeDraftRunOptions): Promise<NativeDraftRun>;
  /** Runs layers [exitLayer, L) once over the step's positions and picks each row's token (see NativeVerifyResult). */
  verify(draftCount: number, options?: NativeVerifyOptions): Promise<NativeVerifyResult>;
  /** Rows in the exit cache (0 between speculative steps). */
  exitRows(): number;
  /** Greedy steps: the last draft pass's proposal becomes `token` (a pick made from readLogits(1) after draft()). */
  replaceProposal(token: number): void;
  readLogits(rows: number): Float32Array;
  readHidden(rows: number): Float32Array;
  truncate(length: number): void;
  length(): number;
  /** Positions the KV cache holds. */
  contextLength(): number;
  layerLength(layer: number): number;
  dispose(): void;
}

export interface NativeContextOptions {
  contextLength?: number;
  maxBatch?: number;
  maxLogitRows?: number;
}

/** One sequence's work in a batched step (core/batch.h): its context and what it runs. */
export type NativeBatchItem = NativeSamplingOptions & {
  context: NativeContext;
  uniforms?: Float64Array;
  /** A picking forward or a verify also returns the logits rows its picks were made from. */
  logits?: boolean;
} & (
    | { kind: 'forward'; tokens: Int32Array; layerEnd: number; pick: boolean }
    | { kind: 'draft'; token: number; exitLayer: number }
    | { kind: 'verify'; draftCount: number }
  );

/** Per item, in order: forward { token, probability } when it picks; draft a proposal; verify its rows. */
export type NativeBatchResult = Partial<NativeDraftProposal> & Partial<NativeVerifyResult> & { logits?: Float32Array };

/**
 * Steps several contexts of one model in one forward pass: every layer's weights are read once for all rows, each
 * sequence attends over its own cache. Results are bit-identical to the same calls on each context alone.
 */
export interface NativeBatch {
  step(items: NativeBatchItem[]): Promise<NativeBatchResult[]>;
  /** Rows one layer may hold in a step, and logit rows (picks + drafts + verify rows) a step may produce. */
  maxRows(): number;
  maxLogitRows(): number;
  dispose(): void;
}

export interface NativeModel {
  info(): NativeModelInfo;
  createContext(options?: NativeContextOptions): NativeContext;
  createBatch(options: { maxRows: number; maxLogitRows: number }): NativeBatch;
  dispose(): void;
}

export interface NativeTrainerTensor {
  /** HF tensor name, e.g. "model.layers.0.mlp.up_proj.weight". */
  name: string;
  shape: number[];
  /** Offset into the flat state arrays, in floats. */
  offset: number;
  size: number;
}

export interface NativeTrainerState {
  /** (total) f32 weights, flat in tensors() order. */
  parameters: Float32Array;
  /** (total) AdamW moments. */
  firstMoment?: Float32Array;
  secondMoment?: Float32Array;
  /** Optimizer steps taken (AdamW bias correction). */
  step?: number;
}

export interface NativeAdamWSettings {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  /** Global gradient-norm clip; 0 = none. */
  clipNorm?: number;
}

export interface NativeExitTotals {
  /** (layers) Σ −log p(target) of each exit. */
  loss: Float64Array;
  /** (layers) argmax hits. */
  correct: Float64Array;
  /** (layers) argmax equal to the last layer's. */
  agree: Float64Array;
  /** Positions counted per exit. */
  tokens: number;
}

export interface NativeTrainer {
  tensors(): NativeTrainerTensor[];
  getState(): Required<NativeTrainerState>;
  /** A copy of the weights alone, flat in tensors() order. */
  getParameters(): Float32Array;
  setState(state: NativeTrainerState): void;
  /**
   * One AdamW step over `batch` sequences of rows + 1 tokens (inputs [0, rows), targets [1, rows]).
   * dropped: (batch · layers) nonzero = layer skipped for that sequence; exitWeights: (layers) loss weights.
   */
  step(tokens: Int32Array, batch: number, rows: number, dropped: Uint8Array, exitWeights: Float32Array,
    adamw: NativeAdamWSettings): Promise<{ exitLoss: Float64Array; gradientNorm: number }>;
  /** Every exit's totals without dropout. */
  evaluate(tokens: Int32Array, batch: number, rows: number): Promise<NativeExitTotals>;
}

/** One CPU kernel variant of this build. */
export interface NativeCpuKernels {
  name: string;
  description: string;
  /** Whether this processor can run it; `missing` names the features it lacks ("" when runnable). */
  runnable: boolean;
  missing: string;
  /** Rounds activations below f32 (avx512bf16 and amx, like llama.cpp): faster, less exact; never the default. */
  roundsActivations: boolean;
}

/** The processor and the CPU kernel variants this build has. */
export interface NativeCpuInfo {
  /** e.g. "AMD EPYC 9R45". */
  model: string;
  /** The instruction-set extensions the kernels care about that are present, space separated. */
  features: string;
  /** The variant a CPU model gets without cpuKernels (LAYERSKIP_CPU, else the best runnable exact one). */
  defaultKernels: string;
  /** Why LAYERSKIP_CPU could not be honoured ("" when it was, or is unset). */
  defaultKernelsError: string;
  kernels: NativeCpuKernels[];
}

export interface NativeQuantizeReport {
  tensors: number;
  quantizedTensors: number;
  inputBytes: number;
  outputBytes: number;
}

export interface NativeBinding {
  /** The processor, its features and the CPU kernel variants (synchronous). */
  cpuInfo(): NativeCpuInfo;
  NativeModel: { load(dir: string, options: NativeLoadOptions): Promise<NativeModel> };
  /** new NativeTrainer(config.json text, options): f32 weights initialized from `seed`. */
  NativeTrainer: new (configJson: string, options: { threads?: number; maxRows: number; seed?: number }) => NativeTrainer;
  cudaCompiledIn: boolean;
  /** Asks the driver about a CUDA device (default 0) the way device "cuda" would, without creating a backend. */
  probeCuda(deviceIndex?: number): NativeCudaProbe;
  /** Writes `dir`'s weights quantized into the safetensors file `outPath` (core/quantize_checkpoint.h). */
  quantizeCheckpoint(
    dir: string,
    outPath: string,
    options: { type: string; keepHead?: boolean; threads?: number; onProgress?: LoadProgressCallback },
  ): Promise<NativeQuantizeReport>;
  /** Host memory read bandwidth in bytes/s (best of 5 passes over a buffer of `megabytes`). */
  measureReadBandwidth(threads: number, megabytes: number): number;
}

/** The folder holding layerskip's package.json (lib/ in development, dist/lib/ when compiled). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

let cached: NativeBinding | undefined;

/** Loads the addon, trying each build location and reporting every failure in one message. */
export function loadNativeBinding(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.LAYERSKIP_ADDON_PATH,
    path.join(packageRoot(), 'build', 'Release', 'layerskip.node'),
    path.join(packageRoot(), 'build', 'Debug', 'layerskip.node'),
  ].filter((candidate): candidate is string => Boolean(candidate));
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      cached = require(candidate) as NativeBinding;
      return cached;
    } catch (error) {
      failures.push(`  ${candidate}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `layerskip: could not load the native addon. Tried:\n${failures.join('\n')}\n` +
      'Run `npm install` (or `npm run build:native`) in the layerskip package to build it.',
  );
}
