// What a new user hits (issue 14), through real child processes where pipes and signals matter: output piped into
// `head` ends quietly with exit 0; Ctrl-C stops generation, prints the stats so far and exits 130; piped stdout is
// exactly the text; flags are named in errors (exit 2) with did-you-mean; -h, --version, --prompt-ids; a context
// beyond the checkpoint's max_position_embeddings is refused. In the API: temperature > 0 samples and 0 is greedy;
// leaving a stream() loop early cancels the generation; an abort during a long prefill stops between chunks. A
// model argument may be a Hub id found in the HuggingFace cache; a file or an absent id gets an error with the fix.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ratioSpread } from '../lib/benchmark.js';
import { recommendExitLayer, type ExitLayerRow } from '../lib/eval/exit-layer-eval.js';
import { resolveOptions } from '../lib/generation/options.js';
import { PREFILL_CHUNK } from '../lib/generation/sequence.js';
import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { packageRoot, runLayerskip as layerskip } from './helpers/cli.js';

const BIN = path.join(packageRoot, 'bin', 'layerskip.js');
const ENV = { ...process.env, LAYERSKIP_FROM_SOURCE: '1' };

describe('CLI and API behaviour a new user relies on', function () {
  let modelDir: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
  });

  it('ends quietly with exit 0 when the reader of its output goes away (| head)', function () {
    const script = `"${process.execPath}" "${BIN}" generate --model "${modelDir}" --prompt Hello --max-steps 1500 --context-length 2048 | head -c 5 > /dev/null; echo "status=\${PIPESTATUS[0]}"`;
    const run = spawnSync('bash', ['-c', script], { cwd: packageRoot, env: ENV, encoding: 'utf8', timeout: 60000 });
    assert.match(run.stdout, /status=0/, run.stderr);
    assert.doesNotMatch(run.stderr, /EPIPE|Error|at /);
  });

  it('stops on Ctrl-C, prints the stats so far and exits 130', async function () {
    const child = spawn(process.execPath, [BIN, 'generate', '--model', modelDir, '--prompt', 'Hello', '--max-steps', '2000', '--context-length', '2048'], {
      cwd: packageRoot,
      env: ENV,
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.stdout.once('data', () => child.kill('SIGINT'));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /finish: abort/);
  });

  it('writes exactly the text to a pipe (no newline of its own)', function () {
    const json = layerskip(['generate', '--model', modelDir, '--prompt', 'Hello', '--max-steps', '6', '--json']);
    const plain = layerskip(['generate', '--model', modelDir, '--prompt', 'Hello', '--max-steps', '6']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, JSON.parse(json.stdout).text);
  });

  it('names flags in errors (exit 2), suggests the closest one, and knows -h, --version and --prompt-ids', function () {
    const typo = layerskip(['generate', '--model', modelDir, '--promt', 'x']);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr.trim(), 'layerskip: unknown option --promt (did you mean --prompt?)');
    const topP = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--top-p', '3']);
    assert.equal(topP.code, 2);
    assert.match(topP.stderr, /^layerskip: --top-p must be in \(0, 1\], got 3$/m);
    const steps = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--max-steps', '-5']);
    assert.equal(steps.code, 2);
    assert.match(steps.stderr, /--max-steps must be an integer in \[0, \d+\], got -5/);
    assert.match(layerskip(['genrate']).stderr, /did you mean generate\?/);
    const help = layerskip(['generate', '-h']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: layerskip generate/);
    const version = layerskip(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^layerskip \d+\.\d+\.\d+\n$/);
    const ids = layerskip(['generate', '--model', modelDir, '--prompt-ids', '128000,9906', '--max-steps', '2', '--json']);
    assert.equal(ids.code, 0, ids.stderr);
    assert.deepEqual(JSON.parse(ids.stdout).stats.promptTokens, 2);
    assert.equal(layerskip(['generate', '--model', modelDir, '--prompt-ids', '1,x']).code, 2);
    const threads = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--max-steps', '1', '--threads', '200']);
    assert.equal(threads.code, 0, threads.stderr);
    assert.match(threads.stderr, /warning: --threads 200 is more than the \d+ cores available to this process/);
  });

  it('refuses a context longer than the checkpoint was trained for, naming both', function () {
    const run = layerskip(['generate', '--model', modelDir, '--prompt', 'x', '--context-length', '200000']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--context-length 200000 exceeds the checkpoint's max_position_embeddings \(131072\)/);
    const window = layerskip(['eval', '--data', path.join(packageRoot, 'lib', 'model.ts'), '--extensions', '.ts', '--window', '100000']);
    assert.equal(window.code, 2);
    assert.match(window.stderr, /--window 100000 exceeds the checkpoint's max_position_embeddings \(256\)/);
  });

  describe('API', function () {
    let model: LayerSkipModel;
    before(async function () {
      model = await loadModel(modelDir, { threads: 1, contextLength: 2048 });
    });
    after(async function () {
      await model?.dispose();
    });

    it('samples when temperature > 0, is greedy at 0, and sample: false forces greedy', function () {
      const limits = { numLayers: 2, vocabSize: 100, eosTokenIds: [] };
      assert.equal(resolveOptions({ temperature: 0.8 }, limits).temperature, 0.8);
      assert.equal(resolveOptions({ temperature: 0 }, limits).temperature, 0);
      assert.equal(resolveOptions({ temperature: 0.8, sample: false }, limits).temperature, 0);
      assert.equal(resolveOptions({ sample: true }, limits).temperature, 0.6);
      assert.equal(resolveOptions({}, limits).temperature, 0);
      assert.throws(() => resolveOptions({ temperature: -1 }, limits), /temperature must be a number in \[0, 1000\]/);
    });

    it('reports a speedup only when the paired ratios agree on a side of 1', function () {
      assert.equal(ratioSpread([1.3, 1.35, 1.4, 1.32, 1.28]).verdict, 'faster');
      assert.equal(ratioSpread([0.8, 0.82, 0.85]).verdict, 'slower');
      // The run: autoregressive 89.8, 625.8 and 61.7 tok/s against a steady 250.
      assert.equal(ratioSpread([250 / 89.8, 250 / 625.8, 250 / 61.7]).verdict, 'too noisy to conclude');
      assert.equal(ratioSpread([1.5, 1.6]).verdict, 'too noisy to conclude', 'two pairs are too few');
    });

    it('never recommends an exit layer from pass times too noisy to trust', function () {
      const rows = [1, 2, 3].map((exitLayer) => ({ exitLayer, agreement: exitLayer === 1 ? 0.099 : 0.5 })) as ExitLayerRow[];
      // One decode step measured at 40 ms in one round and 4 ms in another: a busy machine, not the model.
      const noisy = { stackMs: [40, 41, 42, 43, 44, 45, 46, 47, 48], headMs: Array(9).fill(1), spread: 9 };
      const recommendation = recommendExitLayer(rows, 4, 0.2, noisy)!;
      assert.equal(recommendation.costModel, 'memory-bound (pass times too noisy)');
      assert.ok(recommendation.predictedSpeedup < 2, `a sober prediction (${recommendation.predictedSpeedup.toFixed(2)}×)`);
      const steady = { ...noisy, spread: 0.05 };
      assert.equal(recommendExitLayer(rows, 4, 0.2, steady)!.costModel, 'measured');
    });

    it('cancels the generation when the caller leaves a stream() loop early', async function () {
      const stream = model.stream('Hello', { maxSteps: 1500, stopTokenIds: [] });
      let pieces = 0;
      for await (const _ of stream) if (++pieces === 2) break;
      const result = await stream.result;
      assert.equal(result.finishReason, 'abort');
      assert.ok(result.tokenIds.length < 100, `stopped soon after (${result.tokenIds.length} tokens)`);
    });

    it('keeps the end of a prompt too long for the context with truncatePrompt "left" (and its BOS)', async function () {
      const prompt = [128000, ...Array.from({ length: 3000 }, (_, i) => 1000 + (i % 700))];
      await assert.rejects(model.generate(prompt, { maxSteps: 5 }), /the prompt has 3001 tokens; the context holds 2048/);
      const result = await model.generate(prompt, { maxSteps: 5, truncatePrompt: 'left', stopTokenIds: [] });
      assert.equal(result.promptTokenIds.length, 2048 - 5);
      assert.equal(result.promptTokenIds[0], 128000);
      assert.deepEqual(result.promptTokenIds.slice(1), prompt.slice(prompt.length - (2048 - 5 - 1)));
      assert.equal(result.tokenIds.length, 5);
    });

    it('notices an abort between prefill chunks of a long prompt', async function () {
      const prompt = Array.from({ length: PREFILL_CHUNK * 6 }, (_, i) => 1000 + (i % 500));
      const controller = new AbortController();
      const generation = model.generate(prompt, { maxSteps: 5, signal: controller.signal });
      setImmediate(() => controller.abort());
      const result = await generation;
      assert.equal(result.finishReason, 'abort');
      assert.equal(result.tokenIds.length, 0, 'no token: the prompt was never finished');
      const whole = await model.generate(prompt, { maxSteps: 3 });
      assert.equal(whole.tokenIds.length, 3, 'the next generation starts from a consistent cache');
    });
  });
});

describe('model argument: a folder, a file, or a HuggingFace Hub id', function () {
  let modelDir: string;
  let cache: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
    // A HuggingFace cache holding the fixture as "org/tiny" (a symlinked snapshot, as the hub client writes).
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-hf-cache-'));
    const repo = path.join(cache, 'models--org--tiny');
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.mkdirSync(path.join(repo, 'snapshots'));
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'abc123\n');
    fs.symlinkSync(modelDir, path.join(repo, 'snapshots', 'abc123'));
  });
  after(function () {
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('finds a Hub id in the HuggingFace cache and explains how to download one that is not', function () {
    const env = { HF_HUB_CACHE: cache };
    const found = spawnSync(process.execPath, [BIN, 'generate', '--model', 'org/tiny', '--prompt', 'Hi', '--max-steps', '2', '--json'], {
      cwd: packageRoot, env: { ...ENV, ...env }, encoding: 'utf8',
    });
    assert.equal(found.status, 0, found.stderr);
    const missing = spawnSync(process.execPath, [BIN, 'generate', '--model', 'facebook/layerskip-llama3.2-1B', '--prompt', 'Hi'], {
      cwd: packageRoot, env: { ...ENV, ...env }, encoding: 'utf8',
    });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /looks like a Hub id/);
    assert.match(missing.stderr, /huggingface-cli download facebook\/layerskip-llama3\.2-1B --local-dir/);
  });

  it('says a file is not a checkpoint folder', function () {
    const run = layerskip(['generate', '--model', path.join(modelDir, 'config.json'), '--prompt', 'x']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /config\.json is a file: give the checkpoint's folder/);
  });
});
