// Mocha setup for suites that compare fixture checkpoints loaded by the engine with the TS reference: before the
// suite each fixture is written (if needed), loaded as a LayerSkipModel and as a ReferenceModel; after it the
// models are disposed. The returned records are filled in place by the `before` hook.
import { loadModel, type LayerSkipModel } from '../../lib/index.js';
import { ensureFixtures } from '../fixtures/make-fixtures.js';
import { loadReference, type ReferenceModel } from '../reference/llama.js';

export interface FixtureModels {
  dirs: Record<string, string>;
  models: Record<string, LayerSkipModel>;
  references: Record<string, ReferenceModel>;
}

export function useFixtureModels(names: string[], contextLength: number): FixtureModels {
  const fixtures: FixtureModels = { dirs: {}, models: {}, references: {} };
  before(async function () {
    Object.assign(fixtures.dirs, ensureFixtures(names));
    for (const name of names) {
      fixtures.models[name] = await loadModel(fixtures.dirs[name], { threads: 1, contextLength });
      fixtures.references[name] = loadReference(fixtures.dirs[name]);
    }
  });
  after(async function () {
    for (const model of Object.values(fixtures.models)) await model.dispose();
  });
  return fixtures;
}
