// The progress line of a task benchmark or sweep on a terminal, redrawn in place on stderr:
//   examples [##########----------] 25/50  ETA 0:42 · acceptance 71.3% · 812 tok/s
// Nothing is drawn when stderr is not a TTY (logs get the final table only). It fits the terminal's width.
import type { ProgressStream } from './load-progress.js';

const BAR_WIDTH = 20;

/** "1:05", "12:00", "1:02:03". */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const [hours, minutes, secs] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}:${two(minutes)}:${two(secs)}` : `${minutes}:${two(secs)}`;
}

export function formatTaskProgress(label: string, done: number, total: number, elapsedSeconds: number, details: string[]): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const eta = done > 0 && done < total ? `  ETA ${formatDuration((elapsedSeconds / done) * (total - done))}` : '';
  return [`${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total}${eta}`, ...details].join(' · ');
}

export class TaskProgressLine {
  private readonly started = performance.now();
  private shown = false;

  constructor(
    private readonly stream: ProgressStream & { columns?: number },
    private readonly label: string,
  ) {}

  update(done: number, total: number, details: string[]): void {
    if (!this.stream.isTTY) return;
    const line = formatTaskProgress(this.label, done, total, (performance.now() - this.started) / 1000, details);
    const width = this.stream.columns && this.stream.columns > 10 ? this.stream.columns - 1 : 120;
    this.stream.write(`\r\x1b[2K${line.slice(0, width)}`);
    this.shown = true;
  }

  /** Clears the line so the results print on a clean one. */
  finish(): void {
    if (this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}
