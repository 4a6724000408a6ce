// StreamingDetokenizer: turns generated token ids into text pieces as they arrive, such that the pieces
// concatenate to decode(all ids). The usual prefix-offset scheme (HF TextStreamer, TGI):
//   keep ids; prefixOffset..readOffset is the window already emitted, which gives the decoder the context
//   it needs (SentencePiece's leading "▁" handling strips a space only at the start of a decode);
//   on each id decode prefix..end, and emit what follows the decode of prefix..read, unless the text ends in
//   U+FFFD: then a character split across byte tokens (<0xE2><0x82><0xAC>, byte-level BPE pieces) is
//   still incomplete, and the piece is held until a later token completes it.

export interface TokenDecoder {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

export interface StreamingDetokenizerOptions {
  /** Leave special tokens (BOS, EOS, <|eot_id|>) out of the text (default true). */
  skipSpecialTokens?: boolean;
}

const REPLACEMENT_CHARACTER = '\uFFFD';

export class StreamingDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private readonly skipSpecialTokens: boolean;

  constructor(private readonly tokenizer: TokenDecoder, options: StreamingDetokenizerOptions = {}) {
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
  }

  /** Adds one token id; returns the newly complete text (possibly ""). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decodeRange(this.prefixOffset, this.readOffset);
    const newText = this.decodeRange(this.prefixOffset, this.ids.length);
    if (newText.length > prefixText.length && !newText.endsWith(REPLACEMENT_CHARACTER) && newText.startsWith(prefixText)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return newText.slice(prefixText.length);
    }
    return '';
  }

  /** Returns whatever is still held back (an incomplete character decodes to U+FFFD) and resets the state. */
  flush(): string {
    const prefixText = this.decodeRange(this.prefixOffset, this.readOffset);
    const newText = this.decodeRange(this.prefixOffset, this.ids.length);
    this.reset();
    return newText.startsWith(prefixText) ? newText.slice(prefixText.length) : newText;
  }

  reset(): void {
    this.ids.length = 0;
    this.prefixOffset = 0;
    this.readOffset = 0;
  }

  private decodeRange(start: number, end: number): string {
    if (end <= start) return '';
    return this.tokenizer.decode(this.ids.slice(start, end), { skipSpecialTokens: this.skipSpecialTokens });
  }
}
