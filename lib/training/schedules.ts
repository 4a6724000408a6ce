// The LayerSkip training schedules (Elhoushi et al., 2024, §4), as pure functions of the step:
//   layer dropout  p_l,t = p_max · D(l) · S(t), D(l) = 2^(l/(L−1)) − 1 (exp), l/(L−1) (linear) or 1 (uniform);
//                  S(t) = 2^(t/(T−1)) − 1 when pretraining from scratch, 1 for continual pretraining / fine-tuning;
//   early exit     a loss at the output of each selected layer through the model's own final norm + LM head,
//                  scaled per layer (sum_l: ∝ 1 + 2 + … + (l+1); uniform; linear_l; sqrt_l; inv_l), normalized to
//                  sum 1 over the exits active at step t, the last layer always active;
//   curricula      none (every selected exit), rotational (exits l ≡ t mod R), gradual (exits switched on from the
//                  last layer toward the first during the first half of training);
//   learning rate  linear warmup, then cosine decay to minLearningRateRatio · peak.
// Layers are 0-based: "layer l" is the output of the first l + 1 layers.
import { Random } from '../generation/random.js';

export type DropoutShape = 'exp' | 'linear' | 'uniform';
export type ExitScale = 'sum_l' | 'uniform' | 'linear_l' | 'sqrt_l' | 'inv_l';
export type ExitCurriculum = 'none' | 'rotational' | 'gradual';

export const DROPOUT_SHAPES: readonly DropoutShape[] = ['exp', 'linear', 'uniform'];
export const EXIT_SCALES: readonly ExitScale[] = ['sum_l', 'uniform', 'linear_l', 'sqrt_l', 'inv_l'];
export const EXIT_CURRICULA: readonly ExitCurriculum[] = ['none', 'rotational', 'gradual'];

/** D(l): how a layer's dropout rate grows with depth, in [0, 1]. */
export function dropoutDepthFactor(layer: number, numLayers: number, shape: DropoutShape): number {
  if (shape === 'uniform') return 1;
  if (numLayers === 1) return 1;
  const position = layer / (numLayers - 1);
  return shape === 'exp' ? 2 ** position - 1 : position;
}

/** S(t): how dropout grows over training; 1 throughout when `fromScratch` is false. */
export function dropoutTimeFactor(step: number, totalSteps: number, fromScratch: boolean): number {
  if (!fromScratch || totalSteps <= 1) return 1;
  return 2 ** (step / (totalSteps - 1)) - 1;
}

/** Per-layer dropout rates p_l at `step`. */
export function layerDropoutRates(options: {
  numLayers: number; maxRate: number; shape: DropoutShape; step: number; totalSteps: number; fromScratch: boolean;
}): number[] {
  const time = dropoutTimeFactor(options.step, options.totalSteps, options.fromScratch);
  return Array.from({ length: options.numLayers },
    (_, l) => options.maxRate * dropoutDepthFactor(l, options.numLayers, options.shape) * time);
}

/** Unnormalized scale of exit layer l. */
export function exitScale(layer: number, scale: ExitScale): number {
  const n = layer + 1;
  switch (scale) {
    case 'sum_l': return (n * (n + 1)) / 2;
    case 'uniform': return 1;
    case 'linear_l': return n;
    case 'sqrt_l': return Math.sqrt(n);
    case 'inv_l': return 1 / n;
  }
}

/**
 * Parses an exit selection: "all", a Python-style slice "start:stop:step" (e.g. "0::4"), or a comma list "1,3,7".
 * Returns the selected layers, sorted; the last layer is always included.
 */
export function parseExitSelection(text: string, numLayers: number): number[] {
  const selected = new Set<number>([numLayers - 1]);
  const trimmed = text.trim();
  if (trimmed === 'all') {
    for (let l = 0; l < numLayers; l++) selected.add(l);
  } else if (trimmed.includes(':')) {
    const parts = trimmed.split(':');
    if (parts.length > 3) throw new Error(`exit selection "${text}" must look like start:stop:step`);
    const number = (part: string | undefined, fallback: number): number => {
      if (part === undefined || part.trim() === '') return fallback;
      const value = Number(part);
      if (!Number.isInteger(value)) throw new Error(`exit selection "${text}": "${part}" is not an integer`);
      return value < 0 ? numLayers + value : value;
    };
    const start = number(parts[0], 0), stop = number(parts[1], numLayers), step = number(parts[2], 1);
    if (step <= 0) throw new Error(`exit selection "${text}": the step must be positive`);
    for (let l = Math.max(0, start); l < Math.min(stop, numLayers); l += step) selected.add(l);
  } else {
    for (const part of trimmed.split(',')) {
      const value = Number(part);
      if (!Number.isInteger(value) || value < 0 || value >= numLayers) {
        throw new Error(`exit selection "${text}": "${part}" is not a layer in [0, ${numLayers - 1}]`);
      }
      selected.add(value);
    }
  }
  return [...selected].sort((a, b) => a - b);
}

/** The exits active at `step` under a curriculum (subset of `selected`, always with the last layer). */
export function activeExits(options: {
  selected: number[]; numLayers: number; curriculum: ExitCurriculum; rotation: number; step: number; totalSteps: number;
}): number[] {
  const last = options.numLayers - 1;
  const { selected, step } = options;
  switch (options.curriculum) {
    case 'none':
      return selected;
    case 'rotational':
      return selected.filter((l) => l === last || l % options.rotation === step % options.rotation);
    case 'gradual': {
      // Over the first half of training the lowest enabled layer moves from the last layer down to layer 0.
      const half = Math.max(1, Math.floor(options.totalSteps / 2));
      const lowest = step >= half ? 0 : Math.ceil(last * (1 - step / half));
      return selected.filter((l) => l >= lowest);
    }
  }
}

/** (layers) loss weights: the scale of each active exit normalized to sum 1, 0 elsewhere. */
export function exitLossWeights(active: number[], numLayers: number, scale: ExitScale): Float32Array {
  const weights = new Float32Array(numLayers);
  let sum = 0;
  for (const l of active) sum += exitScale(l, scale);
  for (const l of active) weights[l] = exitScale(l, scale) / sum;
  return weights;
}

/** Learning rate at `step`: linear warmup over warmupSteps, then cosine decay to minRatio · peak at totalSteps. */
export function learningRateAt(step: number, options: {
  peak: number; warmupSteps: number; totalSteps: number; minRatio: number;
}): number {
  const { peak, warmupSteps, totalSteps, minRatio } = options;
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** A random generator that depends only on (seed, step, stream), so a resumed run replays the same batches. */
export function stepRandom(seed: number, step: number, stream: number): Random {
  return new Random((seed * 1_000_003 + step * 7919 + stream * 104_729) % 2 ** 52);
}

/** (batch · layers) dropout flags: sequence s skips layer l with probability rates[l]. */
export function sampleDropoutMask(rates: number[], batch: number, random: Random): Uint8Array {
  const mask = new Uint8Array(batch * rates.length);
  for (let s = 0; s < batch; s++) {
    for (let l = 0; l < rates.length; l++) mask[s * rates.length + l] = random.next() < rates[l] ? 1 : 0;
  }
  return mask;
}
