// Test helpers around the raw binding: load a fixture on the CPU and run token ids through it.
import { loadNativeBinding, type NativeContext, type NativeModel } from '../../lib/native.js';

export async function loadNative(dir: string, threads = 2): Promise<NativeModel> {
  return loadNativeBinding().NativeModel.load(dir, { device: 'cpu', threads });
}

/** Logits (rows × vocab) for the last `rows` tokens after feeding `tokens` at the current position. */
export async function logitsFor(context: NativeContext, tokens: number[], rows: number, layerEnd?: number): Promise<Float32Array> {
  await context.evaluate(Int32Array.from(tokens), { logitRows: rows, layerEnd });
  return context.readLogits(rows);
}

/** Largest |a - b| / (1 + |b|) over two equally long arrays. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
    if (!(error <= worst)) worst = Number.isNaN(error) ? Infinity : Math.max(worst, error);
  }
  return worst;
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export function tokenSequence(count: number, vocab: number, seed: number): number[] {
  const tokens: number[] = [];
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    tokens.push(state % vocab);
  }
  return tokens;
}
