// What one mutation is: a named change to a case's checkpoint folder or to its load / generation options, and
// whether the engine must refuse it (a success is then a silent accept) or must load it (a refusal is then a wrong
// refusal). Without an expectation either outcome is fine as long as it is clean.
import type { FixtureInfo } from './checkpoint-files.js';
import type { Rng } from './values.js';

export type Expectation = 'refuse' | 'accept' | undefined;

export interface Mutation {
  kind: string; // the family, e.g. "safetensors.data_offsets"
  target: string; // what it touches: a file name, "load", "generate" or "prompt"; one mutation per target a case
  description: string; // printed on replay
  expect: Expectation;
  apply?: (dir: string) => void; // edits the case's folder
  load?: Record<string, unknown>; // load option overrides
  generate?: Record<string, unknown>; // generation option overrides
  prompt?: unknown; // replaces the prompt
}

/** Makes one mutation of its family for `fixture`, or null when the family does not apply to it. */
export type MutationGenerator = (rng: Rng, fixture: FixtureInfo) => Mutation | null;

export interface MutationFamily {
  kind: string;
  weight: number;
  generate: MutationGenerator;
}

/** The stricter of two expectations for one case: refuse wins; accept only when every mutation says so. */
export function combineExpectations(expectations: Expectation[]): Expectation {
  if (expectations.includes('refuse')) return 'refuse';
  return expectations.length > 0 && expectations.every((e) => e === 'accept') ? 'accept' : undefined;
}
