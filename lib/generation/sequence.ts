// Sequence: the token ids whose keys and values sit in a native context, and the two forward steps every
// strategy starts from — prefill a prompt (reusing a cached common prefix) and decode one token.
import type { NativeContext, NativeEvaluateOptions } from '../native.js';
import type { Random } from './random.js';

export interface Sampling {
  temperature: number; // 0 = greedy
  topK: number;
  topP: number;
}

/** Greedy picks (the engine's argmax). */
export const GREEDY: Sampling = { temperature: 0, topK: 0, topP: 1 };

export interface PickedToken {
  token: number;
  /** Probability of `token` under the distribution it was picked from. */
  probability: number;
}

/** Prompt tokens evaluated per native call in prefill (between them, an abort is noticed). */
export const PREFILL_CHUNK = 128;

export class Sequence {
  /** Tokens whose K/V are cached in layers [0, cachedLayers). */
  tokens: number[] = [];

  constructor(
    readonly native: NativeContext,
    readonly contextLength: number,
    readonly numLayers: number,
  ) {}

  /**
   * Makes the cache hold `prompt` in layers [0, layerEnd), evaluating only what is not already cached, and picks
   * the token that follows (`reuse` false: evaluating all of it). Returns how many prompt tokens were reused from
   * the cache, or undefined when `signal` aborted between chunks (the cache then holds part of the prompt; `tokens`
   * says which).
   */
  async prefill(
    prompt: number[],
    layerEnd: number,
    sampling: Sampling,
    random: Random,
    signal?: AbortSignal,
    reuse = true,
  ): Promise<(PickedToken & { reused: number }) | undefined> {
    if (prompt.length === 0) throw new RangeError('the prompt is empty (no tokens to start from)');
    if (prompt.length >= this.contextLength) {
      throw new RangeError(`the prompt has ${prompt.length} tokens; the context holds ${this.contextLength}`);
    }
    let reused = 0;
    const limit = reuse ? Math.min(prompt.length - 1, this.tokens.length, this.cachedLength(layerEnd)) : 0;
    while (reused < limit && this.tokens[reused] === prompt[reused]) reused++;
    this.truncate(reused);
    // Long prompts go in chunks so an abort is seen within one chunk's time (a row's results do not depend on the
    // chunking: the forward pass is batch-invariant).
    let done = reused;
    while (prompt.length - done > PREFILL_CHUNK) {
      if (signal?.aborted) return undefined;
      const chunk = prompt.slice(done, done + PREFILL_CHUNK);
      await this.native.evaluate(Int32Array.from(chunk), { layerEnd, logitRows: 0 });
      done += chunk.length;
      this.tokens = prompt.slice(0, done);
    }
    if (signal?.aborted) return undefined;
    const picked = await this.evaluate(prompt.slice(done), layerEnd, sampling, random);
    this.tokens = prompt.slice();
    return { ...picked, reused };
  }

  /** Appends `token` and picks the next one from layers [0, layerEnd). */
  async decodeOne(token: number, layerEnd: number, sampling: Sampling, random: Random): Promise<PickedToken> {
    const picked = await this.evaluate([token], layerEnd, sampling, random);
    this.tokens.push(token);
    return picked;
  }

  /** Forgets every position ≥ length. */
  truncate(length: number): void {
    this.native.truncate(length);
    if (this.tokens.length > length) this.tokens.length = length;
  }

  get length(): number {
    return this.tokens.length;
  }

  // Positions that layers [0, layerEnd) all hold.
  private cachedLength(layerEnd: number): number {
    let length = Infinity;
    for (let layer = 0; layer < layerEnd; layer++) length = Math.min(length, this.native.layerLength(layer));
    return length;
  }

  private async evaluate(tokens: number[], layerEnd: number, sampling: Sampling, random: Random): Promise<PickedToken> {
    const options: NativeEvaluateOptions = { layerEnd, logitRows: 1, ...sampling };
    if (sampling.temperature > 0) options.uniforms = random.uniforms(1);
    const result = await this.native.evaluate(Int32Array.from(tokens), options);
    return { token: result.tokens[0], probability: result.probabilities[0] };
  }
}
