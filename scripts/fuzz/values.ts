// Seeded randomness and the pools of awkward values the mutations draw from. A pool entry is the raw JSON text
// written to a file (which may be invalid JSON such as NaN or 1e999) and the value a reader that accepts it sees,
// which decides whether the mutation must be refused.
import { hashSeed, mulberry32 } from '../../test/fixtures/checkpoint-writer.js';

export class Rng {
  private readonly next: () => number;
  constructor(seed: number, stream: string) {
    this.next = mulberry32(hashSeed(seed, stream));
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** An index into `weights` drawn in proportion to them. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let draw = (this.next() / 2 ** 32) * total;
    for (let i = 0; i < weights.length; i++) {
      draw -= weights[i];
      if (draw < 0) return i;
    }
    return weights.length - 1;
  }
}

export interface RawValue {
  text: string; // as written into the file
  value: unknown; // as read (NaN / ±Infinity for the literals JSON has no words for)
}

const raw = (text: string, value: unknown): RawValue => ({ text, value });

export const NUMBER_VALUES: RawValue[] = [
  raw('0', 0), raw('-1', -1), raw('1', 1), raw('2', 2), raw('3', 3), raw('7', 7), raw('64', 64), raw('1024', 1024),
  raw('1025', 1025), raw('65536', 65536), raw('2147483647', 2147483647), raw('2147483648', 2147483648),
  raw('4294967297', 4294967297), raw('-2147483648', -2147483648), raw('9007199254740993', 9007199254740992),
  raw('1e12', 1e12), raw('1e308', 1e308), raw('1e999', Infinity), raw('-1e999', -Infinity), raw('NaN', NaN),
  raw('Infinity', Infinity), raw('1.5', 1.5), raw('0.5', 0.5), raw('-0.0', -0), raw('1e-300', 1e-300),
  raw('16777216', 16777216), raw('536870920', 536870920), raw('1073741840', 1073741840),
];

export const OTHER_TYPE_VALUES: RawValue[] = [
  raw('"8"', '8'), raw('true', true), raw('false', false), raw('null', null), raw('[]', []), raw('{}', {}),
  raw('[8]', [8]), raw('{"value": 8}', { value: 8 }), raw('""', ''),
];

/** Arrays nested `depth` deep: `[[[…]]]`. */
export function nested(depth: number): RawValue {
  let value: unknown = [];
  for (let i = 1; i < Math.min(depth, 200); i++) value = [value];
  return raw('['.repeat(depth) + ']'.repeat(depth), depth <= 200 ? value : ['deep']);
}

/** An awkward value: mostly numbers, then other types, now and then deep nesting or a value given as an integer. */
export function awkwardValue(rng: Rng, usual: number[] = []): RawValue {
  const roll = rng.int(20);
  if (roll < 12) return rng.pick(NUMBER_VALUES);
  if (roll < 17) return rng.pick(OTHER_TYPE_VALUES);
  if (roll < 18) return nested(rng.pick([10, 65, 1000, 100_000]));
  const near = usual.length > 0 ? rng.pick(usual) : 1;
  const value = near + rng.pick([-2, -1, 1, 2]);
  return raw(String(value), value);
}

export const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
export const isPositiveNumber = (value: unknown): boolean =>
  typeof value === 'number' && Number.isFinite(value) && value > 0;

/** A token id (or list of them, where `list`) inside [0, vocab). */
export function isTokenIds(value: unknown, vocab: number, list = true): boolean {
  const one = (id: unknown) => isInteger(id) && id >= 0 && id < vocab;
  return one(value) || (list && Array.isArray(value) && value.every(one));
}

/** The line a fuzz child prints its outcome on (scripts/fuzz/child.ts). */
export const RESULT_PREFIX = 'FUZZ-RESULT ';

/** Options travel to the child as JSON; NaN, ±Infinity and undefined survive as tagged objects. */
export function encodeOptions(value: unknown): string {
  return JSON.stringify(value, (_key, item) => {
    if (typeof item === 'number' && !Number.isFinite(item)) return { $number: String(item) };
    if (item === undefined) return { $undefined: true };
    return item;
  });
}

export function decodeOptions(text: string): any {
  return JSON.parse(text, (_key, item) => {
    if (item && typeof item === 'object' && '$number' in item) return Number(item.$number);
    if (item && typeof item === 'object' && '$undefined' in item) return undefined;
    return item;
  });
}
