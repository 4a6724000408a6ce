// PythonRandom and numpyPermutation against values printed by CPython 3.11's `random` and numpy 2.4's
// `default_rng(seed).permutation(n)` (SeedSequence pools, raw PCG64 draws, permutations up to CNN/DM's 287,113
// training rows), hard-coded so CI needs no Python. Long orders are checked by their first values and a checksum.

import { strict as assert } from 'node:assert';
import { NumpyPcg64, numpyPermutation, seedSequencePool } from '../lib/tasks/numpy-random.js';
import { PythonRandom, seedToUint32Words } from '../lib/tasks/python-random.js';

/** An order's first values (all of it when short) and, for long orders, the checksum of the whole. */
interface OrderExpected {
  length: number;
  head: number[];
  checksum?: number;
}

interface PythonExpected {
  seed: number;
  /** getrandbits(k) in turn for k = GETRANDBITS_WIDTHS, from a fresh seed. */
  getrandbits: number[];
  /** random() three times from a fresh seed. */
  random: number[];
  /** _randbelow(n) in turn for n = RANDBELOW_BOUNDS, from a fresh seed. */
  randbelow: number[];
  /** shuffle(list(range(length))) from a fresh seed, then getrandbits(32), which shows the draws consumed. */
  shuffles: (OrderExpected & { nextBits32: number })[];
}

interface NumpyExpected {
  seed: number;
  /** SeedSequence(seed).pool */
  pool: number[];
  /** PCG64(seed).random_raw(3) */
  rawUint64: bigint[];
  permutations: OrderExpected[];
}

const GETRANDBITS_WIDTHS = [1, 7, 31, 32, 33, 40, 53, 0, 32];
const RANDBELOW_BOUNDS = [1, 2, 3, 10, 1000, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1];

/** (h * 1000003 + value) mod 2^32 over the order; the generator script computes the same in Python. */
function orderChecksum(order: number[]): number {
  let hash = 0;
  for (const value of order) hash = (Math.imul(hash, 1000003) + value) >>> 0;
  return hash;
}

function assertOrder(actual: number[], expected: OrderExpected): void {
  assert.equal(actual.length, expected.length);
  assert.deepEqual(actual.slice(0, expected.head.length), expected.head);
  if (expected.checksum !== undefined) assert.equal(orderChecksum(actual), expected.checksum);
  const sorted = Int32Array.from(actual).sort();
  assert.ok(sorted.every((value, index) => value === index), 'the order is a permutation of 0..length-1');
}

const PYTHON_EXPECTED: PythonExpected[] = [
  {
    seed: 0,
    getrandbits: [1, 49, 1627694678, 3823568514, 1806341205, 1061968961082, 4376848748439138, 0, 1739178872],
    random: [0.8444218515250481, 0.7579544029403025, 0.420571580830845],
    randbelow: [0, 1, 0, 4, 988, 2087043557, 2046968324, 8031363715860095],
    shuffles: [
      { length: 1, head: [0], nextBits32: 3626764237 },
      { length: 2, head: [0, 1], nextBits32: 3255389356 },
      { length: 10, head: [7, 8, 1, 5, 3, 4, 2, 0, 9, 6], nextBits32: 1537810351 },
      {
        length: 1000,
        head: [439, 621, 160, 549, 237, 389, 658, 507, 124, 290, 975, 392, 231, 969, 354, 657, 914, 719, 302, 109],
        checksum: 1679233784,
        nextBits32: 1835197452,
      },
      {
        length: 11490,
        head: [
          4192, 1517, 5921, 2097, 4622, 8353, 9118, 3856, 8837, 7563, 9178, 9638, 5110, 10868, 10400, 46, 8119,
          10322, 6993, 4234,
        ],
        checksum: 3994432507,
        nextBits32: 173144339,
      },
    ],
  },
  {
    seed: 1,
    getrandbits: [0, 72, 1819850095, 3445702192, 3280387012, 129944532028, 6854138572100987, 0, 1930549411],
    random: [0.13436424411240122, 0.8474337369372327, 0.763774618976614],
    randbelow: [0, 0, 1, 1, 507, 1930549411, 901749037, 255329311140994],
    shuffles: [
      { length: 1, head: [0], nextBits32: 577090037 },
      { length: 2, head: [1, 0], nextBits32: 2444712010 },
      { length: 10, head: [6, 8, 9, 7, 5, 3, 0, 4, 1, 2], nextBits32: 3387541014 },
      {
        length: 1000,
        head: [852, 836, 280, 575, 208, 609, 932, 725, 47, 985, 337, 581, 155, 692, 862, 790, 572, 241, 992, 788],
        checksum: 39840138,
        nextBits32: 391003979,
      },
      {
        length: 11490,
        head: [
          8156, 7915, 6114, 7439, 4364, 4284, 4368, 3588, 6029, 5703, 10246, 3256, 7622, 9958, 4719, 6731, 9866,
          6994, 7729, 234,
        ],
        checksum: 2130994435,
        nextBits32: 1697141962,
      },
    ],
  },
  {
    seed: 42,
    getrandbits: [1, 14, 53710184, 3184935163, 1181241943, 151282538206, 923193498493097, 0, 2906402157],
    random: [0.6394267984578837, 0.025010755222666936, 0.27502931836911926],
    randbelow: [0, 0, 2, 4, 250, 958682846, 2342331444, 3800335628534889],
    shuffles: [
      { length: 1, head: [0], nextBits32: 2746317213 },
      { length: 2, head: [1, 0], nextBits32: 107420369 },
      { length: 10, head: [7, 3, 2, 8, 5, 6, 9, 4, 0, 1], nextBits32: 2536146025 },
      {
        length: 1000,
        head: [776, 507, 895, 922, 33, 483, 85, 750, 354, 523, 184, 809, 418, 615, 682, 501, 760, 49, 732, 336],
        checksum: 909695816,
        nextBits32: 1754569613,
      },
      {
        length: 11490,
        head: [
          5290, 6915, 219, 3573, 9464, 7929, 4541, 2540, 10226, 7523, 2775, 5343, 3010, 6583, 10995, 288, 10118, 956,
          10083, 7309,
        ],
        checksum: 2342117719,
        nextBits32: 9596257,
      },
    ],
  },
  {
    seed: 2 ** 32 + 5,
    getrandbits: [0, 62, 606635418, 3822202474, 6891077597, 386609434369, 1543107136316917, 0, 3339782326],
    random: [0.15727238718789782, 0.2824866316461999, 0.6044540318498407],
    randbelow: [0, 1, 1, 9, 855, 62377729, 4183155336, 3192490982494937],
    shuffles: [
      { length: 1, head: [0], nextBits32: 675479763 },
      { length: 2, head: [1, 0], nextBits32: 2085189291 },
      { length: 10, head: [5, 3, 6, 1, 9, 0, 8, 4, 7, 2], nextBits32: 3136672473 },
      {
        length: 1000,
        head: [388, 325, 405, 583, 213, 779, 131, 981, 767, 99, 859, 614, 132, 402, 403, 242, 501, 344, 775, 343],
        checksum: 1874198526,
        nextBits32: 136277846,
      },
      {
        length: 11490,
        head: [
          3689, 6201, 4248, 379, 3359, 2973, 8522, 7694, 5017, 10377, 11126, 9656, 1061, 9364, 1864, 3022, 10329,
          7399, 5383, 7820,
        ],
        checksum: 1929933371,
        nextBits32: 584608856,
      },
    ],
  },
  {
    seed: 123456789,
    getrandbits: [1, 56, 1164342591, 3049235403, 8560621697, 1008644087602, 5422635920771943, 0, 1705848077],
    random: [0.6414006161858726, 0.5421892680969495, 0.9931750662832721],
    randbelow: [0, 1, 1, 7, 406, 1507641727, 3426455742, 4914161740019038],
    shuffles: [
      { length: 1, head: [0], nextBits32: 2754794679 },
      { length: 2, head: [0, 1], nextBits32: 2328685183 },
      { length: 10, head: [0, 1, 9, 4, 3, 5, 2, 6, 8, 7], nextBits32: 3426455742 },
      {
        length: 1000,
        head: [781, 912, 972, 23, 958, 723, 875, 793, 153, 573, 421, 201, 13, 107, 308, 660, 740, 716, 367, 531],
        checksum: 2110376970,
        nextBits32: 573814109,
      },
      {
        length: 11490,
        head: [
          7434, 9394, 7545, 8750, 7580, 3263, 2888, 3282, 11463, 7244, 6302, 5119, 3606, 1434, 4182, 6851, 8896, 702,
          3844, 340,
        ],
        checksum: 1060499803,
        nextBits32: 2498016458,
      },
    ],
  },
];

const NUMPY_EXPECTED: NumpyExpected[] = [
  {
    seed: 0,
    pool: [4265667335, 1328953910, 1320288413, 3365567143],
    rawUint64: [11749869230777074271n, 4976686463289251617n, 755828109848996024n],
    permutations: [
      { length: 0, head: [] },
      { length: 1, head: [0] },
      { length: 2, head: [0, 1] },
      { length: 10, head: [4, 6, 2, 7, 3, 5, 9, 0, 8, 1] },
      {
        length: 1000,
        head: [459, 206, 222, 162, 711, 814, 350, 890, 518, 264, 683, 674, 511, 391, 329, 325, 81, 201, 582, 380],
        checksum: 3696991190,
      },
      {
        length: 287113,
        head: [
          187481, 64513, 257781, 143437, 65661, 130752, 250243, 86849, 51991, 107661, 27410, 92151, 149847, 206439,
          217756, 47904, 74556, 208032, 15765, 56901,
        ],
        checksum: 4031243444,
      },
    ],
  },
  {
    seed: 1,
    pool: [2704793989, 232979121, 2500767352, 1423772289],
    rawUint64: [9441442522235856127n, 17532960557476522086n, 2659275481604167885n],
    permutations: [
      { length: 0, head: [] },
      { length: 1, head: [0] },
      { length: 2, head: [0, 1] },
      { length: 10, head: [8, 4, 7, 0, 1, 2, 5, 9, 6, 3] },
      {
        length: 1000,
        head: [705, 649, 543, 927, 577, 471, 608, 252, 918, 745, 624, 463, 809, 48, 583, 262, 191, 525, 823, 500],
        checksum: 1447453804,
      },
    ],
  },
  {
    seed: 42,
    pool: [1662858758, 128880814, 1875164712, 753753205],
    rawUint64: [14276969152011380360n, 8095878257575067585n, 15838336090824644132n],
    permutations: [
      { length: 0, head: [] },
      { length: 1, head: [0] },
      { length: 2, head: [1, 0] },
      { length: 10, head: [5, 6, 0, 7, 3, 2, 4, 9, 1, 8] },
      {
        length: 1000,
        head: [978, 933, 859, 916, 127, 608, 856, 260, 147, 810, 635, 972, 593, 994, 285, 554, 467, 276, 55, 61],
        checksum: 3468463522,
      },
      {
        length: 287113,
        head: [
          113114, 39479, 205808, 97759, 175992, 233362, 276840, 161440, 96646, 240409, 8592, 263398, 34443, 88559,
          33179, 158056, 197414, 68637, 159952, 8479,
        ],
        checksum: 3828023204,
      },
    ],
  },
  {
    seed: 2 ** 32 + 5,
    pool: [1943228144, 3666975122, 1548130432, 663351627],
    rawUint64: [14281546376153053393n, 8683300866460616067n, 12836726618003871680n],
    permutations: [
      { length: 0, head: [] },
      { length: 1, head: [0] },
      { length: 2, head: [0, 1] },
      { length: 10, head: [6, 7, 4, 2, 5, 0, 9, 8, 3, 1] },
      {
        length: 1000,
        head: [381, 36, 487, 43, 76, 435, 478, 151, 920, 453, 362, 835, 55, 131, 952, 339, 758, 601, 185, 457],
        checksum: 112187194,
      },
    ],
  },
  {
    seed: 123456789,
    pool: [2717125157, 3123912042, 764086112, 578686851],
    rawUint64: [511209809126027580n, 16725663875132018381n, 16258841331763118777n],
    permutations: [
      { length: 0, head: [] },
      { length: 1, head: [0] },
      { length: 2, head: [1, 0] },
      { length: 10, head: [7, 4, 0, 5, 3, 8, 2, 1, 6, 9] },
      {
        length: 1000,
        head: [441, 458, 719, 781, 869, 438, 774, 742, 383, 555, 206, 596, 371, 34, 820, 835, 916, 799, 803, 437],
        checksum: 546599294,
      },
    ],
  },
];

describe('PythonRandom (CPython 3.11 random.Random)', () => {
  for (const expected of PYTHON_EXPECTED) {
    describe(`seed ${expected.seed}`, () => {
      it('getrandbits matches, for widths within and across 32-bit words', () => {
        const generator = new PythonRandom(expected.seed);
        assert.deepEqual(GETRANDBITS_WIDTHS.map((width) => generator.getrandbits(width)), expected.getrandbits);
      });

      it('random() matches', () => {
        const generator = new PythonRandom(expected.seed);
        assert.deepEqual([generator.random(), generator.random(), generator.random()], expected.random);
      });

      it('randbelow matches, up to 2^53 - 1', () => {
        const generator = new PythonRandom(expected.seed);
        assert.deepEqual(RANDBELOW_BOUNDS.map((bound) => generator.randbelow(bound)), expected.randbelow);
      });

      for (const shuffle of expected.shuffles) {
        it(`shuffle of ${shuffle.length} items matches and consumes the same draws`, () => {
          const generator = new PythonRandom(expected.seed);
          const order = Array.from({ length: shuffle.length }, (_, index) => index);
          generator.shuffle(order);
          assertOrder(order, shuffle);
          assert.equal(generator.getrandbits(32), shuffle.nextBits32);
        });
      }
    });
  }

  it('shuffles an empty list without drawing', () => {
    const generator = new PythonRandom(42);
    const empty: string[] = [];
    generator.shuffle(empty);
    assert.deepEqual(empty, []);
    assert.equal(generator.getrandbits(32), new PythonRandom(42).getrandbits(32));
  });

  it('refuses bad widths and bounds, naming them', () => {
    const generator = new PythonRandom(0);
    assert.throws(() => generator.getrandbits(54), /getrandbits bitCount 54/);
    assert.throws(() => generator.getrandbits(-1), /getrandbits bitCount -1/);
    assert.throws(() => generator.randbelow(0), /randbelow n 0/);
    assert.throws(() => generator.randbelow(1.5), /randbelow n 1.5/);
  });
});

describe('numpyPermutation (numpy default_rng(seed).permutation)', () => {
  for (const expected of NUMPY_EXPECTED) {
    describe(`seed ${expected.seed}`, () => {
      it('SeedSequence pool matches', () => {
        assert.deepEqual(seedSequencePool(seedToUint32Words(expected.seed)), expected.pool);
      });

      it('PCG64 raw draws match, and nextUint32 gives the low half then the high half', () => {
        const drawing = new NumpyPcg64(expected.seed);
        assert.deepEqual(expected.rawUint64.map(() => drawing.nextUint64()), expected.rawUint64);
        const halving = new NumpyPcg64(expected.seed);
        const halves = expected.rawUint64.flatMap((draw) => [Number(draw & 0xffffffffn), Number(draw >> 32n)]);
        assert.deepEqual(halves.map(() => halving.nextUint32()), halves);
      });

      for (const permutation of expected.permutations) {
        it(`permutation of ${permutation.length} matches`, () => {
          assertOrder(numpyPermutation(expected.seed, permutation.length), permutation);
        });
      }
    });
  }

  it('refuses a bad length, naming it', () => {
    assert.throws(() => numpyPermutation(0, -1), /permutation length -1/);
    assert.throws(() => numpyPermutation(0, 2.5), /permutation length 2.5/);
  });
});

describe('task random seeds', () => {
  it('splits a seed into little-endian 32-bit words, 0 as [0]', () => {
    assert.deepEqual(seedToUint32Words(0), [0]);
    assert.deepEqual(seedToUint32Words(2 ** 32 + 5), [5, 1]);
    assert.deepEqual(seedToUint32Words(2 ** 53 - 1), [0xffffffff, 0x1fffff]);
  });

  for (const badSeed of [-1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses seed ${badSeed}, naming it`, () => {
      const message = `seed ${String(badSeed)} must be a non-negative integer below 2^53`;
      const namesSeed = (error: unknown): boolean => error instanceof RangeError && error.message === message;
      assert.throws(() => new PythonRandom(badSeed), namesSeed);
      assert.throws(() => numpyPermutation(badSeed, 10), namesSeed);
    });
  }
});
