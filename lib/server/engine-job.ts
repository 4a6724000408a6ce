// EngineJob: one request inside the batching engine — where it is (prefill, decode, a self-speculative round),
// the item it contributes to the next step, and what it makes of that item's result. The decoding rules are the
// single-sequence ones (generation/self-speculative.ts); only the scheduling differs: each step runs one item
// per job, batched with the other jobs' items.
import type { NativeBatchItem, NativeBatchResult, NativeContext } from '../native.js';
import type { LlamaTokenizer } from '../tokenizer.js';
import { logSoftmax, tokenLogprob, type TokenLogprob } from '../generation/logits-processing.js';
import { GenerationOutput } from '../generation/output.js';
import { Random } from '../generation/random.js';
import type { EngineFinishReason, EngineRequest, EngineResult } from './engine-api.js';

/** A slot: one context (KV cache) and the tokens it holds from the last request that ran in it. */
export interface Slot {
  index: number;
  context: NativeContext;
  /** Tokens cached in layers [0, cachedLayers) (reused as a common prompt prefix by the next request). */
  cachedTokens: number[];
  cachedLayers: number;
  job?: EngineJob;
}

export class EngineJob {
  readonly output: GenerationOutput;
  readonly random: Random;
  readonly submittedAt = performance.now();
  admittedAt = 0;
  firstTokenAt = 0;
  lastTokenAt = 0;
  /** Prompt tokens in the cache (reused or evaluated), and of those, reused from the slot's previous request. */
  prefilled = 0;
  reused = 0;
  /** The last emitted token, not yet evaluated (set once prefill picked the first token). */
  last: number | undefined;
  /** Positions every layer holds (the committed length). */
  committed = 0;
  // The current self-speculative round.
  speculating = false;
  draftingDone = false;
  drafts: number[] = [];
  draftPasses = 0;
  /** Acceptance rate estimate (exponential average over rounds) for the speculation policy. */
  acceptance: number;
  /** Rounds this job speculated, and plain rounds since it last did (the policy re-measures now and then). */
  speculatedRounds = 0;
  roundsWithoutSpeculation = 0;
  draftN = 0;
  draftAccepted = 0;
  slot: Slot | undefined;
  /** With request.logprobs: an entry per emitted token. */
  readonly logprobs: TokenLogprob[] = [];

  constructor(
    readonly request: EngineRequest,
    tokenizer: LlamaTokenizer | undefined,
    stopTokenIds: number[],
    private readonly numLayers: number,
    readonly resolve: (result: EngineResult) => void,
    readonly reject: (error: Error) => void,
    initialAcceptance: number,
  ) {
    this.output = new GenerationOutput(tokenizer, new Set(stopTokenIds), request.stopStrings, request.maxTokens, request.onText);
    this.random = new Random(request.seed);
    this.acceptance = initialAcceptance;
  }

  get speculative(): boolean {
    return this.request.strategy.generationStrategy === 'self_speculative';
  }

  get prefilling(): boolean {
    return this.last === undefined;
  }

  /** Layers a prefill or plain decode runs: the early exit for autoregressive, all layers otherwise. */
  get forwardLayers(): number {
    return this.speculative ? this.numLayers : this.request.strategy.exitLayer;
  }

  /**
   * Whether this job should speculate a round whatever the cost model says, to measure its own acceptance: its
   * first two rounds, then one in every 32 (acceptance changes with the text).
   */
  get exploring(): boolean {
    return this.speculatedRounds < 2 || this.roundsWithoutSpeculation >= 32;
  }

  /** Drafts this job may propose in a round: k, bounded by the context and the tokens it may still emit. */
  maxDrafts(contextLength: number): number {
    const room = Math.min(contextLength - 1 - this.committed, this.request.maxTokens - this.output.tokenIds.length - 1);
    return Math.max(0, Math.min(this.request.strategy.numSpeculations, room));
  }

  // Sampling settings of every item; picks also hand their logits rows back when the request wants logprobs.
  private itemSettings() {
    const { temperature, topK, topP } = this.request.sampling;
    return { temperature, topK, topP, logits: this.request.logprobs !== undefined };
  }

  // Entries for `tokens`, the i-th from row i of `logits` (rows × vocab).
  private logprobsOf(tokens: number[], logits: Float32Array | undefined, rows: number): TokenLogprob[] | undefined {
    if (this.request.logprobs === undefined || !logits) return undefined;
    const vocab = logits.length / rows;
    return tokens.map((token, i) => tokenLogprob(logSoftmax(logits.subarray(i * vocab, (i + 1) * vocab)), token, this.request.logprobs!));
  }

  get sampled(): boolean {
    return this.request.sampling.temperature > 0;
  }

  /** The next prefill chunk (≤ budget tokens); the last chunk picks the first token. */
  prefillItem(budget: number): NativeBatchItem {
    const end = Math.min(this.request.promptIds.length, this.prefilled + budget);
    const pick = end === this.request.promptIds.length;
    return {
      kind: 'forward',
      context: this.slot!.context,
      tokens: Int32Array.from(this.request.promptIds.slice(this.prefilled, end)),
      layerEnd: this.forwardLayers,
      pick,
      ...this.itemSettings(),
      uniforms: pick && this.sampled ? this.random.uniforms(1) : undefined,
    };
  }

  decodeItem(): NativeBatchItem {
    return {
      kind: 'forward',
      context: this.slot!.context,
      tokens: Int32Array.of(this.last!),
      layerEnd: this.forwardLayers,
      pick: true,
      ...this.itemSettings(),
      uniforms: this.sampled ? this.random.uniforms(1) : undefined,
    };
  }

  draftItem(): NativeBatchItem {
    return {
      kind: 'draft',
      context: this.slot!.context,
      token: this.drafts.length > 0 ? this.drafts[this.drafts.length - 1] : this.last!,
      exitLayer: this.request.strategy.exitLayer,
      ...this.itemSettings(),
      uniforms: this.sampled ? this.random.uniforms(1) : undefined,
    };
  }

  verifyItem(): NativeBatchItem {
    return {
      kind: 'verify',
      context: this.slot!.context,
      draftCount: this.drafts.length,
      ...this.itemSettings(),
      uniforms: this.sampled ? this.random.uniforms(this.drafts.length + 1) : undefined,
    };
  }

  /** A prefill chunk of `tokens` ran; the last chunk emits the first generated token. */
  afterPrefill(tokens: number, result: NativeBatchResult, contextLength: number): void {
    this.prefilled += tokens;
    this.committed = this.prefilled;
    if (this.prefilled < this.request.promptIds.length) return;
    this.emit([result.token!], contextLength, this.logprobsOf([result.token!], result.logits, 1));
  }

  afterDecode(result: NativeBatchResult, contextLength: number): void {
    this.committed += 1;
    this.emit([result.token!], contextLength, this.logprobsOf([result.token!], result.logits, 1));
  }

  /** One draft pass ran; decides whether the round drafts on (Context::draft_run's rules). */
  afterDraft(result: NativeBatchResult, contextLength: number, stopTokenIds: ReadonlySet<number>): void {
    this.draftPasses += 1;
    const maxDrafts = this.maxDrafts(contextLength);
    if (result.confidence! < this.request.strategy.draftConfidence) {
      this.draftingDone = true; // that proposal is dropped; verify checks the kept ones
      return;
    }
    this.drafts.push(result.token!);
    if (this.drafts.length >= maxDrafts || stopTokenIds.has(result.token!)) this.draftingDone = true;
  }

  /** Accepts the agreeing prefix, then the verifier's token; rolls the cache back to x + the accepted drafts. */
  afterVerify(result: NativeBatchResult, contextLength: number): { drafted: number; accepted: number } {
    const drafts = this.drafts;
    let accepted = 0;
    while (accepted < drafts.length) {
      const agrees = this.sampled
        ? this.random.next() < result.verifyProbabilities![accepted] / result.draftProbabilities![accepted]
        : result.tokens![accepted] === drafts[accepted];
      if (!agrees) break;
      accepted++;
    }
    const block = [...drafts.slice(0, accepted), result.tokens![accepted]];
    // Row i of the verification scored position i of the block: the verifier's probabilities, as without drafts.
    const blockLogprobs = this.logprobsOf(block, result.logits, drafts.length + 1);
    this.committed += 1 + accepted; // x and the accepted drafts
    this.slot!.context.truncate(this.committed);
    if (drafts.length > 0) this.acceptance = 0.7 * this.acceptance + 0.3 * (accepted / drafts.length);
    this.speculatedRounds++;
    this.roundsWithoutSpeculation = 0;
    this.draftN += drafts.length;
    this.draftAccepted += accepted;
    this.endRound();
    this.emit(block, contextLength, blockLogprobs);
    return { drafted: drafts.length, accepted };
  }

  endRound(): void {
    this.speculating = false;
    this.draftingDone = false;
    this.drafts = [];
    this.draftPasses = 0;
  }

  // Emits tokens one at a time (a stop ends the block exactly where it occurs); the last emitted is the next `last`.
  private emit(tokens: number[], contextLength: number, logprobs?: TokenLogprob[]): void {
    const now = performance.now();
    if (this.firstTokenAt === 0) this.firstTokenAt = now;
    this.lastTokenAt = now;
    for (const [i, token] of tokens.entries()) {
      // A token the output keeps (not a stop token, not past the end) gets its entry, reported before its text.
      if (logprobs && !this.output.finished && !this.output.stopTokenIds.has(token)) {
        this.logprobs.push(logprobs[i]);
        this.request.onLogprobs?.([logprobs[i]]);
      }
      if (!this.output.push(token)) return;
      this.last = token;
    }
    if (this.committed + 1 >= contextLength) this.output.end('context_full');
  }

  /** The caller's result; `reason` overrides when the engine ended the job (abort, timeout). */
  result(reason?: EngineFinishReason): EngineResult {
    this.output.flush();
    const ended = this.lastTokenAt || performance.now();
    const generated = this.output.tokenIds.length;
    const predictedMs = generated > 1 ? ended - this.firstTokenAt : 0;
    const finish = this.output.finishReason;
    const finishReason: EngineFinishReason =
      reason ?? (finish === 'length' ? 'length' : finish === 'context_full' ? 'context_full' : finish === 'abort' ? 'abort' : 'stop');
    return {
      text: this.output.text,
      tokenIds: this.output.tokenIds.slice(),
      ...(this.request.logprobs !== undefined ? { logprobs: this.logprobs.slice(0, this.output.tokenIds.length) } : {}),
      promptTokens: this.request.promptIds.length,
      finishReason,
      timings: {
        promptN: this.request.promptIds.length - this.reused,
        promptMs: this.firstTokenAt > 0 ? this.firstTokenAt - this.admittedAt : 0,
        predictedN: generated,
        predictedMs,
        predictedPerSecond: predictedMs > 0 ? ((generated - 1) * 1000) / predictedMs : 0,
        draftN: this.draftN,
        draftNAccepted: this.draftAccepted,
        queuedMs: (this.admittedAt || performance.now()) - this.submittedAt,
      },
    };
  }
}
