// One fuzz case from (seed, index): a fixture, one or two mutations on different targets, and the load options,
// generation options and prompt the child runs with. The same seed and index always give the same case, so any case
// replays alone (`--seed S --case N`).
import type { FixtureInfo } from './checkpoint-files.js';
import { CONFIG_FAMILIES } from './mutate-config.js';
import { OPTION_FAMILIES } from './mutate-options.js';
import { SAFETENSORS_FAMILIES } from './mutate-safetensors.js';
import { SPECIAL_FAMILIES } from './mutate-special.js';
import { TOKENIZER_FAMILIES } from './mutate-tokenizer.js';
import { combineExpectations, type Expectation, type Mutation, type MutationFamily } from './mutation.js';
import { Rng } from './values.js';

/** The fixtures fuzzed and how often each is drawn: small ones mostly, the sharded one for index.json, one tokenizer. */
export const FUZZ_FIXTURES: Record<string, number> = {
  'tiny-mha-f32': 3, 'tiny-gqa-bf16': 3, 'tiny-f16': 1, 'tiny-llama3-rope': 1, 'tiny-sharded': 2, 'tok-llama2': 2,
};

const FAMILIES: MutationFamily[] = [
  ...SAFETENSORS_FAMILIES, ...CONFIG_FAMILIES, ...TOKENIZER_FAMILIES, ...SPECIAL_FAMILIES, ...OPTION_FAMILIES,
];

export interface FuzzCase {
  seed: number;
  index: number;
  fixture: string;
  mutations: Mutation[];
  expect: Expectation;
  load: Record<string, unknown>;
  generate: Record<string, unknown>;
  prompt: unknown;
}

const BASE_LOAD = { threads: 1, contextLength: 64 };
const BASE_GENERATE = { maxSteps: 3 };

/** The fixture unmutated with the base options: it must load and generate, or the harness itself is broken. */
export function controlCase(seed: number, fixture: FixtureInfo): FuzzCase {
  return { seed, index: -1, fixture: fixture.name, mutations: [], expect: 'accept', load: { ...BASE_LOAD }, generate: { ...BASE_GENERATE }, prompt: [1, 5, 9] };
}

function drawMutation(rng: Rng, fixture: FixtureInfo, taken: Set<string>): Mutation {
  for (;;) {
    const family = FAMILIES[rng.weighted(FAMILIES.map((f) => f.weight))];
    const mutation = family.generate(rng, fixture);
    if (mutation && !taken.has(mutation.target)) return mutation;
  }
}

export function makeCase(seed: number, index: number, fixtures: Record<string, FixtureInfo>): FuzzCase {
  const rng = new Rng(seed, `case ${index}`);
  const names = Object.keys(FUZZ_FIXTURES).filter((name) => fixtures[name]);
  const fixture = fixtures[names[rng.weighted(names.map((name) => FUZZ_FIXTURES[name]))]];
  const mutations: Mutation[] = [];
  const taken = new Set<string>();
  const count = rng.chance(0.25) ? 2 : 1;
  for (let i = 0; i < count; i++) {
    const mutation = drawMutation(rng, fixture, taken);
    mutations.push(mutation);
    taken.add(mutation.target);
  }

  // The generation every case runs when it loads: a few greedy tokens, now and then sampled or self-speculative.
  const load: Record<string, unknown> = { ...BASE_LOAD };
  const generate: Record<string, unknown> = { ...BASE_GENERATE };
  if (rng.chance(0.25)) Object.assign(generate, { generationStrategy: 'self_speculative', exitLayer: 1, numSpeculations: 2 });
  if (rng.chance(0.15)) Object.assign(generate, { sample: true, seed: 1 });
  let prompt: unknown = fixture.hasTokenizer && rng.chance(0.5) ? 'Hello world' : [1, 5, 9];
  for (const mutation of mutations) {
    Object.assign(load, mutation.load);
    Object.assign(generate, mutation.generate);
    if ('prompt' in mutation) prompt = mutation.prompt;
  }
  return { seed, index, fixture: fixture.name, mutations, expect: combineExpectations(mutations.map((m) => m.expect)), load, generate, prompt };
}
