// FakeEngine: an Engine for protocol tests. It "generates" deterministic words chosen by the seed, one per
// onText call a few milliseconds apart, stops by itself after NATURAL_LENGTH pieces (unless asked to ignore EOS:
// stopTokenIds []), honours the abort signal, reports into an observer like the real engine, and can be told to
// refuse work (QueueFullError) or to fail after some pieces.
import { setTimeout as delay } from 'node:timers/promises';

import {
  QueueFullError,
  type Engine,
  type EngineObserver,
  type EngineRequest,
  type EngineResult,
  type EngineState,
} from '../../lib/server/engine-api.js';

const WORDS = [' the', ' quick', ' brown', ' fox', ' jumps', ' over', ' a', ' lazy', ' dög', '\n'];
export const NATURAL_LENGTH = 8;

/** The pieces the fake generates for `seed`, `count` of them. */
export function fakePieces(seed: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => WORDS[(((seed + i) % WORDS.length) + WORDS.length) % WORDS.length]);
}

export class FakeEngine implements Engine {
  readonly numLayers = 2;
  readonly requests: EngineRequest[] = [];
  readonly aborted: EngineRequest[] = [];
  /** Set: submit() throws QueueFullError with this Retry-After. */
  queueFullRetryAfter: number | undefined;
  /** Set: submit() rejects with this error after `failAfterPieces` pieces. */
  failure: Error | undefined;
  failAfterPieces = 0;
  pieceDelayMs = 2;
  /** False: keep generating after an abort (an engine slow to notice), so text arrives for a closed stream. */
  honourAbort = true;
  closedWith: number | undefined;
  private abortWaiters: Array<(request: EngineRequest) => void> = [];

  constructor(
    readonly contextLength: number,
    private readonly observer: EngineObserver = {},
  ) {}

  async submit(request: EngineRequest): Promise<EngineResult> {
    if (this.queueFullRetryAfter !== undefined) throw new QueueFullError(this.queueFullRetryAfter);
    this.requests.push(request);
    request.signal?.addEventListener('abort', () => {
      this.aborted.push(request);
      for (const wake of this.abortWaiters.splice(0)) wake(request);
    });
    const ignoreEos = request.stopTokenIds !== undefined && request.stopTokenIds.length === 0;
    const target = Math.min(request.maxTokens, ignoreEos ? Infinity : NATURAL_LENGTH);
    const pieces: string[] = [];
    for (const piece of fakePieces(request.seed, target)) {
      await delay(this.pieceDelayMs);
      if (request.signal?.aborted && this.honourAbort) break;
      if (this.failure && pieces.length === this.failAfterPieces) throw this.failure;
      pieces.push(piece);
      if (pieces.length === 1) this.observer.onFirstToken?.(5);
      else this.observer.onToken?.(this.pieceDelayMs);
      if (request.strategy.generationStrategy === 'self_speculative') this.observer.onSpeculation?.(3, 2);
      request.onText?.(piece);
    }
    const finishReason = request.signal?.aborted && this.honourAbort ? 'abort' : pieces.length === request.maxTokens ? 'length' : 'stop';
    const result: EngineResult = {
      text: pieces.join(''),
      tokenIds: pieces.map((_, i) => 1000 + i),
      promptTokens: request.promptIds.length,
      finishReason,
      timings: {
        promptN: request.promptIds.length,
        promptMs: 5,
        predictedN: pieces.length,
        predictedMs: pieces.length * this.pieceDelayMs,
        predictedPerSecond: 1000 / this.pieceDelayMs,
        draftN: 0,
        draftNAccepted: 0,
        queuedMs: 0,
      },
    };
    this.observer.onFinish?.(result);
    return result;
  }

  /** Back to a well-behaved engine with no recorded requests. */
  reset(): void {
    this.requests.length = 0;
    this.queueFullRetryAfter = undefined;
    this.failure = undefined;
    this.failAfterPieces = 0;
    this.pieceDelayMs = 2;
    this.honourAbort = true;
  }

  /** Resolves with the next request whose signal aborts. */
  nextAbort(): Promise<EngineRequest> {
    return new Promise((resolve) => this.abortWaiters.push(resolve));
  }

  state(): EngineState {
    return { running: 1, queued: 2, slots: 4, kvCacheUsedPositions: 64, kvCacheTotalPositions: 256 };
  }

  async close(deadlineMs: number): Promise<void> {
    this.closedWith = deadlineMs;
  }
}
