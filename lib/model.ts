// LayerSkipModel: a loaded checkpoint with its tokenizer and one native context, and the public generate/stream API.
import fs from 'node:fs';
import path from 'node:path';

import { median } from './benchmark.js';
import { resolveModelDir } from './model-path.js';
import { resolveOptions, type GenerationOptions } from './generation/options.js';
import { MAX_CONTEXT_LENGTH, MAX_THREADS } from './limits.js';
import { runGeneration, type GenerationResult } from './generation/generate.js';
import { Sequence } from './generation/sequence.js';
import {
  loadNativeBinding,
  type LoadProgressCallback,
  type NativeBatch,
  type NativeContext,
  type NativeCpuInfo,
  type NativeExitLayerSums,
  type NativeModel,
  type NativeModelInfo,
} from './native.js';
import { LlamaTokenizer } from './tokenizer.js';
import { readSpeculationDefaults, type SpeculationDefaults } from './generation/checkpoint-defaults.js';

export type Device = 'cpu' | 'cuda' | 'auto';

/** The CPU kernel variants, lowest first (see `cpuInfo()` for which this processor runs). */
export const CPU_KERNEL_NAMES = ['auto', 'scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'] as const;
export type CpuKernelsName = (typeof CPU_KERNEL_NAMES)[number];
/** Block-quantized weight formats (README "Quantized weights"): q8 = 8.5 bits per weight, q4 = 5 bits. */
export const QUANT_TYPES = ['q8', 'q4'] as const;
export type QuantType = (typeof QUANT_TYPES)[number];

/** The processor, its features and the CPU kernel variants this build has, and which this processor runs. */
export function cpuInfo(): NativeCpuInfo {
  return loadNativeBinding().cpuInfo();
}

export interface LoadOptions {
  /** "cpu" (default), "cuda", or "auto" (CUDA when a usable GPU is present). */
  device?: Device;
  /** CPU threads; default one per core. At most 256 (MAX_THREADS); more than 4 per available core run as that many. */
  threads?: number;
  /**
   * CPU kernel variant: 'auto' (default: the LAYERSKIP_CPU environment variable, else the best this processor
   * supports), 'scalar', 'avx2', 'avx512', 'avx512bf16' or 'amx'. A variant the processor lacks is an error naming the
   * missing features. `cpuInfo()` lists them.
   */
  cpuKernels?: CpuKernelsName;
  /**
   * Quantize the layer matrices, embedding and LM head while loading ('q8' or 'q4'); default: run them as stored.
   * A checkpoint written by `layerskip quantize` is already quantized and loads as is (this option must then be
   * unset or name the same type).
   */
  weights?: QuantType;
  /**
   * Keep a 'q8' or 'q4' copy of the LM head for self-speculative drafts only. Verification, hidden states and the
   * KV cache use the loaded weights, so greedy output is unchanged and speculative sampling stays exact.
   */
  draftHead?: QuantType;
  /**
   * Positions the KV cache holds; default min(max_position_embeddings, 4096). At most 2^20 (MAX_CONTEXT_LENGTH), and
   * refused before allocating when the KV cache and RoPE tables would not fit in memory.
   */
  contextLength?: number;
  /**
   * Called while the weights upload, after each tensor, with checkpoint bytes uploaded so far and the total
   * (increasing; the last call reports the total). A throw stops the upload and fails the load with its message.
   */
  onProgress?: LoadProgressCallback;
}

export type ModelInfo = NativeModelInfo & {
  dir: string;
  contextLength: number;
  /** Self-speculative E and k from the checkpoint's generation_config.json, used when a generation gives none. */
  speculationDefaults: SpeculationDefaults;
};

export class LayerSkipModel {
  private native: NativeModel | undefined;
  private context: NativeContext | undefined;
  private readonly sequence: Sequence;
  // Generations on one model run one after another; this is the tail of that queue.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    native: NativeModel,
    context: NativeContext,
    /** Undefined when the folder has no tokenizer.json: prompts must then be token ids. */
    readonly tokenizer: LlamaTokenizer | undefined,
    readonly info: ModelInfo,
  ) {
    this.native = native;
    this.context = context;
    this.sequence = new Sequence(context, info.contextLength, info.numLayers);
  }

  /** Loads a HuggingFace Llama checkpoint folder, or a Hub id ("org/name") already in the HuggingFace cache. */
  static async load(dir: string, options: LoadOptions = {}): Promise<LayerSkipModel> {
    if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('model directory must be a non-empty string');
    const device = options.device ?? 'cpu';
    if (!['cpu', 'cuda', 'auto'].includes(device)) {
      throw new RangeError(`device must be "cpu", "cuda" or "auto", got ${JSON.stringify(device)}`);
    }
    if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > MAX_THREADS)) {
      throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${JSON.stringify(options.threads)}`);
    }
    const contextLength = options.contextLength;
    if (contextLength !== undefined && (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > MAX_CONTEXT_LENGTH)) {
      throw new RangeError(`contextLength must be an integer in [1, ${MAX_CONTEXT_LENGTH}], got ${JSON.stringify(contextLength)}`);
    }
    if (options.cpuKernels !== undefined && !(CPU_KERNEL_NAMES as readonly string[]).includes(options.cpuKernels)) {
      throw new RangeError(`cpuKernels must be one of ${CPU_KERNEL_NAMES.join(', ')}, got ${JSON.stringify(options.cpuKernels)}`);
    }
    for (const key of ['weights', 'draftHead'] as const) {
      const value = options[key];
      if (value !== undefined && !(QUANT_TYPES as readonly string[]).includes(value)) {
        throw new RangeError(`${key} must be one of ${QUANT_TYPES.join(', ')}, got ${JSON.stringify(value)}`);
      }
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError('onProgress must be a function');
    }
    const resolved = resolveModelDir(dir);
    const binding = loadNativeBinding();
    const tokenizer = fs.existsSync(path.join(resolved, 'tokenizer.json')) ? await LlamaTokenizer.fromDir(resolved) : undefined;
    const native = await binding.NativeModel.load(resolved, {
      device,
      threads: options.threads ?? 0,
      cpuKernels: options.cpuKernels ?? 'auto',
      weights: options.weights ?? '',
      draftHead: options.draftHead ?? '',
      onProgress: options.onProgress,
    });
    const nativeInfo = native.info();
    if (tokenizer && tokenizer.vocabSize > nativeInfo.vocabSize) {
      native.dispose();
      throw new Error(
        `${path.join(resolved, 'tokenizer.json')}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's ` +
          `vocab_size is ${nativeInfo.vocabSize}`,
      );
    }
    const maxPositions = nativeInfo.maxPositionEmbeddings;
    if (options.contextLength !== undefined && options.contextLength > maxPositions) {
      native.dispose();
      throw new RangeError(
        `contextLength ${options.contextLength} exceeds the checkpoint's max_position_embeddings (${maxPositions}): ` +
          'positions beyond what it was trained on give garbage',
      );
    }
    let context: NativeContext;
    let speculationDefaults: SpeculationDefaults;
    try {
      speculationDefaults = await readSpeculationDefaults(resolved, nativeInfo.numLayers);
      context = native.createContext({ contextLength: options.contextLength ?? 0 });
    } catch (error) {
      native.dispose();
      throw error;
    }
    const info = { ...nativeInfo, dir: resolved, contextLength: context.contextLength(), speculationDefaults };
    return new LayerSkipModel(native, context, tokenizer, info);
  }

  /** Generates a continuation of `prompt` (text, or token ids used as given). */
  generate(prompt: string | number[], options: GenerationOptions = {}): Promise<GenerationResult> {
    return this.enqueue(() => this.run(prompt, options));
  }

  /**
   * Streams the continuation as text pieces. The async iterator yields pieces as they become final;
   * `result` resolves with the same GenerationResult generate() returns.
   */
  stream(prompt: string | number[], options: GenerationOptions = {}): AsyncIterable<string> & { result: Promise<GenerationResult> } {
    const pieces: string[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    // Leaving the loop early (break, return, throw) cancels the generation: it ends within one step, reason "abort".
    const leftEarly = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, leftEarly.signal]) : leftEarly.signal;
    const result = this.enqueue(() =>
      this.run(prompt, { ...options, signal }, (piece) => {
        pieces.push(piece);
        wake?.();
      }),
    ).finally(() => {
      finished = true;
      wake?.();
    });
    result.catch(() => {}); // surfaced through the iterator and `result`, never as an unhandled rejection
    async function* iterate(): AsyncGenerator<string> {
      try {
        while (true) {
          if (pieces.length > 0) {
            yield pieces.shift()!;
            continue;
          }
          if (finished) {
            await result; // rethrows a generation error
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        if (!finished) leftEarly.abort();
      }
    }
    return Object.assign(iterate(), { result });
  }

  /**
   * Per-exit-layer sums over one window of token ids (NativeContext.evaluateExitLayers: position t predicts
   * window[t + 1]). Runs after any generation in progress and leaves the cache empty. evaluateExitLayers() in
   * eval/exit-layer-eval.ts turns a token stream into per-layer accuracy, perplexity and agreement with it.
   */
  scoreExitLayers(window: Int32Array): Promise<NativeExitLayerSums> {
    return this.enqueue(async () => {
      if (!this.context) throw new Error('the model has been disposed');
      try {
        return await this.context.evaluateExitLayers(window);
      } finally {
        this.sequence.truncate(0);
      }
    });
  }

  /**
   * Median milliseconds of one forward pass of `rows` tokens through every layer with logits for the last
   * `logitRows` of them, after a prefix of up to 16 tokens — what a decode step (rows 1) or a verify step (rows
   * k + 1) costs on this device. Runs at least `minRuns` times and for at least `minMs` (sub-millisecond passes
   * need many runs for a stable median), after one warm-up run. Runs after any generation in progress and leaves
   * the cache empty.
   */
  timeForwardPass(rows: number, logitRows: number, { minRuns = 5, minMs = 50 } = {}): Promise<number> {
    return this.enqueue(async () => {
      const context = this.context;
      if (!context) throw new Error('the model has been disposed');
      if (!Number.isInteger(rows) || rows < 1 || rows > this.info.contextLength) {
        throw new RangeError(`rows must be an integer in [1, ${this.info.contextLength}], got ${rows}`);
      }
      const prefixLength = Math.min(16, this.info.contextLength - rows);
      const ids = (count: number) => Int32Array.from({ length: count }, (_, i) => (i * 7919 + 13) % this.info.vocabSize);
      const times: number[] = [];
      try {
        context.truncate(0);
        if (prefixLength > 0) await context.evaluate(ids(prefixLength), { logitRows: 0 });
        const tokens = ids(rows);
        let total = 0;
        for (let run = 0; run <= minRuns || (total < minMs && run < 10_000); run++) {
          const started = performance.now();
          await context.evaluate(tokens, { logitRows });
          const ms = performance.now() - started;
          context.truncate(prefixLength);
          if (run === 0) continue; // warms caches and wakes the thread pool
          times.push(ms);
          total += ms;
        }
      } finally {
        this.sequence.truncate(0);
      }
      return median(times);
    });
  }

  /**
   * Native resources for a batching engine (lib/server/batch-engine.ts): `slots` fresh contexts of `contextLength`
   * positions and one batch runner stepping them together. The caller disposes them before the model.
   */
  createBatchResources(slots: number, options: { contextLength: number; maxRows: number; maxLogitRows: number }): {
    batch: NativeBatch;
    contexts: NativeContext[];
  } {
    if (!this.native) throw new Error('the model has been disposed');
    const contexts: NativeContext[] = [];
    try {
      for (let i = 0; i < slots; i++) contexts.push(this.native.createContext({ contextLength: options.contextLength }));
      const batch = this.native.createBatch({ maxRows: options.maxRows, maxLogitRows: options.maxLogitRows });
      return { batch, contexts };
    } catch (error) {
      for (const context of contexts) context.dispose();
      throw error;
    }
  }

  /** Token ids of `text` as this model's tokenizer encodes a prompt. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.requireTokenizer().encode(text, options);
  }

  decode(ids: number[]): string {
    return this.requireTokenizer().decode(ids);
  }

  /** Frees the KV cache and the weights; waits for a running generation to finish first. */
  async dispose(): Promise<void> {
    await this.queue.catch(() => {});
    this.context?.dispose();
    this.native?.dispose();
    this.context = undefined;
    this.native = undefined;
  }

  get disposed(): boolean {
    return this.native === undefined;
  }

  private requireTokenizer(): LlamaTokenizer {
    if (!this.tokenizer) {
      throw new Error(`${this.info.dir} has no tokenizer.json: give prompts as token ids, or add the tokenizer files`);
    }
    return this.tokenizer;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }

  private async run(prompt: string | number[], options: GenerationOptions, onText?: (piece: string) => void) {
    if (!this.context) throw new Error('the model has been disposed');
    const resolved = resolveOptions(options, {
      numLayers: this.info.numLayers,
      vocabSize: this.info.vocabSize,
      eosTokenIds: this.info.eosTokenIds.length > 0 ? this.info.eosTokenIds : (this.tokenizer?.eosTokenIds ?? []),
      speculationDefaults: this.info.speculationDefaults,
    });
    let promptIds = this.promptIds(prompt, resolved.addSpecialTokens);
    if (resolved.truncatePrompt === 'left') promptIds = this.keepPromptEnd(promptIds, resolved.maxSteps);
    return runGeneration({
      sequence: this.sequence,
      tokenizer: this.tokenizer,
      promptIds,
      options: resolved,
      device: this.info.device,
      onText,
    });
  }

  // The end of a prompt too long for the context, with its leading BOS kept, leaving room to generate.
  private keepPromptEnd(ids: number[], maxSteps: number): number[] {
    const room = Math.max(1, Math.min(maxSteps, Math.floor(this.info.contextLength / 4)));
    const keep = this.info.contextLength - room;
    if (ids.length <= keep) return ids;
    const bos = ids[0] === this.info.bosTokenId ? [ids[0]] : [];
    return [...bos, ...ids.slice(ids.length - (keep - bos.length))];
  }

  private promptIds(prompt: string | number[], addSpecialTokens: boolean): number[] {
    if (typeof prompt === 'string') return this.requireTokenizer().encode(prompt, { addSpecialTokens });
    if (!Array.isArray(prompt)) throw new TypeError('prompt must be a string or an array of token ids');
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= this.info.vocabSize) {
        throw new RangeError(`prompt token id ${JSON.stringify(id)} is outside the vocabulary [0, ${this.info.vocabSize})`);
      }
    }
    return prompt.slice();
  }
}

/** Loads a HuggingFace Llama checkpoint folder, or a Hub id already in the HuggingFace cache (see LoadOptions). */
export function loadModel(dir: string, options: LoadOptions = {}): Promise<LayerSkipModel> {
  return LayerSkipModel.load(dir, options);
}
