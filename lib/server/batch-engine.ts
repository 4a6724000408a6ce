// BatchEngine: continuous batching over one model. `parallel` slots, each a context (KV cache) of its own; every
// engine step is one native forward (NativeBatch.step) over the items of all running requests — prefill chunks,
// decode tokens, self-speculative drafts and verifications — and requests join and leave between steps.
//
// A step is one of two kinds:
//   draft step  only the requests in a speculation round, each running one draft pass (layers [0, E) + head);
//   full step   everyone else: prefill chunks, plain decode tokens, and the verification of finished drafts.
// Rounds are aligned (all speculating requests draft together, then verify in the next full step), so a full
// step reads the weights once for every request. speculation-policy.ts decides per round whether speculating
// beats plain decoding for the batch as it is.
import type { LayerSkipModel } from '../model.js';
import type { NativeBatch, NativeBatchItem, NativeBatchResult } from '../native.js';
import {
  MAX_NUM_SPECULATIONS,
  QueueFullError,
  type Engine,
  type EngineFinishReason,
  type EngineObserver,
  type EngineRequest,
  type EngineResult,
  type EngineState,
} from './engine-api.js';
import { EngineJob, type Slot } from './engine-job.js';
import { speculationPays, StepCosts } from './speculation-policy.js';

export interface BatchEngineOptions {
  /** Sequences decoded together (slots, each with its own KV cache). */
  parallel: number;
  /** Requests waiting for a slot beyond which submit() throws QueueFullError. */
  queueLimit: number;
  /** A request running longer than this ends with finish reason 'timeout' (0 = no limit). */
  requestTimeoutMs: number;
  /** KV cache positions per slot (default: the model's context length). */
  contextLength?: number;
  /** 'adaptive' (default): speculate only when it raises throughput; 'always': every self_speculative request. */
  speculation?: 'adaptive' | 'always';
  /** Prompt tokens evaluated per step while other requests decode (their latency bound); default 64. */
  prefillChunk?: number;
  observer?: EngineObserver;
}

export class BatchEngine implements Engine {
  readonly contextLength: number;
  readonly numLayers: number;
  private readonly slots: Slot[];
  private readonly queue: EngineJob[] = [];
  private readonly costs = new StepCosts();
  private readonly acceptanceByExit = new Map<number, number>();
  private wake: (() => void) | undefined;
  private loop: Promise<void>;
  private closing = false;
  private closed = false;

  private constructor(
    private readonly model: LayerSkipModel,
    private readonly batch: NativeBatch,
    contexts: BatchResources['contexts'],
    private readonly options: Required<Omit<BatchEngineOptions, 'observer' | 'contextLength'>> & BatchEngineOptions,
  ) {
    this.contextLength = contexts[0].contextLength();
    this.numLayers = model.info.numLayers;
    this.slots = contexts.map((context, index) => ({ index, context, cachedTokens: [], cachedLayers: 0 }));
    this.loop = this.run();
  }

  static async create(model: LayerSkipModel, options: BatchEngineOptions): Promise<BatchEngine> {
    const { parallel, queueLimit, requestTimeoutMs } = options;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256) throw new RangeError(`parallel must be an integer in [1, 256], got ${parallel}`);
    if (!Number.isInteger(queueLimit) || queueLimit < 0) throw new RangeError(`queueLimit must be an integer ≥ 0, got ${queueLimit}`);
    if (!(requestTimeoutMs >= 0)) throw new RangeError(`requestTimeoutMs must be ≥ 0, got ${requestTimeoutMs}`);
    const prefillChunk = options.prefillChunk ?? 64;
    const perStep = parallel * (MAX_NUM_SPECULATIONS + 1);
    const resources = model.createBatchResources(parallel, {
      contextLength: options.contextLength ?? model.info.contextLength,
      maxRows: Math.max(256, perStep + prefillChunk),
      maxLogitRows: perStep,
    });
    return new BatchEngine(model, resources.batch, resources.contexts, {
      speculation: 'adaptive',
      prefillChunk,
      ...options,
    });
  }

  submit(request: EngineRequest): Promise<EngineResult> {
    if (this.closing) return Promise.reject(new Error('the server is shutting down'));
    if (request.promptIds.length === 0) return Promise.reject(new RangeError('the prompt is empty'));
    if (request.promptIds.length >= this.contextLength) {
      return Promise.reject(new RangeError(`the prompt has ${request.promptIds.length} tokens; a slot holds ${this.contextLength}`));
    }
    // Requests not yet admitted count against the queue: admission happens between steps.
    const running = this.slots.filter((slot) => slot.job).length;
    if (running + this.queue.length >= this.slots.length + this.options.queueLimit) {
      return Promise.reject(new QueueFullError(Math.max(1, Math.ceil(this.queue.length / this.slots.length))));
    }
    return new Promise<EngineResult>((resolve, reject) => {
      const info = this.model.info;
      const stopTokenIds = request.stopTokenIds ?? (info.eosTokenIds.length > 0 ? info.eosTokenIds : (this.model.tokenizer?.eosTokenIds ?? []));
      const initialAcceptance = this.acceptanceByExit.get(request.strategy.exitLayer) ?? 0.7;
      const job = new EngineJob(request, this.model.tokenizer, stopTokenIds, this.numLayers, resolve, reject, initialAcceptance);
      this.queue.push(job);
      this.wake?.();
    });
  }

  state(): EngineState {
    const used = this.slots.reduce((sum, slot) => sum + (slot.job ? slot.job.committed : 0), 0);
    return {
      running: this.slots.filter((slot) => slot.job).length,
      queued: this.queue.length,
      slots: this.slots.length,
      kvCacheUsedPositions: used,
      kvCacheTotalPositions: this.slots.length * this.contextLength,
    };
  }

  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.resolve(job.result('abort'));
    const deadline = setTimeout(() => {
      this.closed = true;
      this.wake?.();
    }, deadlineMs);
    this.wake?.();
    await this.loop;
    clearTimeout(deadline);
    this.batch.dispose();
    for (const slot of this.slots) slot.context.dispose();
  }

  private get running(): EngineJob[] {
    return this.slots.flatMap((slot) => (slot.job ? [slot.job] : []));
  }

  // The engine loop: end what must end, admit, step, until closed and idle.
  private async run(): Promise<void> {
    while (true) {
      try {
        this.endExpired();
        this.admit();
        const jobs = this.running;
        if (jobs.length === 0) {
          if (this.closing) return;
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        await this.step(jobs);
      } catch (error) {
        // A bug in scheduling must not stall the server: fail the requests in flight, keep serving.
        for (const job of this.running) this.fail(job, error as Error);
      }
    }
  }

  private fail(job: EngineJob, error: Error): void {
    const slot = job.slot!;
    slot.context.truncate(0);
    slot.cachedTokens = [];
    slot.job = undefined;
    job.slot = undefined;
    job.reject(error);
  }

  // Queued requests take free slots: the slot whose cache shares the longest prefix with the prompt first.
  private admit(): void {
    while (this.queue.length > 0 && !this.closing) {
      const free = this.slots.filter((slot) => !slot.job);
      if (free.length === 0) return;
      const job = this.queue.shift()!;
      const prompt = job.request.promptIds;
      let best = free[0];
      let bestShared = -1;
      for (const slot of free) {
        const usable = slot.cachedLayers >= job.forwardLayers ? slot.cachedTokens : [];
        let shared = 0;
        const limit = Math.min(usable.length, prompt.length - 1);
        while (shared < limit && usable[shared] === prompt[shared]) shared++;
        if (shared > bestShared) [best, bestShared] = [slot, shared];
      }
      best.context.truncate(bestShared);
      best.cachedTokens = [];
      best.job = job;
      job.slot = best;
      job.admittedAt = performance.now();
      job.prefilled = job.reused = job.committed = bestShared;
      if (job.speculative) best.context.reserveSpeculation(job.request.strategy.numSpeculations);
    }
  }

  // Aborted, timed-out and (when closing past the deadline) every remaining request end between steps.
  private endExpired(): void {
    const now = performance.now();
    for (const job of this.running) {
      let reason: EngineFinishReason | undefined;
      if (job.request.signal?.aborted || this.closed) reason = 'abort';
      else if (this.options.requestTimeoutMs > 0 && now - job.admittedAt > this.options.requestTimeoutMs) reason = 'timeout';
      if (reason) this.finish(job, reason);
    }
  }

  private finish(job: EngineJob, reason?: EngineFinishReason): void {
    const slot = job.slot!;
    // The cache keeps what every layer holds: the prompt and the tokens evaluated after it.
    slot.context.truncate(job.committed);
    slot.cachedTokens = [...job.request.promptIds, ...job.output.tokenIds].slice(0, job.committed);
    slot.cachedLayers = job.forwardLayers;
    slot.job = undefined;
    job.slot = undefined;
    const result = job.result(reason);
    this.options.observer?.onFinish?.(result);
    job.resolve(result);
  }

  private async step(jobs: EngineJob[]): Promise<void> {
    const drafting = jobs.filter((job) => job.speculating && !job.draftingDone);
    if (drafting.length === 0) this.startRound(jobs);
    const draftStep = jobs.some((job) => job.speculating && !job.draftingDone);
    const planned = draftStep ? this.planDraftStep(jobs) : this.planFullStep(jobs);
    const started = performance.now();
    let results: NativeBatchResult[];
    try {
      results = await this.batch.step(planned.map((entry) => entry.item));
    } catch (error) {
      // A failed step leaves its jobs' caches in an unknown state: end them with the error, keep serving others.
      for (const { job } of planned) this.fail(job, error as Error);
      return;
    }
    const ms = performance.now() - started;
    const rows = planned.reduce((sum, entry) => sum + rowsOf(entry.item), 0);
    const decodeOnly = planned.every((entry) => entry.kind !== 'prefill');
    if (draftStep) this.costs.record('draft', planned.length, ms);
    else if (decodeOnly) this.costs.record('full', rows, ms);
    this.options.observer?.onStep?.({ rows, sequences: planned.length, ms });
    planned.forEach((entry, i) => this.apply(entry, results[i]));
  }

  // A round starts when no request is mid-round: the greedy speculative requests in decode all speculate or none.
  private startRound(jobs: EngineJob[]): void {
    const decoding = jobs.filter((job) => !job.prefilling && !job.output.finished);
    const candidates = decoding.filter((job) => job.speculative && job.maxDrafts(this.contextLength) > 0);
    if (candidates.length === 0) return;
    const pays =
      this.options.speculation === 'always' ||
      speculationPays(
        this.costs,
        candidates.map((job) => ({ drafts: job.maxDrafts(this.contextLength), acceptance: job.acceptance })),
        decoding.length - candidates.length,
      );
    // A sampled request always speculates: which tokens it draws depends on whether a round speculates, and a seed
    // must give the same text whatever else the server is doing. Greedy output does not depend on it.
    for (const job of candidates) {
      if (pays || job.exploring || job.sampled) job.speculating = true;
      else job.roundsWithoutSpeculation++;
    }
  }

  private planDraftStep(jobs: EngineJob[]): PlannedItem[] {
    return jobs.filter((job) => job.speculating && !job.draftingDone).map((job) => ({ job, kind: 'draft', item: job.draftItem() }));
  }

  private planFullStep(jobs: EngineJob[]): PlannedItem[] {
    const planned: PlannedItem[] = [];
    for (const job of jobs) {
      if (job.prefilling) continue;
      planned.push(job.speculating ? { job, kind: 'verify', item: job.verifyItem() } : { job, kind: 'decode', item: job.decodeItem() });
    }
    // Prefill chunks fill the rows left; while others decode, at most prefillChunk tokens per step in all.
    const used = planned.reduce((sum, entry) => sum + rowsOf(entry.item), 0);
    let budget = planned.length > 0 ? Math.min(this.options.prefillChunk, this.batch.maxRows() - used) : this.batch.maxRows();
    for (const job of jobs) {
      if (!job.prefilling || budget <= 0) continue;
      const item = job.prefillItem(budget);
      budget -= rowsOf(item);
      planned.push({ job, kind: 'prefill', item });
    }
    return planned;
  }

  private apply(entry: PlannedItem, result: NativeBatchResult): void {
    const { job, item } = entry;
    const hadFirstToken = job.firstTokenAt > 0;
    const lastTokenAt = job.lastTokenAt;
    const generatedBefore = job.output.tokenIds.length;
    switch (entry.kind) {
      case 'prefill':
        job.afterPrefill(rowsOf(item), result, this.contextLength);
        break;
      case 'decode':
        job.afterDecode(result, this.contextLength);
        break;
      case 'draft':
        job.afterDraft(result, this.contextLength, job.output.stopTokenIds);
        break;
      case 'verify': {
        const { drafted, accepted } = job.afterVerify(result, this.contextLength);
        this.options.observer?.onSpeculation?.(drafted, accepted);
        const exit = job.request.strategy.exitLayer;
        if (drafted > 0) this.acceptanceByExit.set(exit, 0.9 * (this.acceptanceByExit.get(exit) ?? 0.7) + 0.1 * (accepted / drafted));
        break;
      }
    }
    const observer = this.options.observer;
    const emitted = job.output.tokenIds.length - generatedBefore;
    if (observer && emitted > 0) {
      if (!hadFirstToken) observer.onFirstToken?.(job.firstTokenAt - job.admittedAt);
      else for (let i = 0; i < emitted; i++) observer.onToken?.((job.lastTokenAt - lastTokenAt) / emitted);
    }
    if (job.output.finished) this.finish(job);
  }
}

type BatchResources = ReturnType<LayerSkipModel['createBatchResources']>;

interface PlannedItem {
  job: EngineJob;
  kind: 'prefill' | 'decode' | 'draft' | 'verify';
  item: NativeBatchItem;
}

// Rows an item adds to the step's widest layer.
function rowsOf(item: NativeBatchItem): number {
  if (item.kind === 'forward') return item.tokens.length;
  if (item.kind === 'verify') return item.draftCount + 1;
  return 1;
}
