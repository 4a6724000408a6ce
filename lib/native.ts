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
  /** Stored dtype of the layer matrices: "BF16" | "F16" | "F32". */
  dtype: string;
  /** "cpu" or "cuda". */
  device: string;
  /** e.g. "cpu (avx2+fma, 2 threads)". */
  backend: string;
  /** Why device "auto" fell back to the CPU ("" when it did not). */
  deviceFallbackReason: string;
  weightBytesPerToken: number;
  weightBytesPerLayer: number;
  headWeightBytes: number;
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

export interface NativeContext {
  evaluate(tokens: Int32Array, options?: NativeEvaluateOptions): Promise<NativeEvaluateResult>;
  /** Sizes the exit cache (numSpeculations + 1 hidden rows) once; it only grows. */
  reserveSpeculation(numSpeculations: number): void;
  /** Runs `token` through layers [0, exitLayer) at the step's next position and proposes the token after it. */
  draft(token: number, options: NativeDraftOptions): Promise<NativeDraftProposal>;
  /** Runs layers [exitLayer, L) once over the step's positions and picks each row's token (see NativeVerifyResult). */
  verify(draftCount: number, options?: NativeVerifyOptions): Promise<NativeVerifyResult>;
  /** Rows in the exit cache (0 between speculative steps). */
  exitRows(): number;
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

export interface NativeModel {
  info(): NativeModelInfo;
  createContext(options?: NativeContextOptions): NativeContext;
  dispose(): void;
}

export interface NativeBinding {
  NativeModel: { load(dir: string, options: { device?: string; threads?: number }): Promise<NativeModel> };
  cudaCompiledIn: boolean;
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
