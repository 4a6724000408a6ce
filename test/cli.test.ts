// The `layerskip` command line: generate (streaming, --json, stdin, LayerSkip spellings), help, usage errors,
// benchmark.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureFixtures } from './fixtures/make-fixtures.js';
import { runLayerskip as layerskip } from './helpers/cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');


describe('CLI', function () {
  let modelDir: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
  });

  it('--help lists the commands and each command has --help', function () {
    const main = layerskip(['--help']);
    assert.equal(main.code, 0);
    assert.match(main.stdout, /generate/);
    const generate = layerskip(['generate', '--help']);
    assert.equal(generate.code, 0);
    assert.match(generate.stdout, /--max-steps N/);
    assert.match(generate.stdout, /--top-p P/);
  });

  it('generate streams text and ends with a stats line', function () {
    const run = layerskip(['generate', '--model', modelDir, '--prompt', 'Hello world', '--max-steps', '8']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.length > 1);
    assert.match(run.stderr, /prompt 3 tokens, generated \d+ tokens; prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s/);
  });

  it('--json prints one machine-readable result; LayerSkip spellings are accepted', function () {
    const args = ['generate', '--model', modelDir, '--prompt', 'Hi', '--max_steps', '6', '--sample', 'True', '--seed', '5', '--json'];
    const first = layerskip(args);
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout);
    assert.ok(result.tokenIds.length <= 6);
    assert.equal(typeof result.text, 'string');
    assert.equal(result.stats.promptTokens, 2);
    assert.deepEqual(JSON.parse(layerskip(args).stdout).tokenIds, result.tokenIds); // same seed, same tokens
    const greedy = JSON.parse(layerskip(['generate', '--model', modelDir, '--prompt', 'Hi', '--max-steps', '6', '--sample', 'False', '--json']).stdout);
    assert.equal(greedy.stats.generatedTokens, greedy.tokenIds.length);
  });

  it('reads the prompt from stdin', function () {
    const run = layerskip(['generate', '--model', modelDir, '--max-steps', '3', '--json'], 'Hello world');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).stats.promptTokens, 3);
  });

  it('usage errors exit 2 with one clear line; runtime errors exit 1', function () {
    const unknown = layerskip(['generate', '--model', modelDir, '--bogus', '1']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr.trim(), 'layerskip: unknown option --bogus (see --help)');
    const badNumber = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--max-steps', 'many']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--max-steps must be an integer, got "many"/);
    const badCommand = layerskip(['fly']);
    assert.equal(badCommand.code, 2);
    assert.match(badCommand.stderr, /unknown command "fly"/);
    const missing = layerskip(['generate', '--model', path.join(root, 'no-such-model'), '--prompt', 'x']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /model folder not found/);
    const badOption = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--top-p', '3']);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /--top-p must be in \(0, 1\]/);
  });

  it('benchmark reports throughput and, with --self-speculative, an identical-output speedup', function () {
    const base = ['benchmark', '--model', modelDir, '--prompt-tokens', '8', '--generate-tokens', '8', '--repeats', '2', '--threads', '1'];
    const plain = layerskip([...base, '--min-time', '0', '--json']);
    assert.equal(plain.code, 0, plain.stderr);
    const result = JSON.parse(plain.stdout);
    assert.equal(result.decodeTokensPerSecond.length, 2);
    // --min-time adds repeats until that much time has passed (a noisy machine gets more samples).
    const timed = JSON.parse(layerskip([...base, '--min-time', '0.3', '--json']).stdout);
    assert.ok(timed.repeats > 2 && timed.repeats <= 100 && timed.decodeTokensPerSecond.length === timed.repeats, String(timed.repeats));
    assert.ok(result.medianPrefillTokensPerSecond > 0 && result.medianDecodeTokensPerSecond > 0);
    assert.ok(result.rooflineFraction > 0, 'the CPU backend reports a roofline');
    assert.equal(result.selfSpeculative, undefined);

    const table = layerskip([...base, '--min-time', '0', '--self-speculative', '--exit-layer', '1', '--num-speculations', '3']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /\| decode \(8 tokens\) \|/);
    assert.match(table.stdout, /self-speculative, E = 1, k = 3/);
    assert.match(table.stdout, /speedup (?:[\d.]+×|too noisy to conclude) \((?:all|middle half) of \d+ per-prompt ratios [\d.]+–[\d.]+×[^)]*\) · acceptance [\d.]+% · output identical to autoregressive/);

    const noExit = layerskip([...base, '--self-speculative']);
    assert.equal(noExit.code, 2);
    assert.match(noExit.stderr, /--self-speculative needs --exit-layer E/);
  });
});
