// The sweep's pieces (grid axes, its CSV and resuming from it, the best cell) and a checkpoint's own speculation
// settings: read from generation_config.json, written back without losing other keys, used by generate() when no
// exit layer / k is given — and never a silent full-depth draft when there are none.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadModel } from '../lib/index.js';
import { readSpeculationDefaults, writeSpeculationDefaults } from '../lib/generation/checkpoint-defaults.js';
import { bestCell, checkGrid, gridCells, parseAxis, readSweepCsv, SWEEP_CSV_HEADER, writeSweepCsv, type SweepCell } from '../lib/tasks/sweep.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';

const cell = (exitLayer: number, numSpeculations: number, tokensPerSecond: number, acceptanceRate = 0.5): SweepCell => ({
  exitLayer,
  numSpeculations,
  acceptanceRate,
  totalTime: 0.1,
  timePerToken: 1 / tokensPerSecond,
  tokensPerSecond,
});

describe('sweep grid and CSV', function () {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-sweep-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('axes: A:B, A:B:STEP, lists, and L for the layer count', function () {
    assert.deepEqual(parseAxis('exit-layers', '1:L-1', 8), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(parseAxis('exit-layers', '2:L:3', 8), [2, 5, 8]);
    assert.deepEqual(parseAxis('num-speculations', '4,1,2,2', 8), [1, 2, 4]);
    assert.throws(() => parseAxis('exit-layers', '3:1', 8), /--exit-layers: 3:1 is empty/);
    assert.throws(() => parseAxis('exit-layers', 'a:3', 8), /--exit-layers: "a" is not a number/);
    assert.throws(() => parseAxis('exit-layers', '1:4:0', 8), /the step must be ≥ 1/);
  });

  it('exit layers must be in [1, L): E = L would draft with every layer', function () {
    assert.doesNotThrow(() => checkGrid([1, 7], [1, 6], 8));
    assert.throws(() => checkGrid([0, 3], [1], 8), /--exit-layers: 0 is outside \[1, 7\]/);
    assert.throws(() => checkGrid([8], [1], 8), /--exit-layers: 8 is outside \[1, 7\].*E = 8 would draft with all of them/);
    assert.throws(() => checkGrid([2], [0], 8), /--num-speculations: 0 is outside/);
  });

  it("writes LayerSkip's columns and reads them back; cells already measured are not run again", function () {
    const file = path.join(dir, 'sweep.csv');
    assert.deepEqual(readSweepCsv(file), []);
    const done = [cell(1, 1, 100), cell(1, 2, 120.5, 0.75)];
    writeSweepCsv(file, done);
    assert.equal(fs.readFileSync(file, 'utf8').split('\n')[0], SWEEP_CSV_HEADER);
    assert.equal(SWEEP_CSV_HEADER, 'exit_layer,num_speculations,acceptance_rate,total_time,time_per_token,tokens_per_second');
    assert.deepEqual(readSweepCsv(file), done);
    const grid = gridCells([1, 2], [1, 2], readSweepCsv(file));
    assert.deepEqual(grid.map((g) => [g.exitLayer, g.numSpeculations, g.cell !== undefined]), [[1, 1, true], [1, 2, true], [2, 1, false], [2, 2, false]]);
    assert.equal(fs.readdirSync(dir).length, 1, 'no temporary file left behind');
  });

  it('refuses a CSV that is not a sweep instead of overwriting it', function () {
    const file = path.join(dir, 'sweep.csv');
    fs.writeFileSync(file, 'name,value\nx,1\n');
    assert.throws(() => readSweepCsv(file), /is not a layerskip sweep CSV/);
    fs.writeFileSync(file, `${SWEEP_CSV_HEADER}\n1,2,0.5,x,0.1,3\n`);
    assert.throws(() => readSweepCsv(file), /sweep\.csv:2: not a sweep row/);
  });

  it('the best cell is the fastest (ties: higher acceptance)', function () {
    assert.equal(bestCell([]), undefined);
    assert.deepEqual(bestCell([cell(1, 1, 100), cell(3, 2, 150, 0.4), cell(2, 2, 150, 0.6), cell(4, 1, 90)]), cell(2, 2, 150, 0.6));
  });
});

describe("a checkpoint's own speculation settings (generation_config.json)", function () {
  let dir: string;
  before(function () {
    const fixture = ensureFixtures(['tiny-gqa-bf16'])['tiny-gqa-bf16'];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-defaults-'));
    for (const name of fs.readdirSync(fixture)) if (!name.startsWith('.')) fs.copyFileSync(path.join(fixture, name), path.join(dir, name));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = () => path.join(dir, 'generation_config.json');

  it('are written under HF names, keeping every other key, and read back', async function () {
    fs.writeFileSync(config(), JSON.stringify({ eos_token_id: [1, 2], do_sample: false }));
    const file = await writeSpeculationDefaults(dir, { exitLayer: 2, numSpeculations: 3 });
    assert.equal(file, config());
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { eos_token_id: [1, 2], do_sample: false, assistant_early_exit: 2, num_assistant_tokens: 3 });
    assert.deepEqual(await readSpeculationDefaults(dir, 4), { exitLayer: 2, numSpeculations: 3 });
  });

  it('a value that cannot be right names the file and key', async function () {
    fs.writeFileSync(config(), JSON.stringify({ assistant_early_exit: 4 }));
    await assert.rejects(readSpeculationDefaults(dir, 4), /generation_config\.json: assistant_early_exit must be an integer in \[1, 3\], got 4/);
    fs.writeFileSync(config(), JSON.stringify({ num_assistant_tokens: 'six' }));
    await assert.rejects(readSpeculationDefaults(dir, 4), /num_assistant_tokens must be an integer/);
    await assert.rejects(loadModel(dir, { threads: 1, contextLength: 32 }), /num_assistant_tokens must be an integer/);
  });

  it('self_speculative generation uses them when no exitLayer / numSpeculations is given', async function () {
    fs.writeFileSync(config(), JSON.stringify({ assistant_early_exit: 2, num_assistant_tokens: 3 }));
    const model = await loadModel(dir, { threads: 1, contextLength: 32 });
    try {
      assert.deepEqual(model.info.speculationDefaults, { exitLayer: 2, numSpeculations: 3 });
      const drafted = await model.generate([1, 5, 9], { maxSteps: 8, stopTokenIds: [], generationStrategy: 'self_speculative' });
      assert.equal(drafted.stats.exitLayer, 2);
      const explicit = await model.generate([1, 5, 9], { maxSteps: 8, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer: 3 });
      assert.equal(explicit.stats.exitLayer, 3);
      const plain = await model.generate([1, 5, 9], { maxSteps: 8, stopTokenIds: [] });
      assert.equal(plain.stats.exitLayer, 4, 'autoregressive decoding still uses every layer');
      assert.deepEqual(drafted.tokenIds, plain.tokenIds, 'greedy self-speculative output equals autoregressive');
    } finally {
      await model.dispose();
    }
  });

  it('without them, self_speculative without exitLayer is an error, not a full-depth draft', async function () {
    fs.writeFileSync(config(), JSON.stringify({ eos_token_id: 2 }));
    const model = await loadModel(dir, { threads: 1, contextLength: 32 });
    try {
      await assert.rejects(
        model.generate([1, 5], { maxSteps: 4, generationStrategy: 'self_speculative' }),
        /exitLayer: self_speculative decoding needs the draft depth E \(1 ≤ E < 4\).*no assistant_early_exit.*layerskip sweep --write-defaults/,
      );
    } finally {
      await model.dispose();
    }
  });
});
