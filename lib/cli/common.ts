// Helpers shared by the CLI subcommands.
import fs from 'node:fs';
import path from 'node:path';

import { CPU_KERNEL_NAMES, type CpuKernelsName } from '../model.js';
import { packageRoot } from '../native.js';
import { UsageError, type OptionSpec } from './args.js';

/** The demo model bundled with the package, used when --model is not given. */
export function defaultModelDir(): string {
  const dir = path.join(packageRoot(), 'models', 'default');
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

/** --cpu-kernels: the CPU kernel variant, as `loadModel`'s cpuKernels. */
export const CPU_KERNELS_SPEC: OptionSpec = {
  kind: 'string',
  placeholder: 'NAME',
  description: `CPU kernel variant: ${CPU_KERNEL_NAMES.join(', ')} (default auto: LAYERSKIP_CPU, else the best this CPU runs)`,
};

export function cpuKernelsOption(value: unknown): CpuKernelsName | undefined {
  if (value === undefined) return undefined;
  if (!(CPU_KERNEL_NAMES as readonly unknown[]).includes(value)) {
    throw new UsageError(`--cpu-kernels must be one of ${CPU_KERNEL_NAMES.join(', ')}, got "${String(value)}"`);
  }
  return value as CpuKernelsName;
}
