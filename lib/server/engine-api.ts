// The contract between the HTTP layer (http-server.ts, OpenAI request parsing) and the batching engine
// (batch-engine.ts): the server turns a validated request into an EngineRequest, the engine runs it beside the
// others and reports text as it becomes final, then a result. Nothing here knows HTTP or the native binding.
import type { TokenLogprob } from '../generation/logits-processing.js';
import type { GenerationStrategy } from '../generation/options.js';

export interface EngineSampling {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
}

/** The most drafts per self-speculative round a request may ask for. */
export const MAX_NUM_SPECULATIONS = 16;

export interface EngineStrategy {
  generationStrategy: GenerationStrategy;
  /** Layers run before the shared head: the draft depth for self_speculative, the exit for autoregressive. */
  exitLayer: number;
  numSpeculations: number;
  /** Stop drafting when the draft's top probability falls below this (0 = always draft numSpeculations). */
  draftConfidence: number;
}

export interface EngineRequest {
  promptIds: number[];
  /** Generated tokens at most (≥ 1). */
  maxTokens: number;
  sampling: EngineSampling;
  /** Seed of the request's own random stream (sampling); the same seed and request give the same text. */
  seed: number;
  /** Generation ends before any of these strings; the text never contains them. */
  stopStrings: string[];
  /** Token ids that end generation (not part of the text); default: the checkpoint's EOS ids. */
  stopTokenIds?: number[];
  strategy: EngineStrategy;
  /** Aborting frees the request's slot within one engine step; the promise then resolves with reason 'abort'. */
  signal?: AbortSignal;
  /** Text as soon as it is final (never a partial stop string), with the ids of the tokens it completes. */
  onText?: (piece: string) => void;
  /**
   * Per-token log-probabilities (the model's distribution at temperature 1; for self-speculative rounds the
   * verifier's) with this many alternatives (0–20); undefined: none.
   */
  logprobs?: number;
  /** With logprobs: each generated token's entry as it is emitted, before its text. */
  onLogprobs?: (entries: TokenLogprob[]) => void;
}

export type EngineFinishReason = 'stop' | 'length' | 'abort' | 'timeout' | 'context_full';

export interface EngineTimings {
  /** Prompt tokens evaluated, and the time from the request's admission to its first generated token. */
  promptN: number;
  promptMs: number;
  /** Generated tokens and the time from the first to the last. */
  predictedN: number;
  predictedMs: number;
  predictedPerSecond: number;
  /** Self-speculative drafts verified and accepted (0 for autoregressive). */
  draftN: number;
  draftNAccepted: number;
  /** Time spent waiting for a free slot. */
  queuedMs: number;
}

export interface EngineResult {
  text: string;
  tokenIds: number[];
  promptTokens: number;
  finishReason: EngineFinishReason;
  timings: EngineTimings;
  /** With request.logprobs: one entry per token of tokenIds. */
  logprobs?: TokenLogprob[];
}

/** Thrown by submit() when the queue is full; the server answers 503 with Retry-After. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the server is busy: every slot is taken and the queue is full');
  }
}

/** A snapshot for /metrics and /health. */
export interface EngineState {
  running: number;
  queued: number;
  slots: number;
  /** KV cache positions in use over all slots, and the total. */
  kvCacheUsedPositions: number;
  kvCacheTotalPositions: number;
}

export interface Engine {
  /** Positions one request may use (prompt + generated). */
  readonly contextLength: number;
  readonly numLayers: number;
  /** Runs the request; rejects only for a full queue (QueueFullError), a closed engine, or an engine failure. */
  submit(request: EngineRequest): Promise<EngineResult>;
  state(): EngineState;
  /** Stops admitting work; in-flight requests finish, or are aborted after `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
}

/** Every step the engine runs and every token it produces, for metrics. */
export interface EngineObserver {
  onStep?(step: { rows: number; sequences: number; ms: number }): void;
  onFirstToken?(ms: number): void;
  onToken?(interTokenMs: number): void;
  onSpeculation?(drafted: number, accepted: number): void;
  onFinish?(result: EngineResult): void;
}
