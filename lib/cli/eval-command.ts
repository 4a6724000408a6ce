// `layerskip eval`: per-exit-layer next-token accuracy, perplexity and agreement with the last layer over text
// files, as a table (or --json), and the exit layer and draft count predicted to make self-speculative decoding
// fastest; with --reference, how far its next-token distributions are from a reference checkpoint's (KL divergence,
// top-1 agreement, perplexity ratio) — what quantized weights cost.
import {
  defaultEvalWindow,
  evaluateExitLayers,
  headCostRatio,
  measurePassCosts,
  recommendExitLayer,
  type ExitLayerRecommendation,
  type ExitLayerRow,
} from '../eval/exit-layer-eval.js';
import { compareToReference, vocabularyMismatch, type ReferenceComparison } from '../eval/reference-eval.js';
import { loadModel, type Device, type LayerSkipModel } from '../model.js';
import type { LlamaTokenizer } from '../tokenizer.js';
import { listCorpusFiles, tokenizeCorpus } from '../training/corpus.js';
import { formatHelp, parseArgs, UsageError, type OptionSpecs } from './args.js';
import { defaultModelDir, ENGINE_OPTION_SPECS, engineLoadOptions, threadsOption } from './common.js';

export const DEFAULT_EVAL_MAX_TOKENS = 4096;

export const evalSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder with tokenizer.json (default: the bundled demo model)' },
  data: { kind: 'list', placeholder: 'PATH', description: 'text file or folder to evaluate on (repeatable; more paths may follow)' },
  extensions: { kind: 'list', aliases: ['extension'], placeholder: 'EXT', description: 'only files ending in EXT inside folders, e.g. .py (repeatable)' },
  'max-tokens': { kind: 'integer', placeholder: 'N', description: `score at most N tokens of the data (default ${DEFAULT_EVAL_MAX_TOKENS})` },
  window: { kind: 'integer', placeholder: 'N', description: 'tokens per window, each scored from an empty cache (default min(1024, context length))' },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  reference: {
    kind: 'string',
    placeholder: 'DIR',
    description: 'also run this checkpoint, as stored (same --device/--threads/--cpu-kernels), on the same windows and report KL divergence, top-1 agreement and perplexity against it',
  },
  timing: { kind: 'boolean', description: 'time forward passes on this device for the recommendation (default True; False: memory-bound estimate)' },
  json: { kind: 'boolean', description: 'print one JSON object instead of the table' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const evalHelp = formatHelp(
  'Usage: layerskip eval [--model DIR] --data PATH... [--max-tokens N] [--window N] [--reference DIR] [--json]',
  'Scores every exit layer (its first layers, then the final norm and LM head) on the text: next-token accuracy,\n' +
    'perplexity and agreement with the last layer, and recommends --exit-layer and --num-speculations for\n' +
    'self-speculative decoding. With --reference DIR (e.g. --model DIR --weights q4 --reference DIR: what q4\n' +
    'costs), also KL(reference || model) over the full vocabulary per prediction (mean, median, 99th percentile,\n' +
    'max), top-1 agreement and both perplexities on the same windows.',
  evalSpecs,
);

interface EvalTokens {
  tokens: Int32Array;
  files: number;
  documents: number;
  skipped: number;
}

/** Tokenizes the files in order (each framed BOS…EOS) until maxTokens tokens are in hand. */
function readEvalTokens(tokenizer: LlamaTokenizer, files: string[], maxTokens: number): EvalTokens {
  const chunks: Int32Array[] = [];
  let length = 0;
  let documents = 0;
  let skipped = 0;
  let read = 0;
  for (const file of files) {
    if (length >= maxTokens) break;
    const corpus = tokenizeCorpus(tokenizer, [file]);
    chunks.push(corpus.tokens);
    length += corpus.tokens.length;
    documents += corpus.documents;
    skipped += corpus.skipped;
    read++;
  }
  const tokens = new Int32Array(Math.min(length, maxTokens));
  let offset = 0;
  for (const chunk of chunks) {
    const take = chunk.subarray(0, tokens.length - offset);
    tokens.set(take, offset);
    offset += take.length;
  }
  return { tokens, files: read, documents, skipped };
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

export function formatExitLayerTable(rows: ExitLayerRow[]): string {
  const header = ['exit layer', 'accuracy', 'perplexity', 'agreement w/ last layer'];
  const cells = rows.map((row) => [String(row.exitLayer), percent(row.accuracy), row.perplexity.toFixed(3), percent(row.agreement)]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => cell[column].length)));
  const line = (values: string[]) => values.map((value, column) => value.padStart(widths[column])).join('  ');
  return [line(header), ...cells.map(line)].join('\n');
}

export function formatRecommendation(recommendation: ExitLayerRecommendation | undefined): string {
  if (!recommendation) return 'recommended: none (self-speculative decoding needs at least two layers)';
  const { exitLayer, numSpeculations, predictedSpeedup, costModel } = recommendation;
  const basis =
    costModel === 'measured'
      ? 'from measured pass times'
      : costModel === 'memory-bound' ? 'memory-bound estimate' : 'memory-bound estimate: the measured pass times were too noisy';
  const note = predictedSpeedup > 1 ? '' : '; no exit layer is predicted to beat autoregressive decoding';
  return `recommended: --exit-layer ${exitLayer} --num-speculations ${numSpeculations} (predicted speedup ${predictedSpeedup.toFixed(2)}×, ${basis}${note})`;
}

/** The "vs reference" block: KL(P_reference ‖ P_model) statistics, top-1 agreement and the two perplexities. */
export function formatReferenceComparison(comparison: ReferenceComparison & { dir: string }): string {
  const { predictions, top1Matches, top1Agreement } = comparison;
  const kl = (value: number) => value.toFixed(6);
  return [
    `vs reference ${comparison.dir} (same ${predictions} predictions, full depth):`,
    `  KL(reference || model)  mean ${kl(comparison.meanKl)}  median ${kl(comparison.medianKl)}  p99 ${kl(comparison.p99Kl)}  max ${kl(comparison.maxKl)}`,
    `  top-1 agreement         ${percent(top1Agreement)} (${top1Matches}/${predictions})`,
    `  perplexity              ${comparison.perplexity.toFixed(3)} vs reference ${comparison.referencePerplexity.toFixed(3)} ` +
      `(ratio ${comparison.perplexityRatio.toFixed(4)})`,
  ].join('\n');
}

export async function runEvalCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, evalSpecs);
  if (options.help) {
    process.stdout.write(evalHelp);
    return 0;
  }
  const dataPaths = [...((options.data as string[] | undefined) ?? []), ...positionals];
  if (options.data === undefined || dataPaths.length === 0) throw new UsageError('give the text to evaluate on with --data PATH');
  const maxTokens = (options['max-tokens'] as number | undefined) ?? DEFAULT_EVAL_MAX_TOKENS;
  if (maxTokens < 2) throw new UsageError(`--max-tokens must be at least 2, got ${maxTokens}`);
  const window = options.window as number | undefined;
  if (window !== undefined && window < 2) throw new UsageError(`--window must be at least 2, got ${window}`);
  let files: string[];
  try {
    files = listCorpusFiles(dataPaths, { extensions: options.extensions as string[] | undefined });
  } catch (error) {
    throw new UsageError(`--data: ${(error as Error).message}`);
  }

  const deviceOptions = { device: options.device as Device | undefined, threads: threadsOption(options), contextLength: window };
  const engineOptions = engineLoadOptions(options);
  const referenceDir = options.reference as string | undefined;
  const model = await loadModel((options.model as string | undefined) ?? defaultModelDir(), { ...deviceOptions, ...engineOptions }).catch(
    (error: Error) => {
      // The window is the context the windows are scored in: name it as the flag the user set.
      if (error.message.startsWith('contextLength ')) throw new UsageError(`--window${error.message.slice('contextLength'.length)}`);
      throw error;
    },
  );
  let reference: LayerSkipModel | undefined;
  try {
    if (!model.tokenizer) throw new Error(`${model.info.dir} has no tokenizer.json; eval needs it to tokenize --data`);
    if (referenceDir !== undefined) {
      // The reference runs on the same engine as the model, with its weights as stored.
      reference = await loadModel(referenceDir, { ...deviceOptions, cpuKernels: engineOptions.cpuKernels });
      const mismatch = vocabularyMismatch(model, reference);
      if (mismatch) {
        throw new UsageError(
          `--reference ${reference.info.dir} and --model ${model.info.dir} have different vocabularies (${mismatch}); ` +
            'the comparison needs the same token ids',
        );
      }
    }
    const data = readEvalTokens(model.tokenizer, files, maxTokens);
    if (data.tokens.length < 2) {
      throw new Error(`--data holds ${data.tokens.length} tokens of text (${data.skipped} binary files skipped); evaluation needs at least 2`);
    }
    const progress = process.stderr.isTTY
      ? (done: number, total: number) => process.stderr.write(`\reval: ${done}/${total} tokens`)
      : undefined;
    const rows = await evaluateExitLayers(model, data.tokens, { window, maxTokens, onProgress: progress });
    const referenceProgress = process.stderr.isTTY
      ? (done: number, total: number) => process.stderr.write(`\reval vs reference: ${done}/${total} tokens`)
      : undefined;
    const versusReference = reference && {
      dir: reference.info.dir,
      ...(await compareToReference(model, reference, data.tokens, { window, maxTokens, onProgress: referenceProgress })),
    };
    if (progress) process.stderr.write('\r\x1b[K');
    const info = model.info;
    const headCost = headCostRatio(info);
    // Pass times on this device make the recommendation honest where verifying k + 1 rows is not free.
    const costs = options.timing === false ? undefined : await measurePassCosts(model);
    const recommendation = recommendExitLayer(rows, info.numLayers, headCost, costs);
    const evalWindow = window ?? defaultEvalWindow(info.contextLength);
    if (options.json) {
      const result = {
        model: info.dir, device: info.device, numLayers: info.numLayers, files: data.files, documents: data.documents,
        skippedFiles: data.skipped, tokens: data.tokens.length, predictions: rows[0].tokens, window: evalWindow,
        headCostRatio: headCost, passCosts: costs ?? null, layers: rows, recommendation: recommendation ?? null,
        reference: versusReference ?? null,
      };
      process.stdout.write(JSON.stringify(result) + '\n');
      return 0;
    }
    process.stdout.write(
      `eval: ${rows[0].tokens} predictions over ${data.tokens.length} tokens of ${data.documents} document${data.documents === 1 ? '' : 's'}` +
        `${data.skipped ? ` (${data.skipped} binary files skipped)` : ''}, window ${evalWindow}, ` +
        `${info.numLayers} layers on ${info.backend}\n\n${formatExitLayerTable(rows)}\n\n${formatRecommendation(recommendation)}\n` +
        (versusReference ? `\n${formatReferenceComparison(versusReference)}\n` : ''),
    );
    return 0;
  } finally {
    await reference?.dispose();
    await model.dispose();
  }
}
