// trainModel end to end on a micro model: the loss falls at every exit layer, the exported HF checkpoint loads
// through loadModel and scores exactly what the trainer scored, a resumed run reproduces an uninterrupted one, and
// `layerskip train` reports bad options as usage errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel } from '../lib/model.js';
import { loadNativeBinding } from '../lib/native.js';
import { exportModel, llamaConfigJson } from '../lib/training/checkpoint.js';
import { TrainingInterrupted, trainModel, type TrainEvent } from '../lib/training/train.js';
import type { TrainOptions } from '../lib/training/train-options.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A small deterministic code-like corpus: 24 files of short Python functions. */
function writeCorpus(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const ops = [['add', '+'], ['sub', '-'], ['mul', '*']];
  for (let f = 0; f < 24; f++) {
    let text = `"""Module ${f}."""\n\n`;
    for (let i = 0; i < 12; i++) {
      const [name, op] = ops[(f + i) % ops.length];
      text += `def ${name}_${i}(a, b):\n    return a ${op} b\n\n`;
    }
    fs.writeFileSync(path.join(dir, `module_${String(f).padStart(2, '0')}.py`), text);
  }
}

const MICRO: Partial<TrainOptions> = {
  shape: { numLayers: 3, hiddenSize: 32, numHeads: 2, numKvHeads: 1, intermediateSize: 64, vocabSize: 300, contextLength: 64, ropeTheta: 10000, tieWordEmbeddings: true },
  sequenceLength: 32, batchSize: 4, steps: 120, learningRate: 1e-2, warmupSteps: 10, threads: 1, evalInterval: 60,
  checkpointInterval: 40, heldOutFraction: 0, layerDropout: 0.1, earlyExitScale: 'uniform', seed: 5,
};

describe('training', function () {
  this.timeout(120000);
  let work: string;
  let corpus: string;
  before(function () {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-train-'));
    corpus = path.join(work, 'corpus');
    writeCorpus(corpus);
  });
  after(function () {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('lowers the held-out loss at every exit layer and exports a checkpoint that generates', async function () {
    const out = path.join(work, 'micro');
    const events: TrainEvent[] = [];
    const result = await trainModel({ ...MICRO, data: [corpus], out }, (event) => events.push(event));
    const firstStep = events.find((e) => e.kind === 'step');
    assert.ok(firstStep && firstStep.kind === 'step');
    assert.equal(firstStep.exitLoss.size, 3, 'every exit is active with the early-exit loss on');
    assert.ok(result.finalEval);
    for (const exit of result.finalEval) {
      const start = firstStep.exitLoss.get(exit.exitLayer)!;
      assert.ok(exit.loss < 0.5 * start, `exit ${exit.exitLayer}: ${exit.loss} vs ${start} at the first step`);
    }
    for (const file of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'train_log.jsonl']) {
      assert.ok(fs.existsSync(path.join(out, file)), file);
    }
    const model = await loadModel(out);
    try {
      const generated = await model.generate('def add_1(a, b):', { maxTokens: 12 });
      assert.ok(generated.tokenIds.length > 0);
      assert.match(generated.text, /return|a|b/);
    } finally {
      await model.dispose();
    }
  });

  it('--init continues from an HF checkpoint with its tokenizer and constant-in-time layer dropout', async function () {
    const base = path.join(work, 'micro');  // written by the first test
    const out = path.join(work, 'continued');
    const events: TrainEvent[] = [];
    const result = await trainModel({ ...MICRO, steps: 20, evalInterval: 100, init: base, data: [corpus], out }, (e) => events.push(e));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(base, 'tokenizer.json'), 'utf8')), 'the tokenizer is reused');
    const firstStep = events.find((e) => e.kind === 'step');
    assert.ok(firstStep && firstStep.kind === 'step');
    const baseFinal = JSON.parse(fs.readFileSync(path.join(base, 'train_log.jsonl'), 'utf8').trim().split('\n').at(-1)!);
    // Continuing, not restarting: the first step's loss is near where the base run ended, far below a fresh start.
    assert.ok(firstStep.exitLoss.get(3)! < 0.6 * Math.log(300), `first continued step loss ${firstStep.exitLoss.get(3)}`);
    assert.ok(baseFinal.eval, 'the base log ends with an evaluation');
    const log = fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(log.some((entry) => entry.droppedLayers > 0), 'layer dropout is active from the first steps (constant schedule)');
    assert.ok(result.finalEval && result.finalEval.length === 3);
  });

  it('a checkpoint loaded by the inference engine scores exactly what the trainer scored', async function () {
    const native = loadNativeBinding();
    const shape = MICRO.shape!;
    const config = llamaConfigJson({ ...shape, tieWordEmbeddings: false }, { bos: 0, eos: [1] }, 'f32');
    const trainer = new native.NativeTrainer(JSON.stringify(config), { threads: 1, maxRows: 32, seed: 9 });
    // Larger weights than the init so every layer matters.
    const parameters = trainer.getParameters();
    let seed = 1;
    for (let i = 0; i < parameters.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      parameters[i] += (seed / 2 ** 31 - 0.5) * 0.3;
    }
    trainer.setState({ parameters });
    const window = Int32Array.from({ length: 33 }, (_, i) => (i * 37 + 11) % shape.vocabSize);
    const trained = await trainer.evaluate(window, 1, 32);
    const dir = path.join(work, 'roundtrip');
    exportModel(dir, trainer, config, 'f32');
    const model = await loadModel(dir);
    try {
      const scored = await model.scoreExitLayers(window);
      assert.equal(scored.count, trained.tokens);
      for (let l = 0; l < shape.numLayers; l++) {
        const relative = Math.abs(scored.nll[l] - trained.loss[l]) / trained.loss[l];
        assert.ok(relative < 1e-4, `exit ${l + 1}: engine ${scored.nll[l]} vs trainer ${trained.loss[l]}`);
        assert.equal(scored.correct[l], trained.correct[l], `exit ${l + 1} hits`);
      }
    } finally {
      await model.dispose();
    }
  });

  it('a resumed run ends with the same weights as an uninterrupted one', async function () {
    const options = { ...MICRO, steps: 12, checkpointInterval: 6, evalInterval: 100, data: [corpus] };
    const straight = path.join(work, 'straight');
    const resumed = path.join(work, 'resumed');
    await trainModel({ ...options, out: straight });
    // An interrupted run: the folder as it was right after the checkpoint at step 6 of 12.
    const stopAt6 = path.join(work, 'stop-at-6');
    await trainModel({ ...options, out: stopAt6 }, (event) => {
      if (event.kind === 'checkpoint' && event.step === 6) fs.cpSync(stopAt6, resumed, { recursive: true });
    });
    await trainModel({ ...options, out: resumed, resume: true });
    const a = fs.readFileSync(path.join(straight, 'model.safetensors'));
    const b = fs.readFileSync(path.join(resumed, 'model.safetensors'));
    assert.ok(a.equals(b), 'weights differ after resuming');
  });

  it('refuses an --out that holds a run unless resuming or overwriting; a signal stops it at a step, naming the checkpoint', async function () {
    const options = { ...MICRO, steps: 12, checkpointInterval: 4, evalInterval: 100, data: [corpus] };
    const out = path.join(work, 'guarded');
    await trainModel({ ...options, steps: 4, out });
    await assert.rejects(trainModel({ ...options, out }), /already holds a training run \(train_log\.jsonl, checkpoint, config\.json, model\.safetensors\): pass --resume/);
    const controller = new AbortController();
    const interrupted = trainModel({ ...options, out, overwrite: true }, (event) => {
      if (event.kind === 'checkpoint' && event.step === 8) controller.abort();
    }, { signal: controller.signal });
    await assert.rejects(interrupted, (error: unknown) => {
      assert.ok(error instanceof TrainingInterrupted);
      assert.equal(error.step, 8);
      assert.equal(error.checkpointStep, 8);
      return true;
    });
    const log = fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(JSON.parse(log.at(-1)!).step, 8, 'the overwritten run started its log afresh');
  });

  it('`layerskip train` on Ctrl-C stops, names the last checkpoint and prints the --resume command (exit 130)', async function () {
    const out = path.join(work, 'cli-interrupted');
    const args = ['train', '--data', corpus, '--out', out, '--steps', '100000', '--checkpoint-interval', '3', '--layers', '2',
      '--hidden', '32', '--heads', '2', '--kv-heads', '1', '--ffn', '64', '--vocab-size', '300', '--sequence-length', '16',
      '--batch-size', '2', '--threads', '1', '--held-out', '0'];
    const child = spawn(process.execPath, [path.join(root, 'bin', 'layerskip.js'), ...args], {
      cwd: root, env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' },
    });
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      if (!interrupted && /checkpoint saved at step 3\b/.test(stderr)) interrupted = child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /training interrupted at step \d+; the last checkpoint \(step \d+\) is in .*checkpoint/);
    assert.match(stderr, /continue with: layerskip train --data .* --resume/);
    assert.match(stderr, /warning: 0 held-out files/);
  });

  it('`layerskip train` reports missing and bad options as usage errors', function () {
    const run = (args: string[]) => spawnSync(process.execPath, [path.join(root, 'bin', 'layerskip.js'), 'train', ...args], {
      cwd: root, encoding: 'utf8', env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' }, timeout: 60000,
    });
    const help = run(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--layer-dropout P/);
    assert.match(help.stdout, /--early-exit-curriculum NAME/);
    const missing = run(['--out', path.join(work, 'x')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--data is required/);
    const badChoice = run(['--data', corpus, '--out', path.join(work, 'x'), '--early-exit-scale', 'cubic']);
    assert.equal(badChoice.status, 2);
    assert.match(badChoice.stderr, /--early-exit-scale must be one of/);
    const badShape = run(['--data', corpus, '--out', path.join(work, 'x'), '--hidden', '30', '--heads', '4']);
    assert.equal(badShape.status, 1);
    assert.match(badShape.stderr, /hiddenSize \(30\) must be a multiple of numHeads \(4\)/);
  });
});
