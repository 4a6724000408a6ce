// CPython's `random.Random` (3.11), ported bit for bit so task benchmarks pick the same examples LayerSkip's
// data.py does with `random.seed(42); random.shuffle(examples)`: MT19937 seeded through init_by_array with the
// seed's 32-bit words (as _randommodule.c's random_seed), getrandbits, _randbelow_with_getrandbits, shuffle and
// random(). Seeds are non-negative integers below 2^53, the range a JS number holds exactly.

const STATE_WORDS = 624; // N, the MT19937 state: (624,) uint32
const SHIFT_OFFSET = 397; // M
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MAX_EXACT_BITS = 53;

/**
 * The seed's absolute value as little-endian 32-bit words, as both CPython's random_seed and numpy's SeedSequence
 * read an int (0 gives [0]). Throws a RangeError naming the seed unless it is an integer in [0, 2^53).
 */
export function seedToUint32Words(seed: number): number[] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed ${String(seed)} must be a non-negative integer below 2^53`);
  }
  const low = seed % 2 ** 32;
  const high = Math.floor(seed / 2 ** 32);
  return high === 0 ? [low] : [low, high];
}

/** Bits needed to write n (Python's int.bit_length) for 0 <= n < 2^53. */
function bitLength(n: number): number {
  if (n < 2 ** 32) return 32 - Math.clz32(n);
  return 64 - Math.clz32(Math.floor(n / 2 ** 32));
}

export class PythonRandom {
  private readonly state = new Uint32Array(STATE_WORDS);
  private index = STATE_WORDS;

  /** As `random.seed(seed)` for an int seed. */
  constructor(seed: number) {
    this.initByArray(seedToUint32Words(seed));
  }

  /** As `random.getrandbits(bitCount)` for 0 <= bitCount <= 53 (the low word is drawn first). */
  getrandbits(bitCount: number): number {
    if (!Number.isInteger(bitCount) || bitCount < 0 || bitCount > MAX_EXACT_BITS) {
      throw new RangeError(`getrandbits bitCount ${String(bitCount)} must be an integer in [0, ${MAX_EXACT_BITS}]`);
    }
    if (bitCount === 0) return 0;
    if (bitCount <= 32) return this.nextUint32() >>> (32 - bitCount);
    const low = this.nextUint32();
    const high = this.nextUint32() >>> (64 - bitCount);
    return high * 2 ** 32 + low;
  }

  /** As `random._randbelow(n)`: uniform in [0, n) by rejection over getrandbits(n.bit_length()). */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new RangeError(`randbelow n ${String(n)} must be a positive integer below 2^53`);
    }
    const bitCount = bitLength(n);
    let candidate = this.getrandbits(bitCount);
    while (candidate >= n) candidate = this.getrandbits(bitCount);
    return candidate;
  }

  /** As `random.shuffle(items)` in place: Fisher-Yates from the end, j = randbelow(i + 1). */
  shuffle<T>(items: T[]): void {
    for (let i = items.length - 1; i >= 1; i--) {
      const j = this.randbelow(i + 1);
      const held = items[i];
      items[i] = items[j];
      items[j] = held;
    }
  }

  /** As `random.random()`: 27 + 26 bits from two draws, a double in [0, 1). */
  random(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) * (1 / 9007199254740992);
  }

  /** MT19937's genrand_uint32: the next tempered 32-bit output. */
  nextUint32(): number {
    if (this.index >= STATE_WORDS) this.regenerate();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Refill all 624 words (the twist). */
  private regenerate(): void {
    const mt = this.state;
    for (let k = 0; k < STATE_WORDS; k++) {
      const y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % STATE_WORDS] & LOWER_MASK);
      mt[k] = mt[(k + SHIFT_OFFSET) % STATE_WORDS] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }

  /** MT19937's init_genrand. */
  private initGenrand(seed: number): void {
    const mt = this.state;
    mt[0] = seed;
    for (let i = 1; i < STATE_WORDS; i++) {
      const previous = mt[i - 1];
      mt[i] = Math.imul(1812433253, previous ^ (previous >>> 30)) + i;
    }
    this.index = STATE_WORDS;
  }

  /** MT19937's init_by_array, as random_seed calls it with the seed's words. */
  private initByArray(key: number[]): void {
    const mt = this.state;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(STATE_WORDS, key.length); k > 0; k--) {
      const previous = mt[i - 1];
      mt[i] = (mt[i] ^ Math.imul(previous ^ (previous >>> 30), 1664525)) + key[j] + j;
      i++;
      j++;
      if (i >= STATE_WORDS) {
        mt[0] = mt[STATE_WORDS - 1];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = STATE_WORDS - 1; k > 0; k--) {
      const previous = mt[i - 1];
      mt[i] = (mt[i] ^ Math.imul(previous ^ (previous >>> 30), 1566083941)) - i;
      i++;
      if (i >= STATE_WORDS) {
        mt[0] = mt[STATE_WORDS - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.index = STATE_WORDS;
  }
}
