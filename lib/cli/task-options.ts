// The flags `benchmark --dataset`, `sweep` and `correctness --dataset` share: which task examples (LayerSkip's
// BenchmarkArguments) and how to generate them (its GenerationConfig, with its defaults: sampling at temperature
// 0.6, top-p 0.9, at most 512 steps, seed 42), parsed into loadTask() and generate() options.
import fs from 'node:fs';
import path from 'node:path';

import { DEFAULT_TEMPERATURE, DEFAULT_TOP_P, type GenerationOptions } from '../generation/options.js';
import { DEFAULT_TASK_SEED, type TaskLoadOptions } from '../tasks/load-task.js';
import { applyTemplate, TASK_DATASET_NAMES, TASK_DATASETS, TemplateError, type TaskDatasetName } from '../tasks/task-datasets.js';
import { packageRoot } from '../native.js';
import { UsageError, type OptionSpecs, type ParsedOptions } from './args.js';

/** LayerSkip's GenerationConfig.max_steps default. */
export const TASK_DEFAULT_MAX_STEPS = 512;

/** The task the bundled demo model ships: held-out standard-library functions, signature + docstring → body. */
export function bundledTaskFile(): string {
  return path.join(packageRoot(), 'models', 'default', 'held_out_functions.jsonl');
}

export const TASK_OPTION_SPECS: OptionSpecs = {
  dataset: { kind: 'string', placeholder: 'NAME', description: `the task: ${TASK_DATASET_NAMES.join(', ')}` },
  data: {
    kind: 'string',
    placeholder: 'PATH',
    description: "the dataset's parquet or jsonl file (the test split) or a folder of them (default: the HuggingFace cache; custom_jsonl with the demo model: its bundled task)",
  },
  'num-samples': { kind: 'integer', placeholder: 'N', description: 'examples to run (default: the whole split)' },
  'random-shuffle': { kind: 'boolean', description: 'shuffle the examples before taking --num-samples, as Python random.shuffle with --seed (default True)' },
  seed: { kind: 'integer', placeholder: 'S', description: `seeds the shuffle, the n-shot choice and sampling (default ${DEFAULT_TASK_SEED})` },
  'n-shot': { kind: 'integer', placeholder: 'N', description: 'summarization tasks: prepend N train examples to every prompt (default 0)' },
  template: { kind: 'string', placeholder: 'TEXT', description: 'wrap each prompt: a Python format string with a {message} field' },
  'prompt-field': { kind: 'string', placeholder: 'NAME', description: 'custom_jsonl: the prompt field (default prompt)' },
  'response-field': { kind: 'string', placeholder: 'NAME', description: 'custom_jsonl: the reference field (default response)' },
  'max-steps': { kind: 'integer', aliases: ['max-tokens'], placeholder: 'N', description: `most tokens per example (default ${TASK_DEFAULT_MAX_STEPS})` },
  sample: { kind: 'boolean', description: 'sample (default True, as LayerSkip); False: greedy' },
  temperature: { kind: 'number', placeholder: 'T', description: `sampling temperature; 0 = greedy (default ${DEFAULT_TEMPERATURE})` },
  'top-p': { kind: 'number', placeholder: 'P', description: `nucleus sampling mass (default ${DEFAULT_TOP_P})` },
  'top-k': { kind: 'integer', placeholder: 'K', description: 'keep the K most likely tokens (default 0 = off)' },
  'no-repeat-ngram-size': { kind: 'integer', placeholder: 'N', description: 'never repeat an N-gram (default 0 = off)' },
  'stop-words': { kind: 'list', aliases: ['stop'], placeholder: 'TEXT', description: 'stop string (repeatable)' },
};

/** The loadTask() options the flags give; --dataset is required. */
export function taskLoadOptions(options: ParsedOptions, modelDir: string | undefined, bundledModelDir: string): TaskLoadOptions {
  const dataset = options.dataset as string | undefined;
  if (dataset === undefined) throw new UsageError('give the task with --dataset NAME');
  if (!(TASK_DATASET_NAMES as readonly string[]).includes(dataset)) {
    throw new UsageError(`--dataset must be one of ${TASK_DATASET_NAMES.join(', ')}, got "${dataset}"`);
  }
  const atLeast = (flag: string, min: number) => {
    const value = options[flag] as number | undefined;
    if (value !== undefined && value < min) throw new UsageError(`--${flag} must be ≥ ${min}, got ${value}${flag === 'num-samples' ? ' (leave it out for the whole split)' : ''}`);
    return value;
  };
  let data = options.data as string | undefined;
  const usesBundledModel = modelDir === undefined || path.resolve(modelDir) === path.resolve(bundledModelDir);
  if (dataset === 'custom_jsonl' && data === undefined) {
    if (!usesBundledModel) throw new UsageError('--dataset custom_jsonl needs --data FILE.jsonl (one {"prompt": …, "response": …} per line)');
    data = bundledTaskFile();
  }
  if (dataset !== 'custom_jsonl' && (options['prompt-field'] !== undefined || options['response-field'] !== undefined)) {
    throw new UsageError('--prompt-field and --response-field apply to --dataset custom_jsonl');
  }
  const nShot = atLeast('n-shot', 0);
  if (nShot && !TASK_DATASETS[dataset as TaskDatasetName].nShotColumns) {
    throw new UsageError(`--n-shot applies to cnn_dm_summarization and xsum_summarization, not ${dataset}`);
  }
  const template = options.template as string | undefined;
  try {
    applyTemplate('', template);
  } catch (error) {
    if (error instanceof TemplateError) throw new UsageError(error.message);
    throw error;
  }
  return {
    dataset: dataset as TaskDatasetName,
    data,
    numSamples: atLeast('num-samples', 1),
    randomShuffle: options['random-shuffle'] as boolean | undefined,
    seed: atLeast('seed', 0) ?? DEFAULT_TASK_SEED,
    nShot,
    template,
    promptField: options['prompt-field'] as string | undefined,
    responseField: options['response-field'] as string | undefined,
  };
}

/** The generation options of a task run: LayerSkip's sampling defaults unless --sample False or --temperature 0. */
export function taskGenerationOptions(options: ParsedOptions): GenerationOptions {
  const temperature = options.temperature as number | undefined;
  const sample = (options.sample as boolean | undefined) ?? (temperature === undefined || temperature > 0);
  return {
    maxSteps: (options['max-steps'] as number | undefined) ?? TASK_DEFAULT_MAX_STEPS,
    sample,
    temperature: sample ? (temperature ?? DEFAULT_TEMPERATURE) : undefined,
    topP: sample ? ((options['top-p'] as number | undefined) ?? DEFAULT_TOP_P) : undefined,
    topK: options['top-k'] as number | undefined,
    noRepeatNgramSize: options['no-repeat-ngram-size'] as number | undefined,
    stopStrings: options['stop-words'] as string[] | undefined,
    exitLayer: options['exit-layer'] as number | undefined,
    numSpeculations: options['num-speculations'] as number | undefined,
  };
}

/**
 * DIR/PREFIX_YYYYMMDD_HHMMSS.json as LayerSkip names its result files, with _2, _3… when a run in the same second
 * already wrote that name (never overwritten).
 */
export function resultFile(dir: string, prefix: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  let file = path.join(dir, `${prefix}_${stamp}.json`);
  for (let n = 2; fs.existsSync(file); n++) file = path.join(dir, `${prefix}_${stamp}_${n}.json`);
  return file;
}

/** "sampling (T 0.6, top-p 0.9)" or "greedy", and the step limit, for a run's header line. */
export function describeGeneration(generation: GenerationOptions): string {
  const decoding = generation.sample ? `sampling (T ${generation.temperature}, top-p ${generation.topP}${generation.topK ? `, top-k ${generation.topK}` : ''})` : 'greedy';
  return `${decoding}, at most ${generation.maxSteps} tokens per example`;
}
