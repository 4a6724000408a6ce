// GenerationOutput: what one generation has produced — token ids, the text made final so far, and why it ended.
// It decides token by token whether generation goes on (stop tokens, stop strings, the length limit) and holds
// back text that could still become a stop string. Used by the single-sequence driver (generate.ts) and the
// server's batching engine.
import type { LlamaTokenizer } from '../tokenizer.js';
import { StreamingDetokenizer } from '../tokenizer.js';
import { StopStringMatcher } from './stop-strings.js';

export type FinishReason = 'stop_token' | 'stop_string' | 'length' | 'context_full' | 'abort';

export class GenerationOutput {
  readonly tokenIds: number[] = [];
  text = '';
  finishReason: FinishReason | undefined;
  private readonly detokenizer: { push(token: number): string; flush(): string };
  private readonly stopMatcher: StopStringMatcher;

  constructor(
    tokenizer: LlamaTokenizer | undefined,
    readonly stopTokenIds: ReadonlySet<number>,
    stopStrings: readonly string[],
    private readonly maxTokens: number,
    /** Called with each piece of text as soon as it is final. */
    private readonly onText?: (piece: string) => void,
  ) {
    this.detokenizer = tokenizer ? new StreamingDetokenizer(tokenizer) : { push: () => '', flush: () => '' };
    this.stopMatcher = new StopStringMatcher(stopStrings);
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  /** Takes one generated token; returns false (and sets finishReason) when generation ends with it. */
  push(token: number): boolean {
    if (this.finished) return false;
    if (this.stopTokenIds.has(token)) return this.end('stop_token');
    this.tokenIds.push(token);
    const check = this.stopMatcher.push(this.detokenizer.push(token));
    this.publish(check.emit);
    if (check.stopped) return this.end('stop_string');
    if (this.tokenIds.length >= this.maxTokens) return this.end('length');
    return true;
  }

  /** Ends generation for a reason outside the tokens (abort, a full context). */
  end(reason: FinishReason): false {
    this.finishReason ??= reason;
    return false;
  }

  /** Publishes the text still held back (unless a stop string ended it); call once, at the end. */
  flush(): void {
    if (this.finishReason === 'stop_string') return;
    const tail = this.stopMatcher.push(this.detokenizer.flush());
    this.publish(tail.emit);
    if (tail.stopped) this.finishReason = 'stop_string';
    else this.publish(this.stopMatcher.flush());
  }

  private publish(piece: string): void {
    if (piece.length === 0) return;
    this.text += piece;
    this.onText?.(piece);
  }
}
