// The bodies OpenAI's API answers with, built from the engine's results: a whole completion / chat completion, and
// the chunks of a stream (text deltas, the finishing chunk, the usage chunk). Both carry llama-server's `timings`.
import crypto from 'node:crypto';

import type { TokenLogprob } from '../generation/logits-processing.js';

import type { EngineFinishReason, EngineResult } from './engine-api.js';

export type CompletionKind = 'completion' | 'chat';

/**
 * OpenAI's finish_reason. Only 'stop' means the model ended its answer (EOS or a stop string); everything that
 * cut it short is 'length': max_tokens, a full context, the server's time limit (as llama-server reports its
 * t_max_predict_ms limit) and an abort while the client still listens (the server shutting down), so a client
 * never mistakes a truncated answer for a finished one.
 */
export function openAiFinishReason(reason: EngineFinishReason): 'stop' | 'length' {
  return reason === 'stop' ? 'stop' : 'length';
}

export function usageOf(result: EngineResult) {
  const completionTokens = result.tokenIds.length;
  return { prompt_tokens: result.promptTokens, completion_tokens: completionTokens, total_tokens: result.promptTokens + completionTokens };
}

/** llama-server's `timings` object (draft_n / draft_n_accepted count self-speculative drafts). */
export function timingsOf(result: EngineResult) {
  const t = result.timings;
  return {
    prompt_n: t.promptN,
    prompt_ms: t.promptMs,
    predicted_n: t.predictedN,
    predicted_ms: t.predictedMs,
    predicted_per_second: t.predictedPerSecond,
    draft_n: t.draftN,
    draft_n_accepted: t.draftNAccepted,
  };
}

/** One request's response bodies, sharing its id and creation time. */
export class ResponseBuilder {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);

  // Streaming completions: text_offset of the next token (characters of token text before it).
  private tokenOffset = 0;

  constructor(
    readonly kind: CompletionKind,
    readonly model: string,
    /** Streaming with include_usage: every chunk carries `usage: null`, as OpenAI sends them. */
    private readonly includeUsage = false,
    /** A token id's text, for logprobs (each token decoded on its own). */
    private readonly tokenText: (id: number) => string = String,
  ) {
    this.id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomBytes(12).toString('hex')}`;
  }

  /** The non-streaming answer. */
  full(result: EngineResult): object {
    const finishReason = openAiFinishReason(result.finishReason);
    const choice =
      this.kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: result.text }, logprobs: this.logprobs(result.logprobs), finish_reason: finishReason }
        : { index: 0, text: result.text, logprobs: this.logprobs(result.logprobs), finish_reason: finishReason };
    return { ...this.envelope(this.kind === 'chat' ? 'chat.completion' : 'text_completion'), choices: [choice], usage: usageOf(result), timings: timingsOf(result) };
  }

  /** Chat streams open with the assistant's role and empty content. */
  roleChunk(): object {
    return this.chunk({ delta: { role: 'assistant', content: '' } }, null);
  }

  /** A piece of generated text, with the logprobs entries of the tokens emitted since the last chunk. */
  textChunk(text: string, entries?: TokenLogprob[]): object {
    return this.chunk(this.kind === 'chat' ? { delta: { content: text } } : { text }, null, this.logprobs(entries));
  }

  /**
   * OpenAI's logprobs object for these entries, or null: chat `{ content: [{ token, logprob, bytes, top_logprobs }] }`,
   * completions `{ tokens, token_logprobs, top_logprobs, text_offset }` (offsets count the tokens' text from the
   * start of the completion).
   */
  private logprobs(entries: TokenLogprob[] | undefined): object | null {
    if (!entries) return null;
    const text = (token: number) => this.tokenText(token);
    if (this.kind === 'chat') {
      const item = (token: number, logprob: number) => ({ token: text(token), logprob, bytes: [...Buffer.from(text(token), 'utf8')] });
      return {
        content: entries.map((entry) => ({ ...item(entry.token, entry.logprob), top_logprobs: entry.top.map((t) => item(t.token, t.logprob)) })),
        refusal: null,
      };
    }
    const offsets = entries.map((entry) => {
      const offset = this.tokenOffset;
      this.tokenOffset += text(entry.token).length;
      return offset;
    });
    return {
      tokens: entries.map((entry) => text(entry.token)),
      token_logprobs: entries.map((entry) => entry.logprob),
      top_logprobs: entries.map((entry) => Object.fromEntries(entry.top.map((t) => [text(t.token), t.logprob]))),
      text_offset: offsets,
    };
  }

  /** The last chunk with choices: no text, the finish reason, and the timings. */
  finishChunk(result: EngineResult): object {
    const finishReason = openAiFinishReason(result.finishReason);
    return { ...this.chunk(this.kind === 'chat' ? { delta: {} } : { text: '' }, finishReason), timings: timingsOf(result) };
  }

  /** include_usage: after the finish chunk, `choices: []` and the request's usage. */
  usageChunk(result: EngineResult): object {
    return { ...this.envelope(this.chunkObject()), choices: [], usage: usageOf(result) };
  }

  private chunk(content: object, finishReason: 'stop' | 'length' | null, logprobs: object | null = null): object {
    const choice = { index: 0, ...content, logprobs, finish_reason: finishReason };
    return { ...this.envelope(this.chunkObject()), choices: [choice], ...(this.includeUsage ? { usage: null } : {}) };
  }

  private chunkObject(): string {
    return this.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  }

  private envelope(object: string) {
    return { id: this.id, object, created: this.created, model: this.model };
  }
}
