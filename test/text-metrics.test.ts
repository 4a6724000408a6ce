// ROUGE-1/2/3/L, corpus BLEU-4 and character edit distance (lib/tasks/text-metrics.ts) against hand-computed values
// and the examples in torchmetrics 1.3.2's docstrings. Values marked "torchmetrics:" were printed by torchmetrics
// 1.3.2's own functional/text code run on the same inputs (it is not installed here, so no live comparison).

import { strict as assert } from 'node:assert';
import {
  bleuFromStatistics,
  bleuScore,
  bleuStatistics,
  characterEditDistance,
  rougeTokens,
  scoreExample,
  TextMetrics,
  torchmetricsEditDistance,
} from '../lib/tasks/text-metrics.js';

const TOLERANCE = 1e-12;

function assertClose(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) <= TOLERANCE, `${message ?? ''} expected ${expected}, got ${actual}`);
}

/** Deterministic text of `length` letters a..w (never x), no whitespace. */
function letters(length: number): string {
  return Array.from({ length }, (_, index) => String.fromCharCode(97 + ((index * 7) % 23))).join('');
}

describe('text metrics', function () {
  describe('rougeTokens', function () {
    it('lowercases and splits on any whitespace run, dropping empty tokens', function () {
      assert.deepEqual(rougeTokens('  The\tCAT\n\nsat   on  '), ['the', 'cat', 'sat', 'on']);
      assert.deepEqual(rougeTokens(''), []);
      assert.deepEqual(rougeTokens(' \t\n '), []);
    });

    it("splits on Python's whitespace set, not JavaScript's", function () {
      // Python's \s includes no-break space and the \x1c–\x1f separators; it excludes the BOM \ufeff.
      assert.deepEqual(rougeTokens('a\u00a0b\x1fc\ufeffd\u3000E'), ['a', 'b', 'c\ufeffd', 'e']);
    });

    it('keeps punctuation attached (the lowercase normalizer replaces nothing)', function () {
      assert.deepEqual(rougeTokens('Hello, World!'), ['hello,', 'world!']);
    });
  });

  describe('ROUGE', function () {
    it('the cat sat on the mat / the cat was on the mat', function () {
      // tokens: the cat sat on the mat | the cat was on the mat (6 each)
      // 1-grams: pred {the:2 cat sat on mat}, ref {the:2 cat was on mat}; hits 2+1+1+1 = 5; P = R = F = 5/6
      // 2-grams (5 each): the cat, on the, the mat match; 3/5
      // 3-grams (4 each): only "on the mat" matches; 1/4
      // LCS: the cat on the mat = 5; 5/6
      const scores = scoreExample('the cat sat on the mat', 'the cat was on the mat');
      assertClose(scores.rouge1, 5 / 6);
      assertClose(scores.rouge2, 3 / 5);
      assertClose(scores.rouge3, 1 / 4);
      assertClose(scores.rougeL, 5 / 6);
    });

    it("torchmetrics' docstring example, which only matches after lowercasing", function () {
      // my name is john | is your name john: 1-grams is, name, john hit: P = R = 3/4. No 2-gram in common.
      // LCS: "name john" (or "is john") = 2: 2/4. torchmetrics: 0.75, 0, 0.5.
      const scores = scoreExample('My name is John', 'Is your name John');
      assertClose(scores.rouge1, 0.75);
      assertClose(scores.rouge2, 0);
      assertClose(scores.rougeL, 0.5);
    });

    it('unequal lengths: P and R differ, F is symmetric in prediction and reference', function () {
      // pred the cat (2) | ref the cat sat on the mat (6)
      // 1-grams: hits 2, P = 2/2, R = 2/6, F = 2·(1/3)/(4/3) = 1/2
      // 2-grams: "the cat" hits, P = 1/1, R = 1/5, F = 2·(1/5)/(6/5) = 1/3
      // 3-grams: the prediction has none: 0.  LCS 2: same as 1-grams, 1/2
      const forward = scoreExample('the cat', 'the cat sat on the mat');
      assertClose(forward.rouge1, 1 / 2);
      assertClose(forward.rouge2, 1 / 3);
      assertClose(forward.rouge3, 0);
      assertClose(forward.rougeL, 1 / 2);
      // LayerSkip calls update(reference, prediction); swapping must not change any F.
      const swapped = scoreExample('the cat sat on the mat', 'the cat');
      for (const key of ['rouge1', 'rouge2', 'rouge3', 'rougeL'] as const) assertClose(swapped[key], forward[key], key);
    });

    it('clips repeated n-grams to their count in the other text', function () {
      // pred {the:4} | ref {the:1 cat:1}: hits min(4, 1) = 1; P = 1/4, R = 1/2, F = 2·(1/8)/(3/4) = 1/3
      // 2-grams: pred {the the:3}, ref {the cat:1}: 0
      const scores = scoreExample('the the the the', 'the cat');
      assertClose(scores.rouge1, 1 / 3);
      assertClose(scores.rouge2, 0);
    });

    it('ROUGE-L follows order where ROUGE-1 counts a bag', function () {
      // a b c d | d c b a: every 1-gram hits (F = 1), no 2-gram does, the LCS is one token: 1/4
      const scores = scoreExample('a b c d', 'd c b a');
      assertClose(scores.rouge1, 1);
      assertClose(scores.rouge2, 0);
      assertClose(scores.rougeL, 1 / 4);
      // a x b y c | a b c z: LCS a b c = 3, P = 3/5, R = 3/4, F = 2·(9/20)/(27/20) = 2/3
      assertClose(scoreExample('a x b y c', 'a b c z').rougeL, 2 / 3);
    });

    it('identical texts score 1, disjoint texts 0, whatever the case and whitespace', function () {
      const identical = scoreExample('  The Quick\tbrown\n\nFOX jumps ', 'the quick brown fox jumps');
      for (const key of ['rouge1', 'rouge2', 'rouge3', 'rougeL'] as const) assertClose(identical[key], 1, key);
      const disjoint = scoreExample('alpha beta gamma delta', 'one two three four');
      for (const key of ['rouge1', 'rouge2', 'rouge3', 'rougeL'] as const) assertClose(disjoint[key], 0, key);
    });

    it('an empty prediction or reference scores 0, even when both are empty', function () {
      for (const [prediction, reference] of [['', 'the cat'], ['the cat', ''], ['', ''], [' \n ', ' ']]) {
        const scores = scoreExample(prediction, reference);
        for (const key of ['rouge1', 'rouge2', 'rouge3', 'rougeL'] as const) assert.equal(scores[key], 0, key);
      }
    });
  });

  describe('BLEU-4', function () {
    it("torchmetrics' docstring example: 0.7598", function () {
      // the cat is on the mat | a cat is on the mat (6 tokens each, so BP = exp(0) = 1)
      // 1-grams 5/6 ("the" clipped to 1), 2-grams 4/5, 3-grams 3/4, 4-grams 2/3 → (5/6·4/5·3/4·2/3)^¼ = (1/3)^¼
      assertClose(bleuScore(['the cat is on the mat'], ['a cat is on the mat']), Math.pow(1 / 3, 0.25));
    });

    it('identical texts of four or more tokens score 1; shorter ones 0', function () {
      assertClose(bleuScore(['the cat sat on the mat'], ['the cat sat on the mat']), 1);
      assert.equal(bleuScore(['the cat sat'], ['the cat sat']), 0);
    });

    it('a short prediction pays the brevity penalty', function () {
      // Every n-gram of the 6-token prediction is in the 7-token reference: precisions 1, BP = exp(1 − 7/6).
      const score = bleuScore(['the cat sat on the mat'], ['the cat sat on the mat today']);
      assertClose(score, Math.exp(1 - 7 / 6));
      assert.ok(score < 1);
      // The reversed pair is longer than its reference (BP 1) but only "mat today" and its longer n-grams miss:
      // 1-grams 6/7, 2-grams 5/6, 3-grams 4/5, 4-grams 3/4 → (3/7)^¼.
      assertClose(bleuScore(['the cat sat on the mat today'], ['the cat sat on the mat']), Math.pow(3 / 7, 0.25));
    });

    it('is 0 when no 4-gram matches', function () {
      // one two three four five | one two three five four: 1-grams 5/5, 2-grams 2/4, 3-grams 1/3, 4-grams 0/2
      assert.equal(bleuScore(['one two three four five'], ['one two three five four']), 0);
    });

    it('accumulates counts over the corpus instead of averaging sentence scores', function () {
      // A: identical 6 tokens → matches = candidates = [6, 5, 4, 3], sentence BLEU 1
      // B: the 0 case above → matches [5, 2, 1, 0], candidates [5, 4, 3, 2], sentence BLEU 0 (mean of the two: 0.5)
      // corpus: [11, 7, 5, 3] / [11, 9, 7, 5], lengths 11 = 11 → BP 1; (7/9·5/7·3/5)^¼ = (1/3)^¼ ≈ 0.7598
      const predictions = ['the cat sat on the mat', 'one two three four five'];
      const references = ['the cat sat on the mat', 'one two three five four'];
      assertClose(bleuScore(predictions, references), Math.pow(1 / 3, 0.25));
    });

    it('clips candidate n-grams, is case sensitive and uses the prediction as candidate', function () {
      // the×7 | the cat is on the mat: 1-gram matches min(7, 2) = 2 of 7; "the the" never matches
      const statistics = bleuStatistics('the the the the the the the', 'the cat is on the mat');
      assert.deepEqual(statistics.matches, [2, 0, 0, 0]);
      assert.deepEqual(statistics.candidateNgrams, [7, 6, 5, 4]);
      assert.equal(statistics.candidateLength, 7);
      assert.equal(statistics.referenceLength, 6);
      // The | the: 1-grams 5/6, 2-grams 4/5, 3-grams 3/4, 4-grams 2/3 → (1/3)^¼
      assertClose(bleuScore(['The cat sat on the mat'], ['the cat sat on the mat']), Math.pow(1 / 3, 0.25));
    });

    it('an empty corpus or empty prediction scores 0 without NaN', function () {
      assert.equal(bleuScore([], []), 0);
      assert.equal(bleuScore([''], ['the cat sat on the mat']), 0);
      assert.equal(bleuFromStatistics(bleuStatistics('', '')), 0);
      assert.throws(() => bleuScore(['a'], []), /1 predictions but 0 references/);
    });
  });

  describe('character edit distance', function () {
    it('classic examples', function () {
      assert.equal(characterEditDistance('kitten', 'sitting'), 3);
      assert.equal(characterEditDistance('sitting', 'kitten'), 3);
      // torchmetrics' docstring: rain → shine 3, lnaguaeg → language 4
      assert.equal(characterEditDistance('rain', 'shine'), 3);
      assert.equal(characterEditDistance('lnaguaeg', 'language'), 4);
      assert.equal(characterEditDistance('flaw', 'lawn'), 2);
      assert.equal(characterEditDistance('same text', 'same text'), 0);
    });

    it('empty strings', function () {
      assert.equal(characterEditDistance('', ''), 0);
      assert.equal(characterEditDistance('', 'abc'), 3);
      assert.equal(characterEditDistance('abc', ''), 3);
    });

    it('counts Unicode code points, as Python str does', function () {
      assert.equal(characterEditDistance('🦙', 'a'), 1); // 2 UTF-16 units, 1 code point
      assert.equal(characterEditDistance('llama 🦙', 'llama 🔥'), 1); // same high surrogate, one substitution
      assert.equal(characterEditDistance('👍🏽', '👍'), 1); // thumbs up + skin tone modifier: two code points
      assert.equal(characterEditDistance('naïve', 'naive'), 1);
      assert.equal(torchmetricsEditDistance('🦙🦙', ''), 2);
    });

    it('long texts: exact, and fast enough for several thousand characters', function () {
      // Each '#' is absent from the other text, so it costs at least one edit; substituting it costs exactly one.
      const base = letters(6000);
      const edited = [...base].map((character, index) => (index % 500 === 250 ? '#' : character)).join('');
      const started = performance.now();
      assert.equal(characterEditDistance(edited, base + 'ab'), 12 + 2);
      assert.ok(performance.now() - started < 5000, 'edit distance of 6000 characters took more than 5 s');
      // A 100-character insertion: exactly 100 (no 'x' in the rest).
      assert.equal(characterEditDistance('x'.repeat(100) + letters(1000), letters(1000)), 100);
    });

    it("torchmetrics' banded distance: exact inside its ±25 band, larger when alignments leave it", function () {
      assert.equal(torchmetricsEditDistance('kitten', 'sitting'), 3);
      assert.equal(torchmetricsEditDistance('', 'abc'), 3);
      assert.equal(torchmetricsEditDistance('abc', ''), 3);
      // torchmetrics: 169 with the dataset reference as rows (LayerSkip's order), 170 the other way; exact is 100.
      const reference = 'x'.repeat(100) + letters(1000);
      const prediction = letters(1000);
      assert.equal(torchmetricsEditDistance(reference, prediction), 169);
      assert.equal(torchmetricsEditDistance(prediction, reference), 170);
      assert.equal(scoreExample(prediction, reference).torchmetricsEditDistance, 169);
      assert.equal(scoreExample(prediction, reference).editDistance, 100);
    });
  });

  describe('TextMetrics', function () {
    it('summary of no examples is all zeros', function () {
      const metrics = new TextMetrics();
      assert.equal(metrics.count, 0);
      assert.deepEqual(metrics.summary(), {
        count: 0,
        rouge1: 0,
        rouge2: 0,
        rouge3: 0,
        rougeL: 0,
        bleu4: 0,
        editDistance: 0,
        torchmetricsEditDistance: 0,
      });
    });

    it('averages per-example ROUGE and edit distance, and keeps BLEU at corpus level, example by example', function () {
      const metrics = new TextMetrics();
      const first = metrics.add('the cat sat on the mat', 'the cat sat on the mat');
      assert.equal(first.rouge1, 1);
      assert.equal(first.editDistance, 0);
      assert.equal(metrics.count, 1);
      assertClose(metrics.summary().bleu4, 1);

      const second = metrics.add('one two three four five', 'one two three five four');
      // 1-grams 5/5; 2-grams 2/4 → F 1/2; 3-grams 1/3; LCS "one two three four" = 4 → 4/5.
      assertClose(second.rouge1, 1);
      assertClose(second.rouge2, 1 / 2);
      assertClose(second.rouge3, 1 / 3);
      assertClose(second.rougeL, 4 / 5);
      assert.equal(second.editDistance, 6); // "four five" → "five four"; a plain full-table DP gives 6 as well

      const summary = metrics.summary();
      assert.equal(summary.count, 2);
      assertClose(summary.rouge1, 1);
      assertClose(summary.rouge2, (1 + 1 / 2) / 2);
      assertClose(summary.rouge3, (1 + 1 / 3) / 2);
      assertClose(summary.rougeL, (1 + 4 / 5) / 2);
      assertClose(summary.bleu4, Math.pow(1 / 3, 0.25));
      assertClose(summary.editDistance, second.editDistance / 2);
    });

    it('rejects non-string inputs by name', function () {
      const metrics = new TextMetrics();
      assert.throws(() => metrics.add(undefined as unknown as string, 'x'), /prediction must be a string/);
      assert.throws(() => metrics.add('x', 42 as unknown as string), /reference must be a string/);
      assert.equal(metrics.count, 0);
    });
  });
});
