// `layerskip benchmark`: how fast a checkpoint runs on this machine — prefill and decode tok/s over random prompts
// (medians of repeats), the decode roofline on the CPU, and with --self-speculative, greedy autoregressive vs
// self-speculative decoding at the given (E, k): acceptance, speedup, and whether the output stayed identical.
import { availableParallelism } from 'node:os';

import { formatBenchmark, formatSpeculativeBenchmark, MAX_REPEATS, runBenchmark, runSpeculativeBenchmark } from '../benchmark.js';
import { loadModel } from '../model.js';
import { DEFAULT_NUM_SPECULATIONS } from '../generation/options.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs } from './args.js';
import { defaultModelDir, ENGINE_OPTION_SPECS, commandLoadOptions } from './common.js';
import { runTaskBenchmarkCommand, TASK_BENCHMARK_FLAGS } from './task-benchmark-command.js';
import { TASK_OPTION_SPECS } from './task-options.js';

export const benchmarkSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  'prompt-tokens': { kind: 'integer', placeholder: 'N', description: 'random prompt length (default 512, at most half the context)' },
  'generate-tokens': { kind: 'integer', placeholder: 'N', description: 'tokens decoded per repeat (default 128, at most a quarter of the context)' },
  repeats: { kind: 'integer', placeholder: 'N', description: 'at least N repeats, each with a fresh prompt (default 3)' },
  'min-time': { kind: 'number', placeholder: 'S', description: `then more repeats (up to ${MAX_REPEATS}) until S seconds have passed (default 3)` },
  'exit-layer': { kind: 'integer', placeholder: 'E', description: 'decode with the first E layers only (early exit); the draft depth with --self-speculative' },
  'self-speculative': { kind: 'boolean', description: 'also compare greedy self-speculative decoding with autoregressive' },
  'num-speculations': { kind: 'integer', placeholder: 'K', description: `tokens drafted per step with --self-speculative (default ${DEFAULT_NUM_SPECULATIONS})` },
  json: { kind: 'boolean', description: 'print the results as JSON' },
  ...TASK_OPTION_SPECS,
  'generation-strategy': { kind: 'string', placeholder: 'NAME', description: 'with --dataset: autoregressive, self_speculative or both (default both: compared)' },
  verbose: { kind: 'boolean', description: 'with --dataset: print each prompt, reference and response' },
  out: { kind: 'string', placeholder: 'DIR', description: 'with --dataset: write the arguments, generation config and metrics to DIR/benchmark_<time>.json' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

// Flags of the random-prompt throughput mode, refused with --dataset (and the task flags without it).
const THROUGHPUT_FLAGS = ['prompt-tokens', 'generate-tokens', 'repeats', 'min-time', 'self-speculative', 'json'];

export const benchmarkHelp = formatHelp(
  'Usage: layerskip benchmark [--model DIR] [--device NAME] [--repeats N] [--self-speculative --exit-layer E --num-speculations K]\n' +
    '       layerskip benchmark --dataset NAME [--data PATH] [--num-samples N] [--exit-layer E --num-speculations K] [options]',
  'Measures prefill and decode throughput of a checkpoint on this machine; optionally self-speculative speedup.\n' +
    "With --dataset, runs one of LayerSkip's tasks (see README \"Task benchmarks\"): ROUGE, BLEU, edit distance,\n" +
    'tokens/s and acceptance, autoregressive and self-speculative on the same examples.',
  benchmarkSpecs,
);

export async function runBenchmarkCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, benchmarkSpecs);
  if (options.help) {
    process.stdout.write(benchmarkHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], benchmarkSpecs);
  const taskMode = options.dataset !== undefined;
  const taskOnly = [...Object.keys(TASK_OPTION_SPECS), ...TASK_BENCHMARK_FLAGS];
  const misplaced = (taskMode ? THROUGHPUT_FLAGS : taskOnly).find((flag) => options[flag] !== undefined);
  if (misplaced) throw new UsageError(taskMode ? `--${misplaced} does not apply with --dataset` : `--${misplaced} needs --dataset NAME`);
  if (taskMode) return runTaskBenchmarkCommand(options);
  const speculative = options['self-speculative'] === true;
  if (options['num-speculations'] !== undefined && !speculative) {
    throw new UsageError('--num-speculations needs --self-speculative');
  }
  const model = await loadModel((options.model as string | undefined) ?? defaultModelDir(), commandLoadOptions(options));
  try {
    const info = model.info;
    const generateTokens = (options['generate-tokens'] as number | undefined) ?? Math.min(128, Math.floor(info.contextLength / 4));
    const promptTokens = (options['prompt-tokens'] as number | undefined) ?? Math.min(512, Math.floor(info.contextLength / 2));
    if (generateTokens < 1 || promptTokens < 1) throw new UsageError('--prompt-tokens and --generate-tokens must be ≥ 1');
    if (promptTokens + generateTokens + 1 > info.contextLength) {
      throw new UsageError(`--prompt-tokens + --generate-tokens must stay below the context length ${info.contextLength}`);
    }
    const repeats = (options.repeats as number | undefined) ?? 3;
    if (repeats < 1) throw new UsageError('--repeats must be ≥ 1');
    const minSeconds = (options['min-time'] as number | undefined) ?? 3;
    if (!(minSeconds >= 0)) throw new UsageError(`--min-time must be ≥ 0 seconds, got ${minSeconds}`);
    const exitLayer = (options['exit-layer'] as number | undefined) ?? (speculative ? info.speculationDefaults.exitLayer : undefined);
    if (exitLayer !== undefined && (exitLayer < 1 || exitLayer > info.numLayers)) {
      throw new UsageError(`--exit-layer must be in [1, ${info.numLayers}]`);
    }
    if (speculative && (exitLayer === undefined || exitLayer >= info.numLayers)) {
      throw new UsageError(
        `--self-speculative needs --exit-layer E with E < ${info.numLayers} (the draft depth); ` +
          "this checkpoint's generation_config.json has no assistant_early_exit to default to",
      );
    }
    const throughput = await runBenchmark(model, {
      threads: (options.threads as number | undefined) ?? availableParallelism(),
      repeats,
      minSeconds,
      promptTokens,
      generateTokens,
      exitLayer: speculative ? undefined : exitLayer,
    });
    const comparison = speculative
      ? await runSpeculativeBenchmark(model, {
          exitLayer: exitLayer!,
          numSpeculations: (options['num-speculations'] as number | undefined) ?? info.speculationDefaults.numSpeculations ?? DEFAULT_NUM_SPECULATIONS,
          promptTokens,
          generateTokens,
          repeats,
          minSeconds,
        })
      : undefined;
    if (options.json) {
      process.stdout.write(JSON.stringify({ ...throughput, selfSpeculative: comparison }, null, 2) + '\n');
    } else {
      process.stdout.write(formatBenchmark(throughput) + '\n');
      if (comparison) process.stdout.write('\n' + formatSpeculativeBenchmark(comparison) + '\n');
    }
    return comparison && !comparison.identical ? 1 : 0;
  } finally {
    await model.dispose();
  }
}
