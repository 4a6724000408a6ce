// Statistical checks shared by the sampling tests, and the seeded generations they compare.
import { runGeneration } from '../../lib/generation/generate.js';
import { resolveOptions, type GenerationOptions } from '../../lib/generation/options.js';
import { Sequence } from '../../lib/generation/sequence.js';
import type { NativeModel } from '../../lib/native.js';

/** `runs` generations of `prompt` on one fresh context, seeds seedBase, seedBase + 1, …: each run's token ids. */
export async function seededGenerations(
  native: NativeModel,
  prompt: number[],
  options: GenerationOptions,
  runs: number,
  seedBase: number,
): Promise<number[][]> {
  const { numLayers, vocabSize } = native.info();
  const samples: number[][] = [];
  const context = native.createContext({ contextLength: 64 });
  try {
    const sequence = new Sequence(context, 64, numLayers);
    for (let run = 0; run < runs; run++) {
      const resolved = resolveOptions({ ...options, seed: seedBase + run, stopTokenIds: [] }, { numLayers, vocabSize, eosTokenIds: [] });
      samples.push((await runGeneration({ sequence, promptIds: prompt, options: resolved, device: 'cpu' })).tokenIds);
    }
  } finally {
    context.dispose();
  }
  return samples;
}

// Two-sample chi-square test of homogeneity at α = 0.001; the critical value by Wilson–Hilferty.
export function chiSquare(a: number[], b: number[]): { statistic: number; critical: number; df: number } {
  const counts = new Map<number, [number, number]>();
  for (const value of a) (counts.get(value) ?? counts.set(value, [0, 0]).get(value)!)[0]++;
  for (const value of b) (counts.get(value) ?? counts.set(value, [0, 0]).get(value)!)[1]++;
  const cells: [number, number][] = [];
  const pooled: [number, number] = [0, 0];
  for (const cell of counts.values()) {
    if (cell[0] + cell[1] >= 10) cells.push(cell);
    else (pooled[0] += cell[0]), (pooled[1] += cell[1]);
  }
  if (pooled[0] + pooled[1] > 0) cells.push(pooled);
  let statistic = 0;
  for (const [x, y] of cells) {
    const total = x + y;
    const expectedX = (total * a.length) / (a.length + b.length);
    const expectedY = total - expectedX;
    statistic += (x - expectedX) ** 2 / expectedX + (y - expectedY) ** 2 / expectedY;
  }
  const df = Math.max(1, cells.length - 1);
  const z = 3.0902; // upper 0.001 quantile of N(0, 1)
  const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return { statistic, critical, df };
}
