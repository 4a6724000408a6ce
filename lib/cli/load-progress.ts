// Weight-upload progress for the CLI: a one-line `\r` bar on a TTY for models large enough to take a moment, e.g.
//   loading weights [###############---------------]  50%  1235 / 2470 MB
// and the memory line printed once loading finished.
import { loadModel, type LayerSkipModel, type LoadOptions, type ModelInfo } from '../model.js';
import { UsageError } from './args.js';

/** Checkpoints at most this large load too quickly for a bar to help. */
export const PROGRESS_BAR_MIN_BYTES = 256e6;

const BAR_WIDTH = 30;

/** The part of a stream the bar needs (process.stderr, or a fake in tests). */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export function formatProgressBar(uploadedBytes: number, totalBytes: number, label = 'loading weights'): string {
  const fraction = totalBytes > 0 ? Math.min(1, uploadedBytes / totalBytes) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const percent = String(Math.floor(fraction * 100)).padStart(3);
  const megabytes = (bytes: number) => Math.round(bytes / 1e6);
  return (
    `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${percent}%  ` +
    `${megabytes(uploadedBytes)} / ${megabytes(totalBytes)} MB`
  );
}

/** "cuda: 2.47 GiB of weights resident; 130.10 GiB of 139.80 GiB free" (free/total only on CUDA). */
export function formatMemoryReport(info: Pick<ModelInfo, 'device' | 'residentWeightBytes' | 'deviceFreeBytes' | 'deviceTotalBytes'>): string {
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  const device =
    info.deviceFreeBytes !== null && info.deviceTotalBytes !== null
      ? `; ${gib(info.deviceFreeBytes)} of ${gib(info.deviceTotalBytes)} free`
      : '';
  return `${info.device}: ${gib(info.residentWeightBytes)} of weights resident${device}`;
}

/**
 * Draws the bar on `stream` when it is a TTY and the checkpoint is larger than `minBytes`; redraws only when the
 * percentage changes. finish() clears the line and says whether a bar was shown.
 */
export class LoadProgressBar {
  private shown = false;
  private lastPercent = -1;

  constructor(
    private readonly stream: ProgressStream,
    private readonly minBytes = PROGRESS_BAR_MIN_BYTES,
    private readonly label = 'loading weights',
  ) {}

  readonly onProgress = (uploadedBytes: number, totalBytes: number): void => {
    if (!this.stream.isTTY || totalBytes <= this.minBytes) return;
    const percent = Math.floor((uploadedBytes / totalBytes) * 100);
    if (percent === this.lastPercent) return;
    this.lastPercent = percent;
    this.shown = true;
    this.stream.write(`\r${formatProgressBar(uploadedBytes, totalBytes, this.label)}`);
  };

  finish(): boolean {
    if (this.shown) this.stream.write('\r\x1b[2K');
    return this.shown;
  }
}

/**
 * Loads a model for a CLI command with the progress bar on stderr and, when the bar was shown, the load time and
 * memory line after it.
 */
export async function loadModelWithProgress(dir: string, options: LoadOptions): Promise<LayerSkipModel> {
  const progressBar = new LoadProgressBar(process.stderr);
  const started = performance.now();
  let model: LayerSkipModel | undefined;
  try {
    model = await loadModel(dir, { ...options, onProgress: progressBar.onProgress });
    return model;
  } catch (error) {
    // The one load option a user sizes by hand: name it as the flag.
    const message = (error as Error).message;
    if (message.startsWith('contextLength ')) throw new UsageError(`--context-length${message.slice('contextLength'.length)}`);
    throw error;
  } finally {
    if (progressBar.finish() && model) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      process.stderr.write(`loaded in ${seconds} s; ${formatMemoryReport(model.info)}\n`);
    }
  }
}
