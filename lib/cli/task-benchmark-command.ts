// `layerskip benchmark --dataset NAME`: LayerSkip's task benchmark (its benchmark.py) — the examples generated
// autoregressively and self-speculatively (both by default, back to back per example), scored (ROUGE-1/2/3/L,
// BLEU-4, edit distance) and timed (tokens/s, time per token, acceptance); the speedup with its spread; --out
// writes the arguments, generation config and metrics as JSON. Ctrl-C prints the metrics of the examples done.
import fs from 'node:fs';

import type { GenerationOptions, GenerationStrategy } from '../generation/options.js';
import type { LayerSkipModel } from '../model.js';
import { DEFAULT_TASK_SEED, loadTask, type LoadedTask } from '../tasks/load-task.js';
import { runTaskBenchmark, type TaskBenchmarkResult } from '../tasks/task-benchmark.js';
import { UsageError, type ParsedOptions } from './args.js';
import { bundledModelDir, commandLoadOptions, defaultModelDir, interruptOnSigint } from './common.js';
import { checkGenerationOptions } from './generate-command.js';
import { loadModelWithProgress } from './load-progress.js';
import { describeGeneration, resultFile, taskGenerationOptions, taskLoadOptions } from './task-options.js';
import { TaskProgressLine } from './task-progress.js';
import { formatTaskResult } from './task-report.js';

/** The flags only the dataset mode takes (the task and generation flags are in TASK_OPTION_SPECS). */
export const TASK_BENCHMARK_FLAGS = ['generation-strategy', 'verbose', 'out'];

/** --generation-strategy: one strategy, or `both` (the default): autoregressive and self-speculative compared. */
export function taskStrategies(value: unknown): GenerationStrategy[] {
  const name = (value as string | undefined) ?? 'both';
  if (name === 'both') return ['autoregressive', 'self_speculative'];
  if (name === 'autoregressive' || name === 'self_speculative') return [name];
  throw new UsageError(`--generation-strategy must be autoregressive, self_speculative or both, got "${name}"`);
}

/** A usage error before the model runs when self-speculative runs have no draft depth (see resolveOptions). */
export function checkTaskGeneration(generation: GenerationOptions, strategies: GenerationStrategy[], model: LayerSkipModel): void {
  for (const strategy of strategies) checkGenerationOptions({ ...generation, generationStrategy: strategy }, model);
}

/** The error when every prompt is longer than the context (e.g. CNN articles for a 256-position model). */
export function noExampleFits(examples: number, contextLength: number): string {
  return `none of the ${examples} prompts fits the model's context of ${contextLength} positions: nothing to measure`;
}

function describeTask(task: LoadedTask, options: ParsedOptions): string {
  const shuffled = options['random-shuffle'] === false ? 'in file order' : `shuffled with seed ${(options.seed as number | undefined) ?? DEFAULT_TASK_SEED}`;
  const shots = task.shotFiles.length > 0 ? `, ${options['n-shot']}-shot` : '';
  return `${task.dataset}: ${task.examples.length} of ${task.splitRows} examples (${shuffled}${shots}) from ${task.files.join(', ')}`;
}

export async function runTaskBenchmarkCommand(options: ParsedOptions): Promise<number> {
  const modelArgument = options.model as string | undefined;
  const loadOptions = taskLoadOptions(options, modelArgument, bundledModelDir());
  const strategies = taskStrategies(options['generation-strategy']);
  const generation = taskGenerationOptions(options);
  const task = await loadTask(loadOptions); // every data error before the model loads

  const model = await loadModelWithProgress(modelArgument ?? defaultModelDir(), commandLoadOptions(options));
  try {
    checkTaskGeneration(generation, strategies, model);
    process.stdout.write(`${describeTask(task, options)}\n${describeGeneration(generation)}; ${model.info.backend}\n`);
    const interrupt = interruptOnSigint();
    const progress = new TaskProgressLine(process.stderr, 'examples');
    let result: TaskBenchmarkResult;
    try {
      result = await runTaskBenchmark(model, task.examples, {
        strategies,
        generation,
        seed: loadOptions.seed ?? DEFAULT_TASK_SEED,
        signal: interrupt.signal,
        onExample: ({ index, total, example, runs, running }) => {
          if (options.verbose) {
            progress.finish();
            process.stdout.write(`[Example ${index + 1}]\n[Prompt]:\n${example.prompt}\n[Reference Response]:\n${example.reference}\n`);
            for (const run of runs) {
              process.stdout.write(`[Model Response, ${run.strategy}]:\n${run.text}\n`);
              if (run.strategy === 'self_speculative') process.stdout.write(`[Acceptance Rate]: ${run.acceptanceRate.toFixed(4)}\n`);
            }
          }
          const speculative = running.find((m) => m.strategy === 'self_speculative');
          const details = running.map((m) => `${m.strategy === 'self_speculative' ? 'self-spec' : 'AR'} ${m.tokensPerSecond.toFixed(0)} tok/s`);
          if (speculative) details.push(`acceptance ${(speculative.acceptanceRate * 100).toFixed(1)}%`);
          progress.update(index + 1, total, details);
        },
      });
    } finally {
      progress.finish();
      interrupt.release();
    }
    if (result.completed === 0 && !result.interrupted) throw new Error(noExampleFits(result.examples, model.info.contextLength));
    process.stdout.write(formatTaskResult(result, model.info.numLayers) + '\n');
    if (options.out !== undefined) {
      const file = resultFile(options.out as string, 'benchmark');
      fs.writeFileSync(file, JSON.stringify({
        arguments: { ...options, model: model.info.dir },
        task: { dataset: task.dataset, files: task.files, shotFiles: task.shotFiles, splitRows: task.splitRows, examples: task.examples.length },
        generationConfig: { ...generation, strategies },
        machine: { backend: model.info.backend, dtype: model.info.dtype },
        metrics: result,
      }, null, 2) + '\n');
      process.stdout.write(`wrote ${file}\n`);
    }
    if (result.interrupted) return 130;
    const greedy = !generation.sample;
    return greedy && result.comparison && result.comparison.identicalOutputs < result.comparison.examplesCompared ? 1 : 0;
  } finally {
    await model.dispose();
  }
}
