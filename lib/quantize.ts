// Writing a quantized checkpoint folder (README "Quantized weights", "On-disk layout"): the native quantizer writes
// model.safetensors, this adds config.json with its quantization_config and copies the tokenizer and generation
// files. Everything goes into a sibling folder first, renamed into place only when complete; on any failure it is
// removed, so the output either exists whole or not at all.
import fs from 'node:fs';
import path from 'node:path';

import { MAX_THREADS } from './limits.js';
import { QUANT_TYPES, type QuantType } from './model.js';
import { loadNativeBinding, type LoadProgressCallback } from './native.js';

export interface QuantizeOptions {
  type: QuantType;
  /** Keep the LM head (and an embedding tied to it) as stored. Default false. */
  keepHead?: boolean;
  /** Threads; default one per core. */
  threads?: number;
  /** Source tensor bytes done and in all, after each tensor. A throw cancels the run. */
  onProgress?: LoadProgressCallback;
  /** Aborting stops at the next tensor; the call then rejects and nothing is left behind. */
  signal?: AbortSignal;
}

export interface QuantizeReport {
  outDir: string;
  tensors: number;
  quantizedTensors: number;
  inputBytes: number;
  outputBytes: number;
  copiedFiles: string[];
  seconds: number;
}

/** config.json's quantization_config for a checkpoint this writes (the loader checks every field). */
export function quantizationConfig(type: QuantType, keepHead: boolean): Record<string, unknown> {
  return { quant_method: 'layerskip', format: type, version: 1, block_size: 32, keep_head: keepHead };
}

// Files of the source folder that are not weights or config.json: tokenizer, generation config, chat template, …
function companionFiles(modelDir: string): string[] {
  const weights = /\.(safetensors|bin|pt|pth|gguf|ckpt)$|^model\.safetensors\.index\.json$|^pytorch_model.*\.json$/;
  return fs
    .readdirSync(modelDir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name !== 'config.json' && !weights.test(entry.name))
    .map((entry) => entry.name);
}

function checkOutDir(outDir: string): void {
  if (!fs.existsSync(outDir)) return;
  if (!fs.statSync(outDir).isDirectory()) throw new Error(`${outDir}: exists and is not a folder`);
  if (fs.readdirSync(outDir).length > 0) throw new Error(`${outDir}: folder exists and is not empty; choose a new --out`);
}

/** Quantizes the checkpoint folder `modelDir` into the new folder `outDir`. */
export async function quantizeModel(modelDir: string, outDir: string, options: QuantizeOptions): Promise<QuantizeReport> {
  if (!(QUANT_TYPES as readonly string[]).includes(options.type)) {
    throw new RangeError(`type must be one of ${QUANT_TYPES.join(', ')}, got ${JSON.stringify(options.type)}`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > MAX_THREADS)) {
    throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${JSON.stringify(options.threads)}`);
  }
  const source = path.resolve(modelDir);
  const target = path.resolve(outDir);
  const configPath = path.join(source, 'config.json');
  if (!fs.existsSync(configPath)) throw new Error(`${configPath}: missing file (is this a HuggingFace model folder?)`);
  if (source === target) throw new Error(`${target}: the output folder must differ from the model folder`);
  checkOutDir(target);
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  if (config.quantization_config !== undefined && config.quantization_config !== null) {
    throw new Error(`${configPath}: this checkpoint is already quantized (quantization_config); quantize the original instead`);
  }

  const started = performance.now();
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staging = fs.mkdtempSync(`${target}.partial-`);
  try {
    fs.chmodSync(staging, 0o777 & ~process.umask());  // mkdtemp makes it private; the result is an ordinary folder
    const native = await loadNativeBinding().quantizeCheckpoint(source, path.join(staging, 'model.safetensors'), {
      type: options.type,
      keepHead: options.keepHead ?? false,
      threads: options.threads ?? 0,
      onProgress: (done, total) => {
        if (options.signal?.aborted) throw new Error('aborted');
        options.onProgress?.(done, total);
      },
    });
    if (options.signal?.aborted) throw new Error('aborted');
    const quantized = { ...config, quantization_config: quantizationConfig(options.type, options.keepHead ?? false) };
    fs.writeFileSync(path.join(staging, 'config.json'), `${JSON.stringify(quantized, null, 2)}\n`);
    const copiedFiles = companionFiles(source);
    for (const name of copiedFiles) fs.copyFileSync(path.join(source, name), path.join(staging, name));
    checkOutDir(target);  // again: something may have appeared meanwhile
    if (fs.existsSync(target)) fs.rmdirSync(target);
    fs.renameSync(staging, target);
    return { outDir: target, ...native, copiedFiles, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (options.signal?.aborted) throw new Error(`quantizing ${source} was cancelled; nothing was written`);
    throw error;
  }
}
