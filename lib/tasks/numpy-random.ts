// numpy's `default_rng(seed).permutation(n)`, ported bit for bit so n-shot examples match HF datasets'
// `dataset.shuffle(seed=seed)` as LayerSkip uses it. The chain, as numpy 2.x runs it:
//   SeedSequence(seed): the seed's uint32 words hashed into a 4-word pool (bit_generator.pyx, mix_entropy);
//   PCG64: generate_state(4, uint64) → (state, increment) as 128-bit values, high word first (pcg64_set_seed);
//   draws: XSL-RR 128/64 after each LCG step; next_uint32 returns the low half of a draw, then buffers the high half;
//   permutation: arange(n), then for i = n-1 … 1 swap with j = random_interval(i) (Generator._shuffle_raw).
// The 128-bit LCG runs on BigInt; a 300k permutation takes a fraction of a second.

import { seedToUint32Words } from './python-random.js';

const POOL_WORDS = 4;
const HASH_INIT_A = 0x43b0d7e5;
const HASH_MULT_A = 0x931e8875;
const HASH_INIT_B = 0x8b51f9dd;
const HASH_MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XOR_SHIFT = 16;

const MASK_64 = (1n << 64n) - 1n;
const MASK_128 = (1n << 128n) - 1n;
const PCG_MULTIPLIER_128 = (2549297995355413924n << 64n) + 4865540595714422341n;

/** SeedSequence's hashmix: hashes one word, advancing the running hash constant it carries. */
function hashmix(value: number, hashConstant: { value: number }): number {
  let hashed = (value ^ hashConstant.value) >>> 0;
  hashConstant.value = Math.imul(hashConstant.value, HASH_MULT_A) >>> 0;
  hashed = Math.imul(hashed, hashConstant.value) >>> 0;
  return (hashed ^ (hashed >>> XOR_SHIFT)) >>> 0;
}

/** SeedSequence's mix: folds y into x. */
function mix(x: number, y: number): number {
  const mixed = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
  return (mixed ^ (mixed >>> XOR_SHIFT)) >>> 0;
}

/** SeedSequence(entropy).pool for entropy given as uint32 words (no spawn key): (4,) uint32. */
export function seedSequencePool(entropyWords: number[]): number[] {
  const hashConstant = { value: HASH_INIT_A };
  const pool: number[] = [];
  for (let i = 0; i < POOL_WORDS; i++) pool.push(hashmix(i < entropyWords.length ? entropyWords[i] : 0, hashConstant));
  for (let source = 0; source < POOL_WORDS; source++) {
    for (let target = 0; target < POOL_WORDS; target++) {
      if (source !== target) pool[target] = mix(pool[target], hashmix(pool[source], hashConstant));
    }
  }
  for (let source = POOL_WORDS; source < entropyWords.length; source++) {
    for (let target = 0; target < POOL_WORDS; target++) {
      pool[target] = mix(pool[target], hashmix(entropyWords[source], hashConstant));
    }
  }
  return pool;
}

/** SeedSequence.generate_state(wordCount, uint32) from a pool: (wordCount,) uint32. */
export function generateStateUint32(pool: number[], wordCount: number): number[] {
  let hashConstant = HASH_INIT_B;
  const state: number[] = [];
  for (let i = 0; i < wordCount; i++) {
    let word = (pool[i % pool.length] ^ hashConstant) >>> 0;
    hashConstant = Math.imul(hashConstant, HASH_MULT_B) >>> 0;
    word = Math.imul(word, hashConstant) >>> 0;
    state.push((word ^ (word >>> XOR_SHIFT)) >>> 0);
  }
  return state;
}

/** numpy's PCG64 bit generator (setseq 128, XSL-RR output) with its next_uint32 half-draw buffer. */
export class NumpyPcg64 {
  private state = 0n;
  private readonly increment: bigint;
  private bufferedUint32: number | undefined;

  /** As `PCG64(SeedSequence(seed))`. */
  constructor(seed: number) {
    const words = generateStateUint32(seedSequencePool(seedToUint32Words(seed)), 2 * POOL_WORDS);
    // generate_state(4, uint64): pairs of uint32, low word first; (seed high, seed low, inc high, inc low).
    const uint64s = [0, 2, 4, 6].map((i) => (BigInt(words[i + 1]) << 32n) | BigInt(words[i]));
    const initialState = (uint64s[0] << 64n) | uint64s[1];
    const sequence = (uint64s[2] << 64n) | uint64s[3];
    this.increment = ((sequence << 1n) | 1n) & MASK_128;
    this.step();
    this.state = (this.state + initialState) & MASK_128;
    this.step();
  }

  /** pcg64_next64: step the LCG, then XSL-RR the new state. */
  nextUint64(): bigint {
    this.step();
    const folded = ((this.state >> 64n) ^ this.state) & MASK_64;
    const rotation = this.state >> 122n;
    return ((folded >> rotation) | (folded << ((64n - rotation) & 63n))) & MASK_64;
  }

  /** pcg64_next32: the low half of a fresh draw, its high half on the next call. */
  nextUint32(): number {
    if (this.bufferedUint32 !== undefined) {
      const buffered = this.bufferedUint32;
      this.bufferedUint32 = undefined;
      return buffered;
    }
    const draw = this.nextUint64();
    this.bufferedUint32 = Number(draw >> 32n);
    return Number(draw & 0xffffffffn);
  }

  /** numpy's random_interval(max) for max < 2^32: uniform in [0, max] by masking and rejection. */
  randomInterval(max: number): number {
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) {
      throw new RangeError(`randomInterval max ${String(max)} must be an integer in [0, 2^32)`);
    }
    if (max === 0) return 0;
    const mask = 0xffffffff >>> Math.clz32(max);
    let value = (this.nextUint32() & mask) >>> 0;
    while (value > max) value = (this.nextUint32() & mask) >>> 0;
    return value;
  }

  private step(): void {
    this.state = (this.state * PCG_MULTIPLIER_128 + this.increment) & MASK_128;
  }
}

/** `numpy.random.default_rng(seed).permutation(length).tolist()`. */
export function numpyPermutation(seed: number, length: number): number[] {
  if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) {
    throw new RangeError(`permutation length ${String(length)} must be an integer in [0, 2^32)`);
  }
  const generator = new NumpyPcg64(seed);
  const order = Array.from({ length }, (_, i) => i);
  for (let i = length - 1; i >= 1; i--) {
    const j = generator.randomInterval(i);
    const held = order[i];
    order[i] = order[j];
    order[j] = held;
  }
  return order;
}
