// trainModel: the LayerSkip training loop. Native code does the math (forward, backward, AdamW); this file
// prepares the data and tokenizer, computes the per-step schedules (learning rate, layer dropout, early-exit
// weights — schedules.ts), evaluates every exit on held-out text, saves resumable checkpoints, and exports an HF
// checkpoint at the end.
import fs from 'node:fs';
import path from 'node:path';

import { loadNativeBinding, type NativeExitTotals, type NativeTrainer } from '../native.js';
import { LlamaTokenizer } from '../tokenizer.js';
import { tokenizerConfigFor, trainBpeTokenizer, writeTokenizerFiles } from './bpe-trainer.js';
import {
  exportModel, llamaConfigJson, loadInitialWeights, loadTrainingCheckpoint, readTrainerState, saveTrainingCheckpoint,
} from './checkpoint.js';
import { listCorpusFiles, readTextFile, splitHeldOut, tokenizeCorpus } from './corpus.js';
import {
  activeExits, exitLossWeights, layerDropoutRates, learningRateAt, parseExitSelection, sampleDropoutMask, stepRandom,
} from './schedules.js';
import { DEFAULT_TRAIN_OPTIONS, validateTrainOptions, type ModelShape, type TrainOptions } from './train-options.js';

export interface ExitEvaluation {
  /** 1-based: the output of the first `exitLayer` layers. */
  exitLayer: number;
  loss: number;
  accuracy: number;
  /** Share of positions whose argmax equals the last layer's. */
  agreement: number;
}

export type TrainEvent =
  | { kind: 'prepare'; message: string }
  | { kind: 'step'; step: number; totalSteps: number; exitLoss: Map<number, number>; learningRate: number;
      gradientNorm: number; tokensPerSecond: number; elapsedSeconds: number; tokensSeen: number }
  | { kind: 'eval'; step: number; exits: ExitEvaluation[] }
  | { kind: 'checkpoint'; step: number; dir: string };

export interface TrainResult {
  out: string;
  steps: number;
  tokensSeen: number;
  elapsedSeconds: number;
  parameters: number;
  trainTokens: number;
  heldOutTokens: number;
  finalEval: ExitEvaluation[] | null;
}

const TOKENIZER_SAMPLE_BYTES = 8 << 20;  // BPE is trained on at most this much text

/** Reads the first files up to `budget` bytes, for training the tokenizer. */
function sampleTexts(files: string[], budget: number): string[] {
  const texts: string[] = [];
  let used = 0;
  for (const file of files) {
    if (used >= budget) break;
    const read = readTextFile(file);
    if (!read) continue;
    texts.push(read.text);
    used += read.bytes;
  }
  return texts;
}

async function prepareTokenizer(options: TrainOptions, trainFiles: string[], report: (m: string) => void): Promise<LlamaTokenizer> {
  const out = options.out;
  const existing = path.join(out, 'tokenizer.json');
  if (options.resume && fs.existsSync(existing)) return LlamaTokenizer.fromDir(out);
  const source = options.tokenizer ?? options.init;
  if (source) {
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      if (fs.existsSync(path.join(source, file))) fs.copyFileSync(path.join(source, file), path.join(out, file));
    }
    if (!fs.existsSync(existing)) throw new Error(`${source}: no tokenizer.json to reuse`);
    return LlamaTokenizer.fromDir(out);
  }
  report(`training a byte-level BPE tokenizer (vocab ${options.shape.vocabSize})`);
  const json = trainBpeTokenizer(sampleTexts(trainFiles, TOKENIZER_SAMPLE_BYTES), { vocabSize: options.shape.vocabSize });
  await writeTokenizerFiles(out, json, tokenizerConfigFor(json, { modelMaxLength: options.shape.contextLength }));
  return LlamaTokenizer.fromDir(out);
}

/** The deepest folder holding every data path (held-out files are chosen by their path relative to it). */
function commonFolder(paths: string[]): string {
  const folders = paths.map((p) => {
    const absolute = path.resolve(p);
    return fs.statSync(absolute).isDirectory() ? absolute : path.dirname(absolute);
  });
  let common = folders[0];
  while (!folders.every((f) => f === common || f.startsWith(common.endsWith(path.sep) ? common : common + path.sep))) {
    common = path.dirname(common);
  }
  return common;
}

/** Shape of an existing checkpoint (for --init). */
function shapeOf(config: Record<string, number | boolean>): ModelShape {
  return {
    numLayers: config.num_hidden_layers as number, hiddenSize: config.hidden_size as number,
    numHeads: config.num_attention_heads as number,
    numKvHeads: (config.num_key_value_heads ?? config.num_attention_heads) as number,
    intermediateSize: config.intermediate_size as number, vocabSize: config.vocab_size as number,
    contextLength: config.max_position_embeddings as number, ropeTheta: (config.rope_theta ?? 10000) as number,
    tieWordEmbeddings: Boolean(config.tie_word_embeddings),
  };
}

/** `count` windows of rows + 1 tokens from `stream` at random offsets. */
function sampleWindows(stream: Int32Array, count: number, rows: number, seed: number, step: number): Int32Array {
  const random = stepRandom(seed, step, 1);
  const batch = new Int32Array(count * (rows + 1));
  const span = stream.length - (rows + 1);
  for (let s = 0; s < count; s++) {
    const start = Math.floor(random.next() * (span + 1));
    batch.set(stream.subarray(start, start + rows + 1), s * (rows + 1));
  }
  return batch;
}

/** Evenly spaced windows of held-out text (the same every evaluation). */
function heldOutWindows(stream: Int32Array, count: number, rows: number): { tokens: Int32Array; count: number } {
  const available = Math.floor(stream.length / (rows + 1));
  const used = Math.min(count, available);
  const tokens = new Int32Array(used * (rows + 1));
  const stride = Math.floor(available / Math.max(1, used));
  for (let s = 0; s < used; s++) tokens.set(stream.subarray(s * stride * (rows + 1), (s * stride + 1) * (rows + 1)), s * (rows + 1));
  return { tokens, count: used };
}

export function exitEvaluations(totals: NativeExitTotals): ExitEvaluation[] {
  return Array.from(totals.loss, (loss, l) => ({
    exitLayer: l + 1,
    loss: loss / totals.tokens,
    accuracy: totals.correct[l] / totals.tokens,
    agreement: totals.agree[l] / totals.tokens,
  }));
}

/** Evaluates every exit of the trainer's current weights on `windows`, in batches. */
async function evaluateExits(trainer: NativeTrainer, windows: { tokens: Int32Array; count: number }, rows: number,
  batch: number): Promise<ExitEvaluation[]> {
  let totals: NativeExitTotals | null = null;
  for (let s = 0; s < windows.count; s += batch) {
    const n = Math.min(batch, windows.count - s);
    const part = await trainer.evaluate(windows.tokens.subarray(s * (rows + 1), (s + n) * (rows + 1)), n, rows);
    if (!totals) totals = part;
    else {
      for (let l = 0; l < part.loss.length; l++) {
        totals.loss[l] += part.loss[l];
        totals.correct[l] += part.correct[l];
        totals.agree[l] += part.agree[l];
      }
      totals.tokens += part.tokens;
    }
  }
  return totals ? exitEvaluations(totals) : [];
}

/** Thrown by trainModel when its signal aborted: where it stopped and the checkpoint `resume` continues from. */
export class TrainingInterrupted extends Error {
  constructor(
    readonly step: number,
    /** The step of the last saved checkpoint (0: none yet). */
    readonly checkpointStep: number,
    readonly checkpointDir: string,
  ) {
    super(
      checkpointStep > 0
        ? `training interrupted at step ${step}; the last checkpoint (step ${checkpointStep}) is in ${checkpointDir}`
        : `training interrupted at step ${step}, before the first checkpoint`,
    );
  }
}

// A folder that already holds a run is only reused with resume (continue it) or overwrite (start over).
function refuseToOverwrite(options: TrainOptions): void {
  if (options.resume || options.overwrite || !fs.existsSync(options.out)) return;
  const previous = ['train_log.jsonl', 'checkpoint', 'config.json', 'model.safetensors'].filter((name) =>
    fs.existsSync(path.join(options.out, name)),
  );
  if (previous.length > 0) {
    throw new Error(
      `${options.out} already holds a training run (${previous.join(', ')}): pass --resume to continue it, ` +
        '--overwrite to start over in it, or another --out',
    );
  }
}

/**
 * Trains a model. `signal` stops it between steps: trainModel then rejects with TrainingInterrupted, naming the last
 * checkpoint (`resume: true` continues from it).
 */
export async function trainModel(given: Partial<TrainOptions> & Pick<TrainOptions, 'data' | 'out'>,
  onEvent: (event: TrainEvent) => void = () => {}, { signal }: { signal?: AbortSignal } = {}): Promise<TrainResult> {
  let options: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, ...given, shape: { ...DEFAULT_TRAIN_OPTIONS.shape, ...given.shape } };
  const report = (message: string) => onEvent({ kind: 'prepare', message });
  const saved = options.resume ? readTrainerState(options.out) : null;
  if (saved) {
    // A resumed run keeps the options it started with, except how far it goes and how it runs.
    const { out, steps, threads, evalInterval, checkpointInterval } = options;
    options = { ...(saved.options as TrainOptions), out, steps, threads, evalInterval, checkpointInterval, resume: true };
    report(`resuming from ${path.join(options.out, 'checkpoint')} at step ${saved.step}`);
  }
  validateTrainOptions(options);
  refuseToOverwrite(options);
  fs.mkdirSync(options.out, { recursive: true });

  const files = listCorpusFiles(options.data, { extensions: options.extensions, exclude: options.exclude });
  const root = commonFolder(options.data);
  const split = splitHeldOut(files, root, options.heldOutFraction);
  if (split.train.length === 0) throw new Error('no training files left after holding out evaluation files');
  fs.writeFileSync(path.join(options.out, 'held_out_files.txt'), split.heldOut.map((f) => path.relative(root, f)).join('\n') + '\n');
  const tokenizer = await prepareTokenizer(options, split.train, report);

  report(`tokenizing ${split.train.length} training files and ${split.heldOut.length} held-out files`);
  const train = tokenizeCorpus(tokenizer, split.train);
  const heldOut = tokenizeCorpus(tokenizer, split.heldOut);
  const rows = options.sequenceLength;
  if (train.tokens.length < rows + 1) throw new Error(`the training data holds ${train.tokens.length} tokens, fewer than one sequence (${rows + 1})`);

  let config: Record<string, unknown>;
  if (options.init) {
    config = JSON.parse(fs.readFileSync(path.join(options.init, 'config.json'), 'utf8')) as Record<string, unknown>;
    options.shape = shapeOf(config as Record<string, number | boolean>);
  } else {
    options.shape = { ...options.shape, vocabSize: tokenizer.vocabSize };
    config = llamaConfigJson(options.shape, { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenIds }, options.dtype);
  }
  if (rows > options.shape.contextLength) throw new RangeError(`sequenceLength (${rows}) exceeds the model's context length (${options.shape.contextLength})`);

  const native = loadNativeBinding();
  const trainer = new native.NativeTrainer(JSON.stringify(config), { threads: options.threads, maxRows: rows, seed: options.seed });
  const parameterCount = trainer.tensors().reduce((sum, t) => sum + t.size, 0);
  let startStep = 0, tokensSeen = 0, elapsedBefore = 0;
  if (saved) {
    loadTrainingCheckpoint(options.out, trainer);
    ({ step: startStep, tokensSeen, elapsedSeconds: elapsedBefore } = saved);
  } else if (options.init) {
    loadInitialWeights(trainer, options.init);
  }
  report(`${(parameterCount / 1e6).toFixed(2)}M parameters, ${train.tokens.length} training tokens, ${heldOut.tokens.length} held-out tokens`);

  const numLayers = options.shape.numLayers;
  const selected = options.earlyExitLoss ? parseExitSelection(options.earlyExitLayers, numLayers) : [numLayers - 1];
  const fromScratch = options.layerDropoutSchedule ? options.layerDropoutSchedule === 'exp' : !options.init;
  if (heldOut.tokens.length <= rows) {
    report(
      `warning: ${split.heldOut.length} held-out files (${heldOut.tokens.length} tokens) are too few for one evaluation window: ` +
        'the evaluations score training text and will look better than they are; add files or raise --held-out',
    );
  }
  const evalWindows = heldOutWindows(heldOut.tokens.length > rows ? heldOut.tokens : train.tokens, options.evalSequences, rows);
  const log = fs.createWriteStream(path.join(options.out, 'train_log.jsonl'), { flags: saved ? 'a' : 'w' });
  const started = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - started) / 1000;
  const stateFile = (step: number) => ({ step, tokensSeen, elapsedSeconds: elapsed(), options, config });

  let finalEval: ExitEvaluation[] | null = null;
  let lastCheckpoint = saved ? saved.step : 0;
  const runEval = async (step: number) => {
    if (evalWindows.count === 0) return;
    finalEval = await evaluateExits(trainer, evalWindows, rows, options.batchSize);
    onEvent({ kind: 'eval', step, exits: finalEval });
    log.write(JSON.stringify({ step, eval: finalEval }) + '\n');
  };

  try {
    for (let step = startStep; step < options.steps; step++) {
      if (signal?.aborted) throw new TrainingInterrupted(step, lastCheckpoint, path.join(options.out, 'checkpoint'));
      const stepStarted = Date.now();
      const tokens = sampleWindows(train.tokens, options.batchSize, rows, options.seed, step);
      const rates = layerDropoutRates({
        numLayers, maxRate: options.layerDropout, shape: options.layerDropoutShape, step, totalSteps: options.steps, fromScratch,
      });
      const dropped = sampleDropoutMask(rates, options.batchSize, stepRandom(options.seed, step, 2));
      const exits = activeExits({
        selected, numLayers, curriculum: options.earlyExitCurriculum, rotation: options.earlyExitRotation, step,
        totalSteps: options.steps,
      });
      const weights = exitLossWeights(exits, numLayers, options.earlyExitScale);
      const learningRate = learningRateAt(step, {
        peak: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: options.steps, minRatio: options.minLearningRateRatio,
      });
      const result = await trainer.step(tokens, options.batchSize, rows, dropped, weights, {
        learningRate, beta1: options.beta1, beta2: options.beta2, weightDecay: options.weightDecay, clipNorm: options.clipNorm,
      });
      tokensSeen += options.batchSize * rows;
      const exitLoss = new Map<number, number>();
      result.exitLoss.forEach((loss, l) => { if (!Number.isNaN(loss)) exitLoss.set(l + 1, loss); });
      const seconds = (Date.now() - stepStarted) / 1000;
      onEvent({
        kind: 'step', step: step + 1, totalSteps: options.steps, exitLoss, learningRate, gradientNorm: result.gradientNorm,
        tokensPerSecond: (options.batchSize * rows) / seconds, elapsedSeconds: elapsed(), tokensSeen,
      });
      log.write(JSON.stringify({
        step: step + 1, learningRate, gradientNorm: result.gradientNorm, tokensSeen, elapsedSeconds: elapsed(),
        exitLoss: Object.fromEntries(exitLoss), droppedLayers: dropped.reduce((a, b) => a + b, 0),
      }) + '\n');
      const done = step + 1;
      if (done % options.evalInterval === 0 && done < options.steps) await runEval(done);
      if (done % options.checkpointInterval === 0 || done === options.steps) {
        saveTrainingCheckpoint(options.out, trainer, stateFile(done));
        lastCheckpoint = done;
        onEvent({ kind: 'checkpoint', step: done, dir: path.join(options.out, 'checkpoint') });
      }
    }
    await runEval(options.steps);
    exportModel(options.out, trainer, config, options.dtype);
  } finally {
    await new Promise((resolve) => log.end(resolve));
  }
  return {
    out: options.out, steps: options.steps, tokensSeen, elapsedSeconds: elapsed(), parameters: parameterCount,
    trainTokens: train.tokens.length, heldOutTokens: heldOut.tokens.length, finalEval,
  };
}
