// `layerskip quantize`: writes a q8 / q4 copy of a checkpoint folder that loads by mmap without re-quantizing.
import { QUANT_TYPES, type QuantType } from '../model.js';
import { quantizeModel } from '../quantize.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs } from './args.js';
import { defaultModelDir, threadsOption } from './common.js';
import { LoadProgressBar } from './load-progress.js';

export const quantizeSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  out: { kind: 'string', placeholder: 'DIR', description: 'new folder to write (must not exist, or be empty)' },
  type: { kind: 'string', placeholder: 'TYPE', description: `${QUANT_TYPES.join(' or ')}: q8 = 8.5 bits per weight, q4 = 5 bits` },
  'keep-head': { kind: 'boolean', description: 'keep the LM head (and an embedding tied to it) as stored' },
  threads: { kind: 'integer', placeholder: 'N', description: 'threads (default: one per core)' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const quantizeHelp = formatHelp(
  'Usage: layerskip quantize --model DIR --out DIR --type q8|q4 [--keep-head]',
  'Writes the checkpoint with its matrices block-quantized (32 weights per block, f16 scales), plus config.json\n' +
    '(with a quantization_config) and the tokenizer files. Load the result like any model folder.',
  quantizeSpecs,
);

const size = (bytes: number) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`);

export async function runQuantizeCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, quantizeSpecs);
  if (options.help) {
    process.stdout.write(quantizeHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], quantizeSpecs);
  const out = options.out as string | undefined;
  if (out === undefined) throw new UsageError('give the folder to write with --out DIR');
  const type = options.type as string | undefined;
  if (type === undefined || !(QUANT_TYPES as readonly string[]).includes(type)) {
    throw new UsageError(`--type must be one of ${QUANT_TYPES.join(', ')}${type === undefined ? '' : `, got "${type}"`}`);
  }
  const progress = new LoadProgressBar(process.stderr, 0, 'quantizing');
  // Ctrl-C (or a kill) stops at the next tensor and removes the half-written folder before exiting 130.
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let report;
  try {
    report = await quantizeModel((options.model as string | undefined) ?? defaultModelDir(), out, {
      type: type as QuantType,
      keepHead: options['keep-head'] === true,
      threads: threadsOption(options),
      onProgress: progress.onProgress,
      signal: controller.signal,
    });
  } catch (error) {
    progress.finish();
    if (!controller.signal.aborted) throw error;
    process.stderr.write(`layerskip: ${(error as Error).message}\n`);
    return 130;
  } finally {
    progress.finish();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  process.stdout.write(
    `wrote ${report.outDir}: ${report.quantizedTensors} of ${report.tensors} tensors as ${type}, ` +
      `${size(report.inputBytes)} → ${size(report.outputBytes)} in ${report.seconds.toFixed(1)} s` +
      (report.copiedFiles.length ? `; copied ${report.copiedFiles.join(', ')}` : '') +
      '\n',
  );
  return 0;
}
