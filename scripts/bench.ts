// `npm run bench`: writes (once, cached outside the repo) a random bf16 model shaped like Llama-3.2-1B with an
// untied head, then measures prefill and decode throughput and the decode roofline.
//   npm run bench -- [--threads N] [--repeats N] [--prompt-tokens N] [--generate-tokens N] [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { formatBenchmark, runBenchmark } from '../lib/benchmark.js';
import { loadModel } from '../lib/index.js';
import { LLAMA_3_2_1B_SHAPE, writeCheckpoint, type CheckpointSpec } from '../test/fixtures/checkpoint-writer.js';

const BENCH_MODEL: CheckpointSpec = { ...LLAMA_3_2_1B_SHAPE, tieWordEmbeddings: false, dtype: 'BF16', seed: 2024 };

export function benchModelDir(): string {
  const root = process.env.LAYERSKIP_CACHE ?? path.join(os.homedir(), '.cache', 'layerskip');
  return path.join(root, 'bench', 'llama-3.2-1b-shape-bf16');
}

/** The benchmark model's folder, written first if absent or written from another spec. */
export function ensureBenchModel(): string {
  const dir = benchModelDir();
  const stamp = path.join(dir, '.spec.json');
  const spec = JSON.stringify(BENCH_MODEL);
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === spec) return dir;
  process.stderr.write(`writing a random Llama-3.2-1B-shaped bf16 model to ${dir} (once, ~2.5 GB)…\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  writeCheckpoint(dir, BENCH_MODEL);
  fs.writeFileSync(stamp, spec);
  return dir;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: String(os.cpus().length) },
      repeats: { type: 'string', default: '3' },
      'prompt-tokens': { type: 'string', default: '512' },
      'generate-tokens': { type: 'string', default: '128' },
      model: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const dir = values.model ?? ensureBenchModel();
  const threads = Number(values.threads);
  const model = await loadModel(dir, { threads, contextLength: 1024 });
  try {
    const result = await runBenchmark(model, {
      threads,
      repeats: Number(values.repeats),
      promptTokens: Number(values['prompt-tokens']),
      generateTokens: Number(values['generate-tokens']),
    });
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatBenchmark(result) + '\n');
  } finally {
    await model.dispose();
  }
}

// Only when run as a script: scripts/bench-vs-llamacpp.ts imports ensureBenchModel from here.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
