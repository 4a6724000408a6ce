// LayerSkip's task benchmarks end to end, through real child processes of the CLI: `benchmark --dataset` (the
// metrics table, --out JSON, --verbose, one strategy), the Hub datasets read from a fake HuggingFace cache (HF_HOME)
// with the prompts LayerSkip builds, a dataset missing from the cache reported before any model work, bad input
// named with its flag or file, Ctrl-C keeping the metrics so far, `sweep` (CSV, pictures, resuming, another
// sweep's folder refused, --write-defaults), the checkpoint's assistant_early_exit read by `generate`, and
// `correctness --dataset`. Outputs are checked for shape and agreement between strategies, never for timings.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ensureFixtures } from './fixtures/make-fixtures.js';
import { packageRoot, runLayerskip as layerskip, type CliRun } from './helpers/cli.js';
import { makeHubCache, writeAllHubDatasets, writeJsonLines, type HubCache } from './helpers/task-fixtures.js';

const BIN = path.join(packageRoot, 'bin', 'layerskip.js');
const DEFAULT_MODEL = path.join(packageRoot, 'models', 'default');
const DEFAULT_TASK = path.join(DEFAULT_MODEL, 'held_out_functions.jsonl');
const DEFAULT_LAYERS = 8;
// The smallest fixture with a tokenizer (2 layers, Llama 2 vocabulary): the Hub datasets are text.
const TOKENIZER_FIXTURE = 'tok-llama2';
const SWEEP_CSV_HEADER = 'exit_layer,num_speculations,acceptance_rate,total_time,time_per_token,tokens_per_second';

/** `layerskip ...args` with HF_HOME set to `hfHome` (and no HF_HUB_CACHE of the caller's to override it). */
function layerskipWithHfHome(hfHome: string, args: string[]): CliRun {
  const { HF_HUB_CACHE: _ignored, ...env } = process.env;
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: packageRoot,
    encoding: 'utf8',
    env: { ...env, HF_HOME: hfHome, LAYERSKIP_FROM_SOURCE: '1' },
    timeout: 60000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The rows of the metrics table: metric name → one cell per strategy column (the header row under "metric"). */
function metricsTable(stdout: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('| ')) continue;
    const [name, ...cells] = line.slice(2, -2).split(' | ');
    rows.set(name, cells);
  }
  return rows;
}

/** The prompts printed by --verbose, exactly (a prompt's own trailing newline included). */
function verbosePrompts(stdout: string): string[] {
  return [...stdout.matchAll(/\[Prompt\]:\n([\s\S]*?)\n\[Reference Response\]:\n/g)].map((match) => match[1]);
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;

/** A copy of the bundled model outside the repository, whose generation_config.json the tests may rewrite. */
function copyDefaultModel(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    fs.copyFileSync(path.join(DEFAULT_MODEL, file), path.join(dir, file));
  }
  return dir;
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** The bundled model's generation_config.json without speculation defaults (the copy's starting point). */
function plainGenerationConfig(): Record<string, unknown> {
  const { assistant_early_exit: _exitLayer, num_assistant_tokens: _k, ...config } = readJson(path.join(DEFAULT_MODEL, 'generation_config.json'));
  return config;
}
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// k when none is given: the bundled model's own num_assistant_tokens (its generation_config.json), else 6.
const bundledK: number =
  (JSON.parse(fs.readFileSync(path.join('models', 'default', 'generation_config.json'), 'utf8')) as { num_assistant_tokens?: number }).num_assistant_tokens ?? 6;

describe('task benchmarks through the CLI', function () {
  let scratch: string;
  let hub: HubCache;
  let tokenizerModel: string;

  before(function () {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-task-cli-'));
    hub = makeHubCache();
    writeAllHubDatasets(hub);
    tokenizerModel = ensureFixtures([TOKENIZER_FIXTURE])[TOKENIZER_FIXTURE];
  });

  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
    fs.rmSync(hub.home, { recursive: true, force: true });
  });

  describe('benchmark --dataset on the bundled task', function () {
    const GREEDY_3 = ['benchmark', '--dataset', 'custom_jsonl', '--num-samples', '3', '--sample', 'False'];

    it('compares both strategies in one table, identical greedy outputs, and --out writes the run as JSON', function () {
      const out = path.join(scratch, 'benchmark-out');
      const run = layerskip([...GREEDY_3, '--exit-layer', '4', '--num-speculations', '3', '--out', out]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^custom_jsonl: 3 of 60 examples \(shuffled with seed 42\) from .*held_out_functions\.jsonl$/m);
      const table = metricsTable(run.stdout);
      assert.deepEqual(table.get('metric'), ['autoregressive', 'self-speculative (E 4, k 3)']);
      for (const metric of ['ROUGE-1', 'ROUGE-2', 'ROUGE-3', 'ROUGE-L', 'BLEU-4', 'edit distance (chars)', 'acceptance rate', 'tokens/s (mean)']) {
        assert.equal(table.get(metric)?.length, 2, `${metric} has a cell per strategy`);
      }
      for (const metric of ['ROUGE-1', 'ROUGE-2', 'ROUGE-3', 'ROUGE-L', 'BLEU-4', 'edit distance (chars)', 'tokens generated']) {
        const [autoregressive, speculative] = table.get(metric)!;
        assert.equal(autoregressive, speculative, `${metric}: greedy outputs score the same`);
      }
      assert.equal(table.get('acceptance rate')![0], '—');
      assert.match(table.get('acceptance rate')![1], /^\d+\.\d%$/);
      for (const cell of table.get('tokens/s (mean)')!) assert.ok(Number(cell) > 0, `tokens/s ${cell}`);
      assert.match(run.stdout, /^outputs identical in 3 of 3 examples$/m);
      assert.match(run.stdout, /^speedup /m);

      const files = fs.readdirSync(out);
      assert.equal(files.length, 1, files.join(', '));
      assert.match(files[0], /^benchmark_\d{8}_\d{6}\.json$/);
      assert.match(run.stdout, new RegExp(`^wrote ${escapeRegExp(path.join(out, files[0]))}$`, 'm'));
      const record = readJson(path.join(out, files[0]));
      assert.equal(record.arguments.dataset, 'custom_jsonl');
      assert.equal(record.arguments['num-samples'], 3);
      assert.equal(record.arguments['exit-layer'], 4);
      assert.equal(record.arguments.model, DEFAULT_MODEL);
      assert.deepEqual(record.generationConfig, { maxSteps: 512, sample: false, exitLayer: 4, numSpeculations: 3, strategies: ['autoregressive', 'self_speculative'] });
      assert.deepEqual(record.task, { dataset: 'custom_jsonl', files: [DEFAULT_TASK], shotFiles: [], splitRows: 60, examples: 3 });
      const { metrics } = record;
      assert.deepEqual([metrics.examples, metrics.completed, metrics.interrupted], [3, 3, false]);
      assert.deepEqual(metrics.strategies.map((m: { strategy: string }) => m.strategy), ['autoregressive', 'self_speculative']);
      assert.deepEqual([metrics.strategies[1].exitLayer, metrics.strategies[1].numSpeculations], [4, 3]);
      for (const strategy of metrics.strategies) {
        for (const key of ['rouge1', 'rouge2', 'rouge3', 'rougeL', 'bleu4', 'editDistance']) assert.equal(typeof strategy.text[key], 'number', key);
        assert.equal(strategy.text.count, 3);
        assert.ok(strategy.tokensPerSecond > 0);
      }
      assert.deepEqual(metrics.strategies[0].text, metrics.strategies[1].text);
      assert.deepEqual([metrics.comparison.examplesCompared, metrics.comparison.identicalOutputs], [3, 3]);
    });

    it('--verbose prints every prompt, reference and response; one strategy gives one column and no speedup', function () {
      const verbose = layerskip([...GREEDY_3, '--exit-layer', '4', '--verbose']);
      assert.equal(verbose.code, 0, verbose.stderr);
      for (const marker of [/^\[Example \d+\]$/, /^\[Prompt\]:$/, /^\[Reference Response\]:$/, /^\[Model Response, autoregressive\]:$/, /^\[Model Response, self_speculative\]:$/, /^\[Acceptance Rate\]: [01]\.\d{4}$/]) {
        assert.equal(count(verbose.stdout, marker), 3, String(marker));
      }
      const taskPrompts = new Set(fs.readFileSync(DEFAULT_TASK, 'utf8').trim().split('\n').map((line) => JSON.parse(line).prompt));
      for (const prompt of verbosePrompts(verbose.stdout)) assert.ok(taskPrompts.has(prompt), `a prompt of the task file: ${JSON.stringify(prompt)}`);
      // No --num-speculations: the column names the k the runs used (the default 6).
      assert.deepEqual(metricsTable(verbose.stdout).get('metric'), ['autoregressive', `self-speculative (E 4, k ${bundledK})`]);

      const single = layerskip([...GREEDY_3, '--generation-strategy', 'autoregressive']);
      assert.equal(single.code, 0, single.stderr);
      const table = metricsTable(single.stdout);
      assert.deepEqual(table.get('metric'), ['autoregressive']);
      assert.equal(table.get('ROUGE-1')!.length, 1);
      assert.doesNotMatch(single.stdout, /speedup|outputs identical/);
    });
  });

  describe('Hub datasets from the HuggingFace cache', function () {
    const TASK_ARGS = ['--num-samples', '2', '--max-steps', '4', '--sample', 'False', '--exit-layer', '1', '--verbose'];

    function benchmarkHub(dataset: string, extra: string[] = []): { run: CliRun; prompts: string[] } {
      const run = layerskipWithHfHome(hub.home, ['benchmark', '--model', tokenizerModel, '--dataset', dataset, ...TASK_ARGS, ...extra]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^outputs identical in 2 of 2 examples$/m);
      const prompts = verbosePrompts(run.stdout);
      assert.equal(prompts.length, 2, run.stdout);
      return { run, prompts };
    }

    it('builds the summarization prompts of cnn_dailymail (3.0.0) and xsum (parquet-converted branch)', function () {
      const cnn = benchmarkHub('cnn_dm_summarization');
      assert.match(cnn.run.stdout, /^cnn_dm_summarization: 2 of 10 examples .* from .*\/3\.0\.0\/test-00000-of-00001\.parquet$/m);
      for (const prompt of cnn.prompts) {
        assert.ok(prompt.startsWith('Article: test article '), JSON.stringify(prompt));
        assert.ok(prompt.endsWith('\nSummary:'), JSON.stringify(prompt));
      }
      assert.doesNotMatch(cnn.run.stdout, /WRONG CONFIG/);

      const xsum = benchmarkHub('xsum_summarization');
      assert.match(xsum.run.stdout, /^xsum_summarization: 2 of 2 examples .* from .*\/default\/test\/0000\.parquet$/m);
      assert.deepEqual(new Set(xsum.prompts), new Set(['Article: The first document.\nIt has two lines.\nSummary:', 'Article: Second document.\nSummary:']));
    });

    it('reads human_eval (gzip parquet), top_v2 and cnn_dm_lm as LayerSkip builds them', function () {
      const humanEval = benchmarkHub('human_eval');
      assert.deepEqual(new Set(humanEval.prompts), new Set(['def add(a, b):\n    """Add."""\n', 'def neg(x):\n    """Negate."""\n']));
      const top = benchmarkHub('top_v2');
      assert.deepEqual(new Set(top.prompts), new Set(['set an alarm for 7 am', 'will it rain today']));
      // Articles under 100 words: the prompt is the whole article, its words joined by single spaces.
      const lm = benchmarkHub('cnn_dm_lm');
      for (const prompt of lm.prompts) assert.match(prompt, /^test article \d \(CNN\) -- words( w)* end\.$/);
    });

    it('--n-shot 2 puts two train examples before every cnn_dailymail prompt', function () {
      const { run, prompts } = benchmarkHub('cnn_dm_summarization', ['--n-shot', '2']);
      assert.match(run.stdout, /^cnn_dm_summarization: 2 of 10 examples \(shuffled with seed 42, 2-shot\)/m);
      const shot = 'Article: train article \\d [^\\n]*\\nSummary: train highlight \\d first\\.train highlight \\d second\\.\\n';
      const shape = new RegExp(`^(${shot}){2}\\nArticle: test article \\d[^\\n]*\\nSummary:$`);
      for (const prompt of prompts) assert.match(prompt, shape);
      assert.equal(prompts[0].split('\n\nArticle: test')[0], prompts[1].split('\n\nArticle: test')[0], 'the same shots for every example');
    });

    it('reports a dataset missing from the cache with its Hub repo and download command, before loading the model', function () {
      const empty = fs.mkdtempSync(path.join(scratch, 'hf-empty-'));
      const missingModel = path.join(scratch, 'no-such-model');
      const xsum = layerskipWithHfHome(empty, ['benchmark', '--model', missingModel, '--dataset', 'xsum_summarization']);
      assert.equal(xsum.code, 1);
      assert.match(xsum.stderr, /the test split of the Hub dataset EdinburghNLP\/xsum, not found in the HuggingFace cache/);
      assert.match(xsum.stderr, /^ {2}hf download EdinburghNLP\/xsum --repo-type dataset --revision refs\/convert\/parquet --include "\*test\*"$/m);
      assert.ok(xsum.stderr.includes(path.join(empty, 'hub')), 'names the cache it looked in');
      assert.doesNotMatch(xsum.stderr, /no-such-model/);
      assert.equal(xsum.stdout, '');

      const cnn = layerskipWithHfHome(empty, ['sweep', '--model', missingModel, '--dataset', 'cnn_dm_summarization']);
      assert.equal(cnn.code, 1);
      assert.match(cnn.stderr, /Hub dataset abisee\/cnn_dailymail \(3\.0\.0\)/);
      assert.match(cnn.stderr, /hf download abisee\/cnn_dailymail --repo-type dataset --include "3\.0\.0\/test-\*"/);
    });
  });

  describe('bad input', function () {
    function refused(run: CliRun, code: number, message: RegExp): void {
      assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }

    it('names the flag of a bad value (exit 2)', function () {
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--num-samples', '0']), 2, /^layerskip: --num-samples must be ≥ 1, got 0/);
      refused(
        layerskip(['benchmark', '--dataset', 'nope']),
        2,
        /^layerskip: --dataset must be one of cnn_dm_summarization, xsum_summarization, cnn_dm_lm, human_eval, top_v2, custom_jsonl, got "nope"$/m,
      );
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--prompts-field', 'text']), 2, /unknown option --prompts-field \(did you mean --prompt-field\?\)/);
      refused(layerskip(['benchmark', '--repeats', '3', '--dataset', 'custom_jsonl']), 2, /^layerskip: --repeats does not apply with --dataset$/m);
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--generation-strategy', 'fast']), 2, /--generation-strategy must be autoregressive, self_speculative or both, got "fast"/);
      refused(layerskip(['sweep', '--dataset', 'custom_jsonl', '--exit-layers', '0:3']), 2, /^layerskip: --exit-layers: 0 is outside \[1, 7\]/m);
      refused(layerskip(['sweep', '--dataset', 'custom_jsonl', '--exit-layers', '1:L']), 2, new RegExp(`--exit-layers: ${DEFAULT_LAYERS} is outside \\[1, 7\\]`));
    });

    it('names the file and what is wrong with a bad --data (exit 1)', function () {
      const garbage = path.join(scratch, 'x.parquet');
      fs.writeFileSync(garbage, 'not parquet at all\n');
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--data', garbage]), 1, new RegExp(`${garbage}: not a readable parquet file`));
      const noResponse = path.join(scratch, 'no-response.jsonl');
      writeJsonLines(noResponse, [{ prompt: 'def f():', answer: '    pass' }]);
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--data', noResponse]), 1, new RegExp(`${noResponse}: no column "response" \\(its columns: "prompt", "answer"\\)`));
      const empty = path.join(scratch, 'empty.jsonl');
      fs.writeFileSync(empty, '');
      refused(layerskip(['correctness', '--dataset', 'custom_jsonl', '--data', empty]), 1, new RegExp(`${empty}: the test split has no rows`));
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--data', path.join(scratch, 'absent.jsonl')]), 1, /--data .*absent\.jsonl: no such file or folder/);
    });

    it('says so when no prompt fits the context, in benchmark and sweep', function () {
      const long = path.join(scratch, 'long.jsonl');
      fs.writeFileSync(long, JSON.stringify({ prompt: 'x '.repeat(400), response: 'y' }) + '\n');
      const fitsNothing = /none of the 1 prompts fits the model's context of 256 positions/;
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--data', long]), 1, fitsNothing);
      refused(layerskip(['sweep', '--dataset', 'custom_jsonl', '--data', long, '--out', path.join(scratch, 'sweep-long'), '--exit-layers', '1']), 1, fitsNothing);
    });

    it('refuses (usage, exit 2) a template with another field and --n-shot on a dataset without shots', function () {
      refused(layerskip(['benchmark', '--dataset', 'custom_jsonl', '--template', '{other}']), 2, /--template has the field \{other\}; the only field is \{message\}/);
      refused(
        layerskipWithHfHome(hub.home, ['benchmark', '--model', tokenizerModel, '--dataset', 'human_eval', '--n-shot', '1']),
        2,
        /--n-shot applies to cnn_dm_summarization and xsum_summarization, not human_eval/,
      );
    });
  });

  it('stops on Ctrl-C and prints the metrics of the examples completed (exit 130)', async function () {
    const child = spawn(process.execPath, [BIN, 'benchmark', '--dataset', 'custom_jsonl', '--sample', 'False', '--exit-layer', '4', '--verbose'], {
      cwd: packageRoot,
      env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' },
    });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
      if (!interrupted && stdout.includes('[Example 2]')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
    assert.ok(interrupted, `saw [Example 2] (stderr: ${stderr})`);
    assert.equal(code, 130, stderr);
    const done = /^interrupted: metrics over the (\d+) examples completed of 60$/m.exec(stdout);
    assert.ok(done, stdout.slice(-2000));
    const completed = Number(done[1]);
    assert.ok(completed >= 2 && completed < 60, `${completed} examples completed`);
    assert.equal(count(stdout, /^\[Example \d+\]$/), completed, 'the example in progress is dropped whole');
    const table = metricsTable(stdout);
    assert.deepEqual(table.get('metric'), ['autoregressive', `self-speculative (E 4, k ${bundledK})`]);
    assert.deepEqual(table.get('examples scored'), [String(completed), String(completed)]);
  });

  describe('sweep', function () {
    let model: string;
    // The copy is not the bundled model, so its task is passed explicitly.
    const sweepArgs = (out: string, ...extra: string[]) => [
      'sweep', '--dataset', 'custom_jsonl', '--data', DEFAULT_TASK, '--model', model, '--sample', 'False', '--out', out, ...extra,
    ];
    const csvLines = (out: string) => fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8').trimEnd().split('\n');

    before(function () {
      model = copyDefaultModel(path.join(scratch, 'model-copy'));
    });

    it('writes the grid to sweep.csv and two heatmaps, continues a stopped sweep and refuses one with other settings', function () {
      const out = path.join(scratch, 'sweep');
      const first = layerskip(sweepArgs(out, '--num-samples', '3', '--exit-layers', '2:3', '--num-speculations', '1:2'));
      assert.equal(first.code, 0, first.stderr);
      const lines = csvLines(out);
      assert.equal(lines[0], SWEEP_CSV_HEADER);
      assert.deepEqual(lines.slice(1).map((line) => line.split(',').slice(0, 2).join(':')), ['2:1', '2:2', '3:1', '3:2']);
      for (const line of lines.slice(1)) {
        const values = line.split(',').map(Number);
        assert.equal(values.length, 6);
        assert.ok(values.every(Number.isFinite) && values[2] >= 0 && values[2] <= 1 && values[5] > 0, line);
      }
      for (const picture of ['sweep_tokens_per_second.svg', 'sweep_acceptance_rate.svg']) {
        assert.ok(fs.readFileSync(path.join(out, picture), 'utf8').startsWith('<?xml'), picture);
      }
      assert.match(first.stdout, /^best: --exit-layer [23] --num-speculations [12] \(/m);
      assert.doesNotMatch(first.stdout, /continuing/);

      const more = layerskip(sweepArgs(out, '--num-samples', '3', '--exit-layers', '2:3', '--num-speculations', '1:3'));
      assert.equal(more.code, 0, more.stderr);
      assert.match(more.stdout, /^continuing .*sweep\.csv: 4 of 6 cells done$/m);
      assert.equal(count(more.stdout, /^exit_layer \d, num_speculations \d: /), 2, 'only the new cells run');
      const extended = csvLines(out);
      assert.equal(extended[0], SWEEP_CSV_HEADER);
      assert.deepEqual(extended.slice(1).map((line) => line.split(',').slice(0, 2).join(':')), ['2:1', '2:2', '2:3', '3:1', '3:2', '3:3']);
      assert.deepEqual([extended[1], extended[2], extended[4], extended[5]], lines.slice(1), 'the measured cells are kept byte for byte');

      const csvBefore = fs.readFileSync(path.join(out, 'sweep.csv'));
      const other = layerskip(sweepArgs(out, '--num-samples', '2', '--exit-layers', '2:3', '--num-speculations', '1:3'));
      assert.equal(other.code, 2);
      assert.match(other.stderr, new RegExp(`${escapeRegExp(out)} holds a sweep with other settings`));
      assert.deepEqual(fs.readFileSync(path.join(out, 'sweep.csv')), csvBefore, 'the CSV is untouched');
    });

    it('--write-defaults stores the best cell in generation_config.json only when it beat autoregressive decoding', function () {
      const out = path.join(scratch, 'sweep-defaults');
      const configFile = path.join(model, 'generation_config.json');
      const original = plainGenerationConfig();
      fs.writeFileSync(configFile, JSON.stringify(original, null, 2) + '\n');
      // --confirm 0: the best cell is chosen against the recorded baseline, which the second half moves.
      const args = sweepArgs(out, '--num-samples', '2', '--exit-layers', '2:3', '--num-speculations', '2', '--confirm', '0', '--write-defaults');

      // The outcome of a real sweep depends on timing: check the file agrees with what was printed.
      const checkOutcome = (run: CliRun, previous: object): 'written' | 'unchanged' => {
        assert.equal(run.code, 0, run.stderr);
        const best = /^best: --exit-layer (\d) --num-speculations (\d) \([\d.]+ tok\/s in the grid, acceptance [\d.]+%; ([\d.e+-]+)× the autoregressive baseline\)/m.exec(run.stdout);
        assert.ok(best, run.stdout);
        if (/^no cell beat autoregressive decoding: generation_config.json left unchanged$/m.test(run.stdout)) {
          assert.ok(Number(best[3]) <= 1, best[0]);
          assert.deepEqual(readJson(configFile), previous);
          return 'unchanged';
        }
        assert.match(run.stdout, new RegExp(`^writing assistant_early_exit ${best[1]}, num_assistant_tokens ${best[2]} to `, 'm'));
        assert.deepEqual(readJson(configFile), { ...original, assistant_early_exit: Number(best[1]), num_assistant_tokens: Number(best[2]) });
        return 'written';
      };
      const measured = checkOutcome(layerskip(args), original);

      // The other outcome, from the same (finished) sweep with its recorded baseline moved to the other side.
      const recordFile = path.join(out, 'sweep.json');
      const record = readJson(recordFile);
      const baseline = measured === 'written' ? 1e12 : 1e-6;
      fs.writeFileSync(recordFile, JSON.stringify({ ...record, baseline: { before: baseline, after: baseline } }));
      const afterMeasured = readJson(configFile);
      const forced = layerskip(args);
      assert.match(forced.stdout, /^continuing .*: 2 of 2 cells done$/m);
      assert.notEqual(checkOutcome(forced, afterMeasured), measured);
    });

    it('re-measures the fastest cells against autoregressive decoding, example by example, and picks from those', function () {
      const out = path.join(scratch, 'sweep-confirm');
      const run = layerskip(sweepArgs(out, '--num-samples', '2', '--exit-layers', '2:3', '--num-speculations', '1', '--confirm', '1'));
      assert.equal(run.code, 0, run.stderr);
      const confirmed = /^confirmed E (\d) k (\d): speedup [\d.]+× per example/m.exec(run.stdout);
      assert.ok(confirmed, run.stdout);
      assert.match(run.stdout, new RegExp(`^best: --exit-layer ${confirmed[1]} --num-speculations ${confirmed[2]} \\(.*against autoregressive on every example: speedup`, 'm'));
      const record = readJson(path.join(out, 'sweep.json')) as { confirmed: { speedup: { median: number; verdict: string } }[] };
      assert.equal(record.confirmed.length, 1);
      assert.ok(record.confirmed[0].speedup.median > 0 && typeof record.confirmed[0].speedup.verdict === 'string');
      assert.match(fs.readFileSync(path.join(out, 'sweep_tokens_per_second.svg'), 'utf8'), /best confirmed: E \d, k \d/);
    });

    it('generate takes the draft depth from generation_config.json, and names the file when it is missing or wrong', function () {
      const configFile = path.join(model, 'generation_config.json');
      const original = plainGenerationConfig();
      const generate = ['generate', '--model', model, '--prompt', 'def f(', '--generation-strategy', 'self_speculative', '--max-steps', '8'];

      fs.writeFileSync(configFile, JSON.stringify({ ...original, assistant_early_exit: 3, num_assistant_tokens: 2 }));
      const withDefaults = layerskip(generate);
      assert.equal(withDefaults.code, 0, withDefaults.stderr);
      assert.match(withDefaults.stderr, /^\[self_speculative exit 3\/8 on /m);

      fs.writeFileSync(configFile, JSON.stringify(original));
      const without = layerskip(generate);
      assert.equal(without.code, 2);
      assert.match(without.stderr, /^layerskip: --exit-layer: self_speculative decoding needs the draft depth/m);
      assert.match(without.stderr, /generation_config\.json has no assistant_early_exit/);

      fs.writeFileSync(configFile, JSON.stringify({ ...original, assistant_early_exit: 99 }));
      const invalid = layerskip(generate);
      assert.equal(invalid.code, 1);
      assert.ok(invalid.stderr.includes(`${configFile}: assistant_early_exit must be an integer in [1, 7], got 99`), invalid.stderr);
    });
  });

  it('correctness --dataset checks every example and --out writes the error count', function () {
    const out = path.join(scratch, 'correctness');
    const run = layerskip(['correctness', '--dataset', 'custom_jsonl', '--num-samples', '3', '--exit-layer', '3', '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^correctness: E = 3 of 8 layers, k = ${bundledK}, 64 tokens per prompt$`, 'm'));
    assert.equal(count(run.stdout, /^prompt [123]: ok \(\d+ tokens, [\d.]+% accepted\)$/), 3, run.stdout);
    assert.match(run.stdout, /^errors: 0 of 3 prompts, 0\.0% \(acceptance [\d.]+%\)$/m);
    const files = fs.readdirSync(out);
    assert.equal(files.length, 1);
    assert.match(files[0], /^correctness_\d{8}_\d{6}\.json$/);
    assert.deepEqual(readJson(path.join(out, files[0])), { errors: 0, error_pct: 0, exit_layer: 3, num_speculations: bundledK });
  });
});
