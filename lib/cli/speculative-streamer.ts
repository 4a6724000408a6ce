// The speculative streamer (after LayerSkip's): on a terminal, each step's draft tokens appear dimmed after the
// committed text as they are proposed, and are erased when the verifier rules; the committed text — accepted
// drafts and the verifier's token — is then written normally. The overlay is kept on the cursor's line (newlines
// shown as ⏎, cut at the right margin) so it never scrolls the screen and can be erased with save/restore cursor.
import type { SpeculationEvent } from '../generation/self-speculative.js';

const SAVE_CURSOR = '\x1b7';
const RESTORE_CURSOR = '\x1b8';
const CLEAR_TO_END = '\x1b[J';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

export class SpeculativeStreamer {
  private drafts: number[] = [];
  private column = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly decode: (ids: number[]) => string,
  ) {}

  /** Committed text. */
  write(text: string): void {
    this.erase();
    this.out.write(text);
    const line = text.slice(text.lastIndexOf('\n') + 1);
    this.column = text.includes('\n') ? line.length : this.column + line.length;
  }

  readonly onSpeculation = (event: SpeculationEvent): void => {
    if (event.type === 'verify') {
      this.erase();
      return;
    }
    this.drafts.push(event.token);
    // A terminal that reports no width (0 columns, e.g. some CI ptys) is treated as 80 wide.
    const columns = this.out.columns && this.out.columns > 0 ? this.out.columns : 80;
    const room = Math.max(0, columns - (this.column % columns) - 1);
    const overlay = this.decode(this.drafts).replace(/\n/g, '⏎').slice(0, room);
    this.out.write(`${this.drafts.length === 1 ? SAVE_CURSOR : RESTORE_CURSOR + CLEAR_TO_END}${DIM}${overlay}${RESET}`);
  };

  private erase(): void {
    if (this.drafts.length === 0) return;
    this.out.write(RESTORE_CURSOR + CLEAR_TO_END);
    this.drafts = [];
  }
}
