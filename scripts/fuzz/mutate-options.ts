// Mutations of what a caller passes: load options (threads, contextLength, device, cpuKernels, weights, draftHead),
// generation options (maxSteps, sampling values, stop ids, strategy, exit layer, speculations) and the prompt. A
// value outside the documented range (README "API", lib/generation/options.ts, lib/limits.ts) must be refused.
import type { FixtureInfo } from './checkpoint-files.js';
import type { Expectation, Mutation, MutationFamily } from './mutation.js';
import { isInteger, type Rng } from './values.js';

const MAX_THREADS = 256;
const MAX_CONTEXT_LENGTH = 1 << 20;
const inRange = (value: unknown, min: number, max: number) => typeof value === 'number' && value >= min && value <= max;
const integerIn = (value: unknown, min: number, max: number) => isInteger(value) && value >= min && value <= max;

interface OptionSpec {
  values: (fixture: FixtureInfo) => unknown[];
  valid: (value: unknown, fixture: FixtureInfo) => boolean | undefined; // undefined: either outcome is fine
}

const WRONG_TYPES = ['2', null, true, [], {}, NaN, Infinity, -Infinity];

const LOAD_OPTIONS: Record<string, OptionSpec> = {
  threads: {
    values: () => [0, -1, 1, 2, 3, 1.5, 255, 256, 257, 1024, 2 ** 31, ...WRONG_TYPES],
    valid: (value) => integerIn(value, 1, MAX_THREADS),
  },
  contextLength: {
    values: (fixture) => [0, -1, 1, 2, 17, 1.5, fixture.maxPositions, fixture.maxPositions + 1, MAX_CONTEXT_LENGTH,
      MAX_CONTEXT_LENGTH + 1, 2 ** 24, 2 ** 31, ...WRONG_TYPES],
    valid: (value, fixture) => integerIn(value, 1, Math.min(MAX_CONTEXT_LENGTH, fixture.maxPositions)),
  },
  device: {
    values: () => ['cpu', 'cuda', 'auto', 'gpu', 'CPU', '', 5, null],
    valid: (value) => (value === 'cpu' ? true : value === 'cuda' || value === 'auto' || value === null ? undefined : false),
  },
  cpuKernels: {
    values: () => ['auto', 'scalar', 'avx2', 'avx512', 'avx512bf16', 'amx', 'avx9', '', 5],
    valid: (value) => (value === 'auto' || value === 'scalar' ? true : ['avx2', 'avx512', 'avx512bf16', 'amx'].includes(value as string) ? undefined : false),
  },
  weights: {
    values: () => ['q8', 'q4', 'q2', 'Q8', '', 5],
    valid: (value) => (value === 'q8' || value === 'q4' ? undefined : false),
  },
  draftHead: {
    values: () => ['q8', 'q4', 'q3', 5],
    valid: (value) => (value === 'q8' || value === 'q4' ? undefined : false),
  },
};

const GENERATE_OPTIONS: Record<string, OptionSpec> = {
  maxSteps: {
    values: () => [0, 1, 2, -1, 1.5, 64, 1 << 24, (1 << 24) + 1, 1e9, ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : integerIn(value, 0, 1 << 24)), // null reads as unset
  },
  temperature: {
    values: () => [-1, 0, 1e-30, 0.6, 1, 1e3, 1e3 + 1, 1e30, ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : Number.isFinite(value) && inRange(value, 0, 1000)),
  },
  topK: {
    values: (fixture) => [-1, 0, 1, 2, 1.5, fixture.vocabSize, fixture.vocabSize + 1, 1e9, ...WRONG_TYPES],
    valid: (value, fixture) => (value === null ? undefined : integerIn(value, 0, fixture.vocabSize)),
  },
  topP: {
    values: () => [0, -0.1, 1e-30, 0.5, 1, 1.1, ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : Number.isFinite(value) && inRange(value, Number.MIN_VALUE, 1)),
  },
  seed: {
    values: () => [-1, 0, 1.5, 2 ** 53 - 1, 2 ** 53, 2 ** 60, -(2 ** 60), ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : integerIn(value, -(2 ** 53) + 1, 2 ** 53 - 1)),
  },
  stopTokenIds: {
    values: (fixture) => [[-1], [fixture.vocabSize], [1.5], ['2'], [2 ** 31], [], [0, fixture.vocabSize - 1], 5, 'x'],
    valid: (value, fixture) => (Array.isArray(value) ? value.every((id) => integerIn(id, 0, fixture.vocabSize - 1)) : false),
  },
  exitLayer: {
    values: (fixture) => [0, -1, 1, fixture.numLayers, fixture.numLayers + 1, 1.5, 2 ** 31, ...WRONG_TYPES],
    valid: (value, fixture) => (value === null ? undefined : integerIn(value, 1, fixture.numLayers)),
  },
  numSpeculations: {
    values: () => [0, -1, 1, 6, 64, 65, 1e6, 1.5, ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : integerIn(value, 1, 64)),
  },
  draftConfidence: {
    values: () => [-1, 0, 0.5, 1, 2, ...WRONG_TYPES],
    valid: (value) => (value === null ? undefined : Number.isFinite(value) && inRange(value, 0, 1)),
  },
  generationStrategy: {
    values: () => ['autoregressive', 'self_speculative', 'bogus', '', 5, null],
    valid: (value) => (value === 'autoregressive' || value === 'self_speculative' ? true : value === null ? undefined : false),
  },
  // Named stand-ins the child turns into a listener that throws / returns a rejected promise, and abort signals.
  onSpeculation: {
    values: () => ['throw', 'async-reject'],
    valid: () => false, // the listener's error must fail the generation
  },
  signal: {
    values: () => ['aborted', 'abort-soon'],
    valid: () => true,
  },
  stopStrings: {
    values: () => [[''], ['x'], 'x', [5], [], ['\u0000']],
    valid: (value) => Array.isArray(value) && value.every((s) => typeof s === 'string' && s.length > 0),
  },
};

const expectationOf = (valid: boolean | undefined): Expectation => (valid === false ? 'refuse' : valid === true ? 'accept' : undefined);

const show = (value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value));

function loadOption(rng: Rng, fixture: FixtureInfo): Mutation {
  const name = rng.pick(Object.keys(LOAD_OPTIONS));
  const spec = LOAD_OPTIONS[name];
  const value = rng.pick(spec.values(fixture));
  // A valid load option still meets the case's other mutations: "accept" only vouches for the option itself.
  const valid = spec.valid(value, fixture);
  return { kind: `load.${name}`, target: 'load', description: `load option ${name}: ${show(value)}`, expect: valid === false ? 'refuse' : undefined, load: { [name]: value } };
}

function generateOption(rng: Rng, fixture: FixtureInfo): Mutation {
  const name = rng.pick(Object.keys(GENERATE_OPTIONS));
  const spec = GENERATE_OPTIONS[name];
  const value = rng.pick(spec.values(fixture));
  const extra: Record<string, unknown> = {};
  if (['temperature', 'topK', 'topP', 'seed'].includes(name)) extra.sample = true;
  if (name === 'signal') extra.maxSteps = 64;
  if (['numSpeculations', 'draftConfidence', 'onSpeculation'].includes(name) || (name === 'exitLayer' && rng.chance(0.5))) {
    extra.generationStrategy = 'self_speculative';
    if (name !== 'exitLayer') extra.exitLayer = 1;
  }
  return {
    kind: `generate.${name}`, target: 'generate', description: `generation option ${name}: ${show(value)} ${Object.keys(extra).length ? JSON.stringify(extra) : ''}`.trim(),
    expect: spec.valid(value, fixture) === false ? 'refuse' : undefined, generate: { ...extra, [name]: value },
  };
}

function prompt(rng: Rng, fixture: FixtureInfo): Mutation {
  const vocab = fixture.vocabSize;
  const prompts: [unknown, boolean | undefined][] = [
    [[-1], false], [[vocab], false], [[2 ** 31], false], [[1.5], false], [['1'], false], [[NaN], false], [[], undefined],
    [Array.from({ length: 200 }, (_, i) => (i * 7) % vocab), undefined], [[vocab - 1], true], [5, false], [null, false],
    ['hello', fixture.hasTokenizer ? true : false], ['', undefined], ['\u0000\uffff\ud800', undefined],
  ];
  const [value, valid] = rng.pick(prompts);
  return { kind: 'prompt', target: 'prompt', description: `prompt ${show(value)}`, expect: expectationOf(valid === false ? false : undefined), prompt: value };
}

export const OPTION_FAMILIES: MutationFamily[] = [
  { kind: 'load', weight: 5, generate: loadOption },
  { kind: 'generate', weight: 6, generate: generateOption },
  { kind: 'prompt', weight: 2, generate: prompt },
];
