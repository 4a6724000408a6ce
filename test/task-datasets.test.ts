// LayerSkip's task construction, checked byte for byte on tiny copies of each Hub dataset (published column names
// and types, the cache layouts `hf download` leaves): prompts, references, the examples Python's random.shuffle
// picks, the n-shot rows numpy's permutation picks, and the errors for missing or malformed data.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';

import { DatasetError } from '../lib/tasks/dataset-files.js';
import { loadTask, type TaskLoadOptions } from '../lib/tasks/load-task.js';
import { pythonSplit } from '../lib/tasks/python-strings.js';
import { applyTemplate, TemplateError } from '../lib/tasks/task-datasets.js';
import { makeHubCache, writeAllHubDatasets, writeJsonLines, writeParquet, type HubCache } from './helpers/task-fixtures.js';

describe('task datasets (LayerSkip data.py)', function () {
  let cache: HubCache;
  const saved = { HF_HOME: process.env.HF_HOME, HF_HUB_CACHE: process.env.HF_HUB_CACHE };

  before(function () {
    cache = makeHubCache();
    writeAllHubDatasets(cache);
    process.env.HF_HOME = cache.home;
    delete process.env.HF_HUB_CACHE;
  });
  after(function () {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    fs.rmSync(cache.home, { recursive: true, force: true });
  });

  const load = (options: Partial<TaskLoadOptions> & Pick<TaskLoadOptions, 'dataset'>) => loadTask(options);
  const article = (split: string, i: number) => `${split} article ${i} (CNN) -- words ${'w '.repeat(i)}end.`;
  const highlights = (split: string, i: number) => `${split} highlight ${i} first.\n${split} highlight ${i} second.`;

  it('cnn_dm_summarization: "Article: {article}\\nSummary:" → " " + highlights, from the 3.0.0 folder only', async function () {
    const task = await load({ dataset: 'cnn_dm_summarization', randomShuffle: false });
    assert.equal(task.examples.length, 10);
    assert.equal(task.splitRows, 10);
    assert.match(task.files[0], /3\.0\.0\/test-00000-of-00001\.parquet$/);
    assert.deepEqual(task.examples[2], { prompt: `Article: ${article('test', 2)}\nSummary:`, reference: ` ${highlights('test', 2)}` });
  });

  it("shuffles as Python's random.seed(seed); random.shuffle(examples), then keeps --num-samples", async function () {
    // python3 -c "import random; random.seed(42); l=list(range(10)); random.shuffle(l); print(l)" → [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]
    const task = await load({ dataset: 'cnn_dm_summarization', numSamples: 3 });
    assert.deepEqual(task.examples.map((e) => e.reference), [7, 3, 2].map((i) => ` ${highlights('test', i)}`));
    // seed 7 → [8, 3, 1, 4, 7, 0, 9, 6, 2, 5]
    const seven = await load({ dataset: 'cnn_dm_summarization', numSamples: 2, seed: 7 });
    assert.deepEqual(seven.examples.map((e) => e.reference), [8, 3].map((i) => ` ${highlights('test', i)}`));
  });

  it("--n-shot N: the first N train rows of numpy default_rng(seed).permutation, across shards, summaries without newlines", async function () {
    // python3 -c "import numpy as np; print(np.random.default_rng(42).permutation(7).tolist())" → [3, 2, 6, 4, 1, 5, 0]
    const task = await load({ dataset: 'cnn_dm_summarization', numSamples: 1, nShot: 2 });
    const shot = (i: number) => `Article: ${article('train', i)}\nSummary: train highlight ${i} first.train highlight ${i} second.\n`;
    assert.equal(task.examples[0].prompt, `${shot(3)}${shot(2)}\nArticle: ${article('test', 7)}\nSummary:`);
    assert.equal(task.examples[0].reference, ` ${highlights('test', 7)}`);
    assert.equal(task.shotFiles.length, 3);
  });

  it('xsum_summarization: document/summary with the same template, from the converted-parquet layout', async function () {
    // numpy default_rng(3).permutation(3) → [2, 1, 0]; default_rng(1).permutation(3) → [0, 1, 2]
    const task = await load({ dataset: 'xsum_summarization', randomShuffle: false, nShot: 1, seed: 3 });
    assert.equal(task.examples[0].prompt, 'Article: Train doc C.\nSummary: Sum C.\n\nArticle: The first document.\nIt has two lines.\nSummary:');
    assert.equal(task.examples[1].reference, ' Second\nsummary.');
    const withNewline = await load({ dataset: 'xsum_summarization', randomShuffle: false, nShot: 1, seed: 1 });
    assert.equal(withNewline.examples[1].prompt, 'Article: Train doc A.\nSummary: Sum Awith newline.\n\nArticle: Second document.\nSummary:');
    const plain = await load({ dataset: 'xsum_summarization', randomShuffle: false });
    assert.equal(plain.examples[0].prompt, 'Article: The first document.\nIt has two lines.\nSummary:');
  });

  it('cnn_dm_lm: the first 100 words (Python str.split) as prompt, the rest joined by spaces as reference', async function () {
    const dir = cache.snapshot('abisee/cnn_dailymail').replace('0123456789', 'fedcba9876'); // a second snapshot folder
    const words = Array.from({ length: 130 }, (_, i) => `w${i}`);
    const text = words.slice(0, 50).join(' ') + '\n\t ' + words.slice(50, 100).join('  ') + '\x1c' + words.slice(100).join('\u3000');
    writeParquet(path.join(dir, 'lm', 'test.parquet'), { article: [text], highlights: ['h'], id: ['1'] });
    const task = await load({ dataset: 'cnn_dm_lm', data: path.join(dir, 'lm', 'test.parquet') });
    assert.equal(task.examples[0].prompt, words.slice(0, 100).join(' '));
    assert.equal(task.examples[0].reference, words.slice(100).join(' '));
    // Python's whitespace, not JavaScript's: U+001C and U+0085 split, U+FEFF does not.
    assert.deepEqual(pythonSplit('a\x1cb\x85c\ufeffd'), ['a', 'b', 'c\ufeffd']);
  });

  it('human_eval (gzip parquet) and top_v2', async function () {
    const humaneval = await load({ dataset: 'human_eval', randomShuffle: false });
    assert.deepEqual(humaneval.examples[0], { prompt: 'def add(a, b):\n    """Add."""\n', reference: '    return a + b\n' });
    const top = await load({ dataset: 'top_v2', randomShuffle: false });
    assert.deepEqual(top.examples[1], {
      prompt: 'will it rain today',
      reference: '[IN:GET_WEATHER [SL:WEATHER_ATTRIBUTE rain ] [SL:DATE_TIME today ] ]',
    });
  });

  it('custom_jsonl with --prompt-field / --response-field and a --template', async function () {
    const file = path.join(cache.home, 'custom.jsonl');
    writeJsonLines(file, [{ q: 'What is 2+2?', a: '4', extra: 1 }, { q: 'Name a colour.', a: 'red' }]);
    const task = await load({ dataset: 'custom_jsonl', data: file, promptField: 'q', responseField: 'a', randomShuffle: false, template: '[INST] {message} [/INST] {{ok}}' });
    assert.deepEqual(task.examples[0], { prompt: '[INST] What is 2+2? [/INST] {ok}', reference: '4' });
  });

  it("applyTemplate is Python's str.format(message=…)", function () {
    assert.equal(applyTemplate('x', undefined), 'x');
    assert.equal(applyTemplate('x', '{message}{message}'), 'xx');
    assert.equal(applyTemplate('x', '{{{message}}}'), '{x}');
    assert.throws(() => applyTemplate('x', '{other}'), TemplateError);
    assert.throws(() => applyTemplate('x', 'a } b'), /single "\}"/);
  });

  describe('bad data: a clear error naming the file, before any model work', function () {
    it('a dataset not in the cache names the repository and the download command', async function () {
      const empty = makeHubCache();
      process.env.HF_HOME = empty.home;
      try {
        await assert.rejects(load({ dataset: 'top_v2' }), (error: Error) => {
          assert.ok(error instanceof DatasetError);
          assert.match(error.message, /WillHeld\/top_v2/);
          assert.match(error.message, /hf download WillHeld\/top_v2 --repo-type dataset --include "\*test\*"/);
          return true;
        });
        await assert.rejects(load({ dataset: 'cnn_dm_summarization' }), /hf download abisee\/cnn_dailymail --repo-type dataset --include "3\.0\.0\/test-\*"/);
      } finally {
        process.env.HF_HOME = cache.home;
        fs.rmSync(empty.home, { recursive: true, force: true });
      }
    });

    it('a missing column, a non-string value, an empty split, a file that is not parquet', async function () {
      const dir = fs.mkdtempSync(path.join(cache.home, 'bad-'));
      const noSummary = path.join(dir, 'no-summary.parquet');
      writeParquet(noSummary, { document: ['d'], id: ['1'] });
      await assert.rejects(load({ dataset: 'xsum_summarization', data: noSummary }), /no-summary\.parquet: no column "summary" \(its columns: "document", "id"\)/);

      const numbers = path.join(dir, 'numbers.jsonl');
      writeJsonLines(numbers, [{ prompt: 'p', response: 3 }]);
      await assert.rejects(load({ dataset: 'custom_jsonl', data: numbers }), /numbers\.jsonl: record 1: column "response" is not a string/);

      const empty = path.join(dir, 'empty.jsonl');
      fs.writeFileSync(empty, '\n');
      await assert.rejects(load({ dataset: 'custom_jsonl', data: empty }), /the test split has no rows/);

      const garbage = path.join(dir, 'garbage.parquet');
      fs.writeFileSync(garbage, 'this is not parquet at all');
      await assert.rejects(load({ dataset: 'top_v2', data: garbage }), /garbage\.parquet: not a readable parquet file/);

      const notJson = path.join(dir, 'bad.jsonl');
      fs.writeFileSync(notJson, '{"prompt": "a", "response": "b"}\n{oops\n');
      await assert.rejects(load({ dataset: 'custom_jsonl', data: notJson }), /bad\.jsonl:2: not JSON/);
    });

    it('--num-samples 0, --n-shot on a task without shots, more shots than train rows, a missing --data path', async function () {
      await assert.rejects(load({ dataset: 'top_v2', numSamples: 0 }), /--num-samples must be ≥ 1, got 0/);
      await assert.rejects(load({ dataset: 'human_eval', nShot: 1 }), /--n-shot applies to the summarization datasets/);
      await assert.rejects(load({ dataset: 'xsum_summarization', nShot: 4 }), /--n-shot 4 is more than the train split's 3 rows/);
      await assert.rejects(load({ dataset: 'custom_jsonl', data: '/nonexistent/x.jsonl' }), /--data \/nonexistent\/x\.jsonl: no such file or folder/);
      await assert.rejects(load({ dataset: 'custom_jsonl' }), /custom_jsonl needs --data FILE\.jsonl/);
    });
  });
});
