// `layerskip correctness`: greedy self-speculative decoding must reproduce greedy autoregressive decoding token for
// token (LayerSkip's correctness check). One line per prompt, the mismatches in detail, and an error count; the
// exit code is 1 when any prompt differs.
import fs from 'node:fs';

import { loadModel, type LayerSkipModel } from '../model.js';
import type { GenerationResult } from '../generation/generate.js';
import { DEFAULT_NUM_SPECULATIONS } from '../generation/options.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs } from './args.js';
import { parseJsonLines } from '../tasks/dataset-files.js';
import { loadTask } from '../tasks/load-task.js';
import { bundledModelDir, defaultModelDir, ENGINE_OPTION_SPECS, commandLoadOptions } from './common.js';
import { resultFile, TASK_OPTION_SPECS, taskLoadOptions } from './task-options.js';

// The task flags that choose examples (generation here is always greedy, with --max-steps).
const TASK_SELECTION_FLAGS = ['data', 'num-samples', 'random-shuffle', 'seed', 'n-shot', 'template', 'prompt-field', 'response-field'];

function pick(specs: OptionSpecs, names: string[]): OptionSpecs {
  return Object.fromEntries(names.map((name) => [name, specs[name]]));
}

export const correctnessSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  prompts: { kind: 'string', placeholder: 'FILE', description: 'JSONL file, one {"prompt": text or token ids} per line' },
  ...pick(TASK_OPTION_SPECS, ['dataset', ...TASK_SELECTION_FLAGS]),
  'exit-layer': { kind: 'integer', placeholder: 'E', description: "draft exit layer (default: the checkpoint's assistant_early_exit, else half the layers)" },
  'num-speculations': { kind: 'integer', placeholder: 'K', description: `tokens drafted per step (default: the checkpoint's num_assistant_tokens, else ${DEFAULT_NUM_SPECULATIONS})` },
  'max-steps': { kind: 'integer', aliases: ['max-tokens'], placeholder: 'N', description: 'tokens generated per prompt (default 64)' },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  'context-length': { kind: 'integer', placeholder: 'N', description: 'KV cache positions (default min(model max, 4096))' },
  out: { kind: 'string', placeholder: 'DIR', description: 'also write {"errors", "error_pct"} to DIR/correctness_<time>.json' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const correctnessHelp = formatHelp(
  'Usage: layerskip correctness [--model DIR] (--prompts FILE.jsonl | --dataset NAME [--data PATH] [--num-samples N])\n' +
    '                             [--exit-layer E] [--num-speculations K] [--max-steps N]',
  'Checks that greedy self-speculative decoding reproduces greedy autoregressive decoding for every prompt (with\n' +
    "--dataset, every example of one of LayerSkip's tasks, as its correctness.py).",
  correctnessSpecs,
);


/** Prompts of a JSONL file: each line an object whose "prompt" is a string or an array of token ids. */
export function readPrompts(file: string): (string | number[])[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --prompts ${file}: ${(error as Error).message}`);
  }
  const prompts = parseJsonLines(text, file).map(({ line, record }) => {
    const prompt = record.prompt;
    const isIds = Array.isArray(prompt) && prompt.every((id) => Number.isInteger(id));
    if (typeof prompt !== 'string' && !isIds) throw new Error(`${file}:${line}: needs a "prompt" string or token-id array`);
    return prompt as string | number[];
  });
  if (prompts.length === 0) throw new Error(`${file}: no prompts`);
  return prompts;
}

function firstDifference(a: number[], b: number[]): number {
  let index = 0;
  while (index < a.length && index < b.length && a[index] === b[index]) index++;
  return index === a.length && index === b.length ? -1 : index;
}

function describeTokens(model: LayerSkipModel, ids: number[]): string {
  return model.tokenizer ? JSON.stringify(model.decode(ids)) : `[${ids.join(', ')}]`;
}

export async function runCorrectnessCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, correctnessSpecs);
  if (options.help) {
    process.stdout.write(correctnessHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], correctnessSpecs);
  if ((options.prompts === undefined) === (options.dataset === undefined)) {
    throw new UsageError('give the prompts with --prompts FILE.jsonl or --dataset NAME (one of them)');
  }
  const taskFlag = TASK_SELECTION_FLAGS.find((flag) => options[flag] !== undefined);
  if (taskFlag && options.dataset === undefined) throw new UsageError(`--${taskFlag} needs --dataset NAME`);
  const modelArgument = options.model as string | undefined;
  const prompts =
    options.prompts !== undefined
      ? readPrompts(options.prompts as string)
      : (await loadTask(taskLoadOptions(options, modelArgument, bundledModelDir()))).examples.map((example) => example.prompt);
  const model = await loadModel(modelArgument ?? defaultModelDir(), commandLoadOptions(options));
  try {
    const numLayers = model.info.numLayers;
    const checkpoint = model.info.speculationDefaults;
    const exitLayer = (options['exit-layer'] as number | undefined) ?? checkpoint.exitLayer ?? Math.max(1, Math.floor(numLayers / 2));
    const numSpeculations = (options['num-speculations'] as number | undefined) ?? checkpoint.numSpeculations ?? DEFAULT_NUM_SPECULATIONS;
    const maxSteps = (options['max-steps'] as number | undefined) ?? 64;
    process.stdout.write(`correctness: E = ${exitLayer} of ${numLayers} layers, k = ${numSpeculations}, ${maxSteps} tokens per prompt\n`);
    let errors = 0;
    let drafted = 0;
    let accepted = 0;
    for (const [index, prompt] of prompts.entries()) {
      const autoregressive: GenerationResult = await model.generate(prompt, { maxSteps });
      const speculative = await model.generate(prompt, { maxSteps, generationStrategy: 'self_speculative', exitLayer, numSpeculations });
      drafted += speculative.stats.drafted;
      accepted += speculative.stats.accepted;
      const at = firstDifference(autoregressive.tokenIds, speculative.tokenIds);
      const rate = `${(speculative.stats.acceptanceRate * 100).toFixed(1)}% accepted`;
      if (at < 0) {
        process.stdout.write(`prompt ${index + 1}: ok (${speculative.tokenIds.length} tokens, ${rate})\n`);
        continue;
      }
      errors++;
      process.stdout.write(
        `prompt ${index + 1}: MISMATCH at generated token ${at} (${rate})\n` +
          `  autoregressive:   ${describeTokens(model, autoregressive.tokenIds.slice(at, at + 8))} ` +
          `[${autoregressive.tokenIds.slice(at, at + 8).join(', ')}]\n` +
          `  self_speculative: ${describeTokens(model, speculative.tokenIds.slice(at, at + 8))} ` +
          `[${speculative.tokenIds.slice(at, at + 8).join(', ')}]\n`,
      );
    }
    const overall = drafted > 0 ? ((accepted / drafted) * 100).toFixed(1) : '0.0';
    const errorPercent = ((errors / prompts.length) * 100).toFixed(1);
    process.stdout.write(`errors: ${errors} of ${prompts.length} prompts, ${errorPercent}% (acceptance ${overall}%)\n`);
    if (options.out !== undefined) {
      const file = resultFile(options.out as string, 'correctness');
      fs.writeFileSync(file, JSON.stringify({ errors, error_pct: errors / prompts.length, exit_layer: exitLayer, num_speculations: numSpeculations }) + '\n');
      process.stdout.write(`wrote ${file}\n`);
    }
    return errors === 0 ? 0 : 1;
  } finally {
    await model.dispose();
  }
}
