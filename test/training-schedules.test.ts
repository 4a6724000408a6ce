// The LayerSkip schedules against the paper's formulas: layer-dropout rates over depth and time, early-exit loss
// scales and their normalization, exit selections, curricula, and the learning-rate schedule.
import assert from 'node:assert/strict';

import {
  activeExits, dropoutDepthFactor, dropoutTimeFactor, exitLossWeights, exitScale, layerDropoutRates, learningRateAt,
  parseExitSelection, sampleDropoutMask, stepRandom,
} from '../lib/training/schedules.js';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} ≠ ${expected}`);

describe('training schedules', function () {
  it('layer dropout rises with depth as D(l) = 2^(l/(L−1)) − 1, linearly, or uniformly', function () {
    const L = 8;
    for (let l = 0; l < L; l++) {
      close(dropoutDepthFactor(l, L, 'exp'), 2 ** (l / (L - 1)) - 1);
      close(dropoutDepthFactor(l, L, 'linear'), l / (L - 1));
      close(dropoutDepthFactor(l, L, 'uniform'), 1);
    }
    assert.equal(dropoutDepthFactor(0, L, 'exp'), 0, 'the first layer is never dropped');
    assert.equal(dropoutDepthFactor(L - 1, L, 'exp'), 1, 'the last layer gets p_max');
  });

  it('layer dropout grows over time as S(t) = 2^(t/(T−1)) − 1 from scratch and stays at 1 otherwise', function () {
    const T = 100;
    for (const t of [0, 1, 50, 99]) {
      close(dropoutTimeFactor(t, T, true), 2 ** (t / (T - 1)) - 1);
      assert.equal(dropoutTimeFactor(t, T, false), 1);
    }
    const rates = layerDropoutRates({ numLayers: 4, maxRate: 0.2, shape: 'exp', step: 99, totalSteps: 100, fromScratch: true });
    rates.forEach((rate, l) => close(rate, 0.2 * (2 ** (l / 3) - 1)));
  });

  it('dropout masks drop each layer at its rate (binomial check over many sequences)', function () {
    const rates = [0, 0.1, 0.5, 0.9];
    const batch = 20000;
    const mask = sampleDropoutMask(rates, batch, stepRandom(3, 7, 2));
    rates.forEach((rate, l) => {
      let dropped = 0;
      for (let s = 0; s < batch; s++) dropped += mask[s * rates.length + l];
      const sd = Math.sqrt(batch * rate * (1 - rate));
      assert.ok(Math.abs(dropped - batch * rate) <= 5 * sd + 1e-9, `layer ${l}: ${dropped} of ${batch} at rate ${rate}`);
    });
  });

  it('exit scales follow their formulas and normalize to sum 1 over the active exits', function () {
    for (let l = 0; l < 6; l++) {
      const n = l + 1;
      close(exitScale(l, 'sum_l'), (n * (n + 1)) / 2);
      close(exitScale(l, 'uniform'), 1);
      close(exitScale(l, 'linear_l'), n);
      close(exitScale(l, 'sqrt_l'), Math.sqrt(n));
      close(exitScale(l, 'inv_l'), 1 / n);
    }
    const weights = exitLossWeights([0, 2, 3], 4, 'sum_l');
    close(weights.reduce((a, b) => a + b, 0), 1, 1e-6);
    close(weights[0], 1 / (1 + 6 + 10), 1e-7);
    close(weights[3], 10 / 17, 1e-7);
    assert.equal(weights[1], 0);
  });

  it('exit selections parse slices and lists and always include the last layer', function () {
    assert.deepEqual(parseExitSelection('all', 4), [0, 1, 2, 3]);
    assert.deepEqual(parseExitSelection('0::4', 8), [0, 4, 7]);
    assert.deepEqual(parseExitSelection('1:5:2', 8), [1, 3, 7]);
    assert.deepEqual(parseExitSelection('2,5', 8), [2, 5, 7]);
    assert.throws(() => parseExitSelection('9', 8), /not a layer/);
    assert.throws(() => parseExitSelection('0::0', 8), /step must be positive/);
  });

  it('curricula: rotational picks one residue class per step, gradual enables exits from the top down', function () {
    const selected = [0, 1, 2, 3, 4, 5];
    const rotational = (step: number) => activeExits({ selected, numLayers: 6, curriculum: 'rotational', rotation: 3, step, totalSteps: 100 });
    assert.deepEqual(rotational(0), [0, 3, 5]);
    assert.deepEqual(rotational(1), [1, 4, 5]);
    assert.deepEqual(rotational(2), [2, 5]);
    const gradual = (step: number) => activeExits({ selected, numLayers: 6, curriculum: 'gradual', rotation: 1, step, totalSteps: 100 });
    assert.deepEqual(gradual(0), [5]);
    assert.deepEqual(gradual(25), [3, 4, 5]);
    assert.deepEqual(gradual(50), selected);
    assert.deepEqual(gradual(99), selected);
    let previous = 1;
    for (let step = 0; step < 100; step++) {
      const count = gradual(step).length;
      assert.ok(count >= previous, 'gradual never switches an exit off');
      previous = count;
    }
  });

  it('learning rate warms up linearly and decays by a cosine to the floor', function () {
    const schedule = { peak: 1e-3, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 };
    close(learningRateAt(0, schedule), 1e-4);
    close(learningRateAt(9, schedule), 1e-3);
    close(learningRateAt(10, schedule), 1e-3);
    close(learningRateAt(60, schedule), 1e-3 * (0.1 + 0.9 * 0.5));
    close(learningRateAt(110, schedule), 1e-4);
  });
});
