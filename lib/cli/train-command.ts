// `layerskip train`: trains a Llama model with the LayerSkip recipe (layer dropout + early-exit loss) from scratch
// or from an HF checkpoint (--init), printing a progress line (step, tokens/s, loss per active exit) and writing
// train_log.jsonl, resumable checkpoints and the final HF checkpoint into --out.
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../training/train-options.js';
import { TrainingInterrupted, trainModel, type TrainEvent } from '../training/train.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs, type ParsedOptions } from './args.js';

const d = DEFAULT_TRAIN_OPTIONS;
const s = d.shape;

export const trainSpecs: OptionSpecs = {
  data: { kind: 'list', placeholder: 'PATH', description: 'training text: files or folders (repeatable)' },
  extensions: { kind: 'list', aliases: ['extension'], placeholder: 'EXT', description: 'only files ending in EXT, e.g. .py (repeatable or comma-separated; default: all)' },
  exclude: { kind: 'list', placeholder: 'NAMES', description: 'file or folder names to skip inside --data folders (comma-separated)' },
  out: { kind: 'string', placeholder: 'DIR', description: 'output folder (HF checkpoint, tokenizer, checkpoint/, train_log.jsonl)' },
  init: { kind: 'string', placeholder: 'DIR', description: 'continue from this HF Llama checkpoint instead of from scratch' },
  tokenizer: { kind: 'string', placeholder: 'DIR', description: 'reuse this folder\'s tokenizer.json (default: train a BPE tokenizer)' },
  resume: { kind: 'boolean', description: 'continue from --out/checkpoint/ when it exists' },
  overwrite: { kind: 'boolean', description: 'start over in an --out that already holds a run (default: refuse)' },
  layers: { kind: 'integer', aliases: ['num-layers'], placeholder: 'N', description: `decoder layers (default ${s.numLayers})` },
  hidden: { kind: 'integer', aliases: ['hidden-size'], placeholder: 'N', description: `hidden size (default ${s.hiddenSize})` },
  heads: { kind: 'integer', aliases: ['num-heads'], placeholder: 'N', description: `attention heads (default ${s.numHeads})` },
  'kv-heads': { kind: 'integer', aliases: ['num-kv-heads'], placeholder: 'N', description: `key/value heads (default ${s.numKvHeads})` },
  ffn: { kind: 'integer', aliases: ['intermediate-size'], placeholder: 'N', description: `MLP width (default ${s.intermediateSize})` },
  'vocab-size': { kind: 'integer', placeholder: 'N', description: `BPE vocabulary when training a tokenizer (default ${s.vocabSize})` },
  context: { kind: 'integer', aliases: ['context-length', 'max-position-embeddings'], placeholder: 'N', description: `context length (default ${s.contextLength})` },
  steps: { kind: 'integer', aliases: ['max-steps'], placeholder: 'N', description: `optimizer steps (default ${d.steps})` },
  'batch-size': { kind: 'integer', placeholder: 'N', description: `sequences per step (default ${d.batchSize})` },
  'sequence-length': { kind: 'integer', aliases: ['seq-len'], placeholder: 'N', description: `tokens per sequence (default ${d.sequenceLength})` },
  lr: { kind: 'number', aliases: ['learning-rate'], placeholder: 'X', description: `peak learning rate (default ${d.learningRate})` },
  warmup: { kind: 'integer', aliases: ['warmup-steps'], placeholder: 'N', description: `linear warmup steps (default ${d.warmupSteps})` },
  'min-lr-ratio': { kind: 'number', placeholder: 'X', description: `cosine decay floor as a fraction of lr (default ${d.minLearningRateRatio})` },
  'weight-decay': { kind: 'number', placeholder: 'X', description: `AdamW weight decay (default ${d.weightDecay})` },
  'clip-norm': { kind: 'number', aliases: ['gradient-clip'], placeholder: 'X', description: `gradient norm clip, 0 = off (default ${d.clipNorm})` },
  seed: { kind: 'integer', placeholder: 'N', description: `initialization and data-order seed (default ${d.seed})` },
  'eval-interval': { kind: 'integer', placeholder: 'N', description: `steps between held-out evaluations (default ${d.evalInterval})` },
  'eval-sequences': { kind: 'integer', placeholder: 'N', description: `held-out sequences per evaluation (default ${d.evalSequences})` },
  'checkpoint-interval': { kind: 'integer', placeholder: 'N', description: `steps between checkpoints (default ${d.checkpointInterval})` },
  'held-out': { kind: 'number', placeholder: 'FRACTION', description: `share of files held out for evaluation (default ${d.heldOutFraction})` },
  'layer-dropout': { kind: 'number', aliases: ['layer-dropout-max'], placeholder: 'P', description: `max layer dropout rate p_max, 0 = off (default ${d.layerDropout})` },
  'layer-dropout-shape': { kind: 'string', placeholder: 'exp|linear|uniform', description: `dropout growth with depth (default ${d.layerDropoutShape})` },
  'layer-dropout-schedule': { kind: 'string', placeholder: 'exp|constant', description: 'dropout growth over time (default exp from scratch, constant with --init)' },
  'early-exit-loss': { kind: 'boolean', description: `early-exit loss on (default True; False = last layer only)` },
  'early-exit-layers': { kind: 'string', placeholder: 'SEL', description: `exits: all, a slice like 0::4, or 1,3,7 (0-based; default ${d.earlyExitLayers})` },
  'early-exit-scale': { kind: 'string', placeholder: 'NAME', description: `sum_l, uniform, linear_l, sqrt_l or inv_l (default ${d.earlyExitScale})` },
  'early-exit-curriculum': { kind: 'string', placeholder: 'NAME', description: `none, rotational or gradual (default ${d.earlyExitCurriculum})` },
  'early-exit-rotation': { kind: 'integer', placeholder: 'R', description: `R for the rotational curriculum (default ${d.earlyExitRotation})` },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  dtype: { kind: 'string', placeholder: 'bf16|f32', description: `weights dtype of the exported checkpoint (default ${d.dtype})` },
  quiet: { kind: 'boolean', description: 'no progress output' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const trainHelp = formatHelp(
  'Usage: layerskip train --data PATH [--data PATH …] --out DIR [options]',
  'Trains a Llama model with the LayerSkip recipe: layer dropout rising with depth and an early-exit loss through the\nmodel\'s own final norm and LM head, so early layers can predict tokens.',
  trainSpecs,
);

function choice<T extends string>(value: unknown, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/** A repeatable option's values, each also split at commas. */
function commaList(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  return (value as string[]).flatMap((item) => item.split(',')).map((item) => item.trim()).filter(Boolean);
}

/** Command-line options → trainModel options (unset ones keep their defaults). */
export function trainOptionsFrom(o: ParsedOptions): Partial<TrainOptions> & Pick<TrainOptions, 'data' | 'out'> {
  if (!o.data) throw new UsageError('--data is required (files or folders of training text)');
  if (!o.out) throw new UsageError('--out is required (the output folder)');
  const defined = <T extends object>(object: T) =>
    Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
  return {
    data: o.data as string[],
    out: o.out as string,
    ...defined({
    extensions: commaList(o.extensions)?.map((e) => (e.startsWith('.') ? e : `.${e}`)),
    exclude: commaList(o.exclude),
    init: o.init as string | undefined,
    tokenizer: o.tokenizer as string | undefined,
    resume: o.resume as boolean | undefined,
    overwrite: o.overwrite as boolean | undefined,
    shape: {
      ...s,
      ...defined({
        numLayers: o.layers as number | undefined, hiddenSize: o.hidden as number | undefined, numHeads: o.heads as number | undefined,
        numKvHeads: o['kv-heads'] as number | undefined, intermediateSize: o.ffn as number | undefined,
        vocabSize: o['vocab-size'] as number | undefined, contextLength: o.context as number | undefined,
      }),
    },
    steps: o.steps as number | undefined,
    batchSize: o['batch-size'] as number | undefined,
    sequenceLength: o['sequence-length'] as number | undefined,
    learningRate: o.lr as number | undefined,
    warmupSteps: o.warmup as number | undefined,
    minLearningRateRatio: o['min-lr-ratio'] as number | undefined,
    weightDecay: o['weight-decay'] as number | undefined,
    clipNorm: o['clip-norm'] as number | undefined,
    seed: o.seed as number | undefined,
    evalInterval: o['eval-interval'] as number | undefined,
    evalSequences: o['eval-sequences'] as number | undefined,
    checkpointInterval: o['checkpoint-interval'] as number | undefined,
    heldOutFraction: o['held-out'] as number | undefined,
    layerDropout: o['layer-dropout'] as number | undefined,
    layerDropoutShape: choice(o['layer-dropout-shape'], 'layer-dropout-shape', ['exp', 'linear', 'uniform'] as const),
    layerDropoutSchedule: choice(o['layer-dropout-schedule'], 'layer-dropout-schedule', ['exp', 'constant'] as const),
    earlyExitLoss: o['early-exit-loss'] as boolean | undefined,
    earlyExitLayers: o['early-exit-layers'] as string | undefined,
    earlyExitScale: choice(o['early-exit-scale'], 'early-exit-scale', ['sum_l', 'uniform', 'linear_l', 'sqrt_l', 'inv_l'] as const),
    earlyExitCurriculum: choice(o['early-exit-curriculum'], 'early-exit-curriculum', ['none', 'rotational', 'gradual'] as const),
    earlyExitRotation: o['early-exit-rotation'] as number | undefined,
    threads: o.threads as number | undefined,
    dtype: choice(o.dtype, 'dtype', ['bf16', 'f32'] as const),
    }),
  };
}

function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60), h = Math.floor(m / 60);
  return h > 0 ? `${h}h${String(m % 60).padStart(2, '0')}m` : `${m}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
}

/** Progress printer: one rewritten line on a TTY, a line every 10 steps otherwise. */
function progressPrinter(stream: NodeJS.WriteStream, quiet: boolean): (event: TrainEvent) => void {
  const tty = Boolean(stream.isTTY);
  let lineOpen = false;
  const say = (text: string) => {
    if (lineOpen) stream.write('\n');
    lineOpen = false;
    stream.write(`${text}\n`);
  };
  return (event) => {
    if (quiet) return;
    switch (event.kind) {
      case 'prepare':
        say(event.message);
        break;
      case 'step': {
        if (!tty && event.step % 10 !== 0 && event.step !== event.totalSteps) return;
        const width = 20, filled = Math.round((width * event.step) / event.totalSteps);
        const losses = [...event.exitLoss].map(([layer, loss]) => `L${layer} ${loss.toFixed(3)}`).join(' ');
        const eta = (event.elapsedSeconds / Math.max(1, event.step)) * (event.totalSteps - event.step);
        const line = `step ${event.step}/${event.totalSteps} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ` +
          `${event.tokensPerSecond.toFixed(0)} tok/s  eta ${formatDuration(eta)}  lr ${event.learningRate.toExponential(2)}  ` +
          `loss at exit layer: ${losses}`;
        if (tty) {
          // One terminal line: a line that wraps cannot be rewritten in place.
          const columns = stream.columns > 0 ? stream.columns : 120;
          stream.write(`\r\x1b[2K${line.length < columns ? line : line.slice(0, columns - 2) + '…'}`);
          lineOpen = true;
        } else {
          say(line);
        }
        break;
      }
      case 'eval':
        say(`eval @ step ${event.step}: ` + event.exits.map((e) => `L${e.exitLayer} ${e.loss.toFixed(3)}/${(100 * e.accuracy).toFixed(1)}%`).join('  '));
        break;
      case 'checkpoint':
        if (!tty) say(`checkpoint saved at step ${event.step}`);
        break;
    }
  };
}

export async function runTrainCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, trainSpecs);
  if (options.help) {
    process.stdout.write(trainHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], trainSpecs);
  const trainOptions = trainOptionsFrom(options);
  // Ctrl-C stops after the current step and says how to continue; a second Ctrl-C exits at once.
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    result = await trainModel(trainOptions, progressPrinter(process.stderr, Boolean(options.quiet)), { signal: controller.signal });
  } catch (error) {
    if (!(error instanceof TrainingInterrupted)) throw error;
    const again = error.checkpointStep > 0 ? `\ncontinue with: layerskip ${resumeCommand(argv)}` : '';
    process.stderr.write(`\nlayerskip: ${error.message}${again}\n`);
    return 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
  process.stdout.write(`trained ${(result.parameters / 1e6).toFixed(2)}M parameters for ${result.steps} steps ` +
    `(${result.tokensSeen} tokens, ${formatDuration(result.elapsedSeconds)}); model written to ${result.out}\n`);
  return 0;
}

// The command line that continues an interrupted run: the same arguments plus --resume.
function resumeCommand(argv: string[]): string {
  const quoted = argv.filter((arg) => arg !== '--overwrite').map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`));
  return ['train', ...quoted, ...(argv.includes('--resume') ? [] : ['--resume'])].join(' ');
}
