// `layerskip generate`: stream a continuation to stdout and finish with a stats line (or --json).
import type { LayerSkipModel } from '../model.js';
import {
  DEFAULT_MAX_STEPS,
  DEFAULT_NUM_SPECULATIONS,
  DEFAULT_TEMPERATURE,
  DEFAULT_TOP_P,
  resolveOptions,
  type GenerationOptions,
  type GenerationStrategy,
} from '../generation/options.js';
import type { GenerationResult } from '../generation/generate.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs, type ParsedOptions } from './args.js';
import { defaultModelDir, readStdin, ENGINE_OPTION_SPECS, commandLoadOptions, interruptOnSigint } from './common.js';
import { loadModelWithProgress } from './load-progress.js';
import { SpeculativeStreamer } from './speculative-streamer.js';

export const generateSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  prompt: { kind: 'string', placeholder: 'TEXT', description: 'prompt text (default: read from stdin)' },
  'prompt-ids': { kind: 'string', placeholder: 'IDS', description: 'the prompt as comma-separated token ids, used as given (no BOS added)' },
  'max-steps': { kind: 'integer', aliases: ['max-tokens'], placeholder: 'N', description: `most tokens to generate (default ${DEFAULT_MAX_STEPS})` },
  sample: { kind: 'boolean', description: 'sample (True|False; default: True when --temperature > 0); False forces greedy' },
  temperature: { kind: 'number', placeholder: 'T', description: `sampling temperature; 0 = greedy (default ${DEFAULT_TEMPERATURE} with --sample)` },
  'top-k': { kind: 'integer', placeholder: 'K', description: 'keep the K most likely tokens (default 0 = off)' },
  'top-p': { kind: 'number', placeholder: 'P', description: `nucleus sampling mass (default ${DEFAULT_TOP_P} when sampling; 1 = off)` },
  seed: { kind: 'integer', placeholder: 'S', description: 'random seed for sampling (default: random)' },
  'repetition-penalty': { kind: 'number', placeholder: 'X', description: 'HF repetition_penalty: > 1 discourages tokens already seen (default 1 = off)' },
  'no-repeat-ngram-size': { kind: 'integer', placeholder: 'N', description: 'never repeat an N-gram of the prompt or output (default 0 = off)' },
  'min-p': { kind: 'number', placeholder: 'P', description: 'min-p sampling: drop tokens below P × the top probability (default 0 = off)' },
  logprobs: { kind: 'integer', placeholder: 'N', description: 'with --json: each token\'s log-probability and N alternatives (default 0)' },
  'stop': { kind: 'list', aliases: ['stop-words'], placeholder: 'TEXT', description: 'stop string (repeatable)' },
  'generation-strategy': { kind: 'string', placeholder: 'NAME', description: 'autoregressive (default) or self_speculative' },
  'exit-layer': { kind: 'integer', placeholder: 'E', description: "early-exit layer; with self_speculative the draft depth (default: all layers; self_speculative: the checkpoint's assistant_early_exit)" },
  'num-speculations': { kind: 'integer', placeholder: 'K', description: `tokens drafted per self-speculative step (default: the checkpoint's num_assistant_tokens, else ${DEFAULT_NUM_SPECULATIONS})` },
  'draft-confidence': { kind: 'number', placeholder: 'P', description: 'stop drafting below this draft top probability (0 = off)' },
  streamer: { kind: 'string', placeholder: 'NAME', description: 'plain (default) or speculative (shows drafts on a TTY)' },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  'context-length': { kind: 'integer', placeholder: 'N', description: 'KV cache positions (default min(model max, 4096))' },
  'truncate-prompt': { kind: 'string', placeholder: 'SIDE', description: 'a prompt too long for the context: none (default: an error) or left (keep its end)' },
  json: { kind: 'boolean', description: 'print one JSON object with the text and statistics instead of streaming' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const generateHelp = formatHelp(
  'Usage: layerskip generate [--model DIR] (--prompt TEXT | --prompt-ids IDS | < prompt.txt) [options]',
  'Generates a continuation of the prompt, streaming it to stdout, then prints a statistics line to stderr.',
  generateSpecs,
);

export function formatStats(result: GenerationResult): string {
  const s = result.stats;
  return (
    `[${s.generationStrategy}${s.exitLayer < s.numLayers ? ` exit ${s.exitLayer}/${s.numLayers}` : ''} on ${s.device}] prompt ${s.promptTokens} tokens` +
    `${s.reusedPromptTokens ? ` (${s.reusedPromptTokens} cached)` : ''}, generated ${s.generatedTokens} tokens; ` +
    `prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s; ` +
    `finish: ${result.finishReason}` +
    (s.generationStrategy === 'self_speculative' ? `\n${formatSpeculationStats(result)}` : '')
  );
}

export function formatSpeculationStats(result: GenerationResult): string {
  const s = result.stats;
  const histogram = s.tokensPerVerifyStep.map((count, tokens) => (count > 0 ? `${tokens}:${count}` : '')).filter(Boolean);
  return (
    `[speculation] drafted ${s.drafted}, accepted ${s.accepted} (${(s.acceptanceRate * 100).toFixed(1)}%), ` +
    `${s.verifySteps} verify steps (tokens per step ${histogram.join(' ')}); draft ${s.draftMs.toFixed(0)} ms, ` +
    `verify ${s.verifyMs.toFixed(0)} ms; ${s.tokensPerSecond.toFixed(1)} tok/s overall`
  );
}

export async function runGenerateCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, generateSpecs);
  if (options.help) {
    process.stdout.write(generateHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], generateSpecs, "did you mean --prompt?");
  const prompt = await promptFrom(options);
  const modelDir = (options.model as string | undefined) ?? defaultModelDir();

  const model = await loadModelWithProgress(modelDir, commandLoadOptions(options));
  try {
    const generation = generationOptionsFrom(options, model);
    const streamerName = (options.streamer as string | undefined) ?? 'plain';
    if (streamerName !== 'plain' && streamerName !== 'speculative') {
      throw new UsageError(`--streamer must be plain or speculative, got "${streamerName}"`);
    }
    const speculativeStreamer =
      streamerName === 'speculative' && process.stdout.isTTY && model.tokenizer
        ? new SpeculativeStreamer(process.stdout, (ids) => model.decode(ids))
        : undefined;
    generation.onSpeculation = speculativeStreamer?.onSpeculation;
    // Ctrl-C stops generation within a step (or a prefill chunk), prints the stats so far and exits 130; a second
    // Ctrl-C exits at once.
    const interrupt = interruptOnSigint();
    generation.signal = interrupt.signal;
    const exitCode = () => (interrupt.signal.aborted ? 130 : 0);
    try {
      if (options.json) {
        const result = await model.generate(prompt, generation);
        const { text, tokenIds, finishReason, stats, logprobs } = result;
        process.stdout.write(JSON.stringify({ text, tokenIds, finishReason, stats, ...(logprobs ? { logprobs } : {}) }) + '\n');
        return exitCode();
      }
      const stream = model.stream(prompt, generation);
      for await (const piece of stream) {
        if (speculativeStreamer) speculativeStreamer.write(piece);
        else process.stdout.write(piece);
      }
      const result = await stream.result;
      // The text goes to stdout exactly; a terminal gets a newline so the prompt starts on a line of its own.
      if (process.stdout.isTTY) process.stdout.write('\n');
      process.stderr.write(formatStats(result) + '\n');
      return exitCode();
    } finally {
      interrupt.release();
    }
  } finally {
    await model.dispose();
  }
}

/** The generation options the flags give, checked as generate() will check them (a bad one is a usage error naming its flag). */
export function generationOptionsFrom(options: ParsedOptions, model: LayerSkipModel): GenerationOptions {
  const generation: GenerationOptions = {
    maxSteps: options['max-steps'] as number | undefined,
    sample: options.sample as boolean | undefined,
    temperature: options.temperature as number | undefined,
    topK: options['top-k'] as number | undefined,
    topP: options['top-p'] as number | undefined,
    seed: options.seed as number | undefined,
    stopStrings: options.stop as string[] | undefined,
    generationStrategy: options['generation-strategy'] as GenerationStrategy | undefined,
    exitLayer: options['exit-layer'] as number | undefined,
    numSpeculations: options['num-speculations'] as number | undefined,
    draftConfidence: options['draft-confidence'] as number | undefined,
    truncatePrompt: options['truncate-prompt'] as 'none' | 'left' | undefined,
    repetitionPenalty: options['repetition-penalty'] as number | undefined,
    noRepeatNgramSize: options['no-repeat-ngram-size'] as number | undefined,
    minP: options['min-p'] as number | undefined,
    logprobs: options.logprobs as number | undefined,
  };
  checkGenerationOptions(generation, model);
  return generation;
}

/** The prompt: --prompt-ids as token ids, else --prompt, else stdin. */
async function promptFrom(options: ParsedOptions): Promise<string | number[]> {
  const ids = options['prompt-ids'] as string | undefined;
  if (ids !== undefined) {
    if (options.prompt !== undefined) throw new UsageError('give --prompt or --prompt-ids, not both');
    const parsed = ids.split(',').map((id) => id.trim());
    if (parsed.some((id) => !/^\d+$/.test(id))) throw new UsageError(`--prompt-ids must be comma-separated token ids, got "${ids}"`);
    return parsed.map(Number);
  }
  const prompt = (options.prompt as string | undefined) ?? (await readStdin());
  if (prompt === undefined || prompt.length === 0) throw new UsageError('give a prompt with --prompt TEXT, --prompt-ids IDS or on stdin');
  return prompt;
}

// The API's option names in its errors, as the flags a CLI user typed.
const FLAG_OF_OPTION: Record<string, string> = {
  maxSteps: 'max-steps', temperature: 'temperature', topK: 'top-k', topP: 'top-p', seed: 'seed', stopStrings: 'stop',
  generationStrategy: 'generation-strategy', exitLayer: 'exit-layer', numSpeculations: 'num-speculations',
  draftConfidence: 'draft-confidence', sample: 'sample', truncatePrompt: 'truncate-prompt',
  repetitionPenalty: 'repetition-penalty', noRepeatNgramSize: 'no-repeat-ngram-size', minP: 'min-p', logprobs: 'logprobs',
};

/** Validates the options as generate() will, reporting a bad one by its flag (a usage error, exit 2). */
export function checkGenerationOptions(generation: GenerationOptions, model: LayerSkipModel): void {
  try {
    const { numLayers, vocabSize, speculationDefaults } = model.info;
    resolveOptions(generation, { numLayers, vocabSize, eosTokenIds: [], speculationDefaults });
  } catch (error) {
    const message = (error as Error).message;
    const name = /^(\w+)/.exec(message)?.[1] ?? '';
    if (!(name in FLAG_OF_OPTION)) throw error;
    throw new UsageError(`--${FLAG_OF_OPTION[name]}${message.slice(name.length)}`);
  }
}
