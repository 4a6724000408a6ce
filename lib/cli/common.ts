// Helpers shared by the CLI subcommands.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CPU_KERNEL_NAMES, QUANT_TYPES, type CpuKernelsName, type Device, type LoadOptions, type QuantType } from '../model.js';
import { packageRoot } from '../native.js';
import { UsageError, type OptionSpec } from './args.js';

/** Where the package keeps its demo model (which a build may lack: see defaultModelDir). */
export function bundledModelDir(): string {
  return path.join(packageRoot(), 'models', 'default');
}

/** The demo model bundled with the package, used when --model is not given. */
export function defaultModelDir(): string {
  const dir = bundledModelDir();
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    throw new UsageError('no bundled default model in this build of layerskip; pass --model DIR (a HuggingFace Llama folder)');
  }
  return dir;
}

/** All of stdin when it is piped; undefined on a TTY. */
export async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** How every command that loads a model runs it: kernels, weight format, draft head (as `loadModel`'s options). */
export const ENGINE_OPTION_SPECS: Record<string, OptionSpec> = {
  'cpu-kernels': {
    kind: 'string',
    placeholder: 'NAME',
    description: `CPU kernel variant: ${CPU_KERNEL_NAMES.join(', ')} (default auto: LAYERSKIP_CPU, else the best this CPU runs)`,
  },
  weights: {
    kind: 'string',
    placeholder: 'TYPE',
    description: `quantize the weights while loading: ${QUANT_TYPES.join(', ')} (default: as stored)`,
  },
  'draft-head': {
    kind: 'string',
    placeholder: 'TYPE',
    description: `a ${QUANT_TYPES.join('/')} copy of the LM head for self-speculative drafts only (output unchanged)`,
  },
};

function oneOf<T extends string>(flag: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${String(value)}"`);
  }
  return value as T;
}

/** The load options ENGINE_OPTION_SPECS parsed into. */
export function engineLoadOptions(options: Record<string, unknown>): Pick<LoadOptions, 'cpuKernels' | 'weights' | 'draftHead'> {
  return {
    cpuKernels: oneOf<CpuKernelsName>('cpu-kernels', options['cpu-kernels'], CPU_KERNEL_NAMES),
    weights: oneOf<QuantType>('weights', options.weights, QUANT_TYPES),
    draftHead: oneOf<QuantType>('draft-head', options['draft-head'], QUANT_TYPES),
  };
}

/**
 * --threads, with a warning when it asks for more threads than this process has cores (affinity and container
 * quota): extra threads only take turns on the same cores.
 */
export function threadsOption(options: Record<string, unknown>): number | undefined {
  const threads = options.threads as number | undefined;
  const cores = os.availableParallelism();
  if (threads !== undefined && threads > cores) {
    process.stderr.write(`layerskip: warning: --threads ${threads} is more than the ${cores} cores available to this process; they will take turns\n`);
  }
  return threads;
}

/** The load options every model-loading command's flags give: device, threads, engine options, context length. */
export function commandLoadOptions(options: Record<string, unknown>): Omit<LoadOptions, 'onProgress'> {
  return {
    device: options.device as Device | undefined,
    threads: threadsOption(options),
    ...engineLoadOptions(options),
    contextLength: options['context-length'] as number | undefined,
  };
}

/** Ctrl-C aborts the work in progress through `signal` (what is done so far is kept); a second Ctrl-C exits at once. */
export function interruptOnSigint(): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, release: () => process.off('SIGINT', onSigint) };
}
