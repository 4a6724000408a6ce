// The generation driver: prompt → prefill → a decoding strategy → text, with stop tokens, stop strings, length
// limits, cancellation, streaming text and statistics. Strategies only produce token ids; this file decides when
// to stop and what the caller sees.
import type { LlamaTokenizer } from '../tokenizer.js';
import { decodeAutoregressive, type EmitTokens } from './autoregressive.js';
import type { ResolvedOptions } from './options.js';
import { Random } from './random.js';
import { decodeSelfSpeculative, newSpeculationCounters } from './self-speculative.js';
import { GREEDY, type Sampling, type Sequence } from './sequence.js';
import { processingActive, type TokenLogprob } from './logits-processing.js';
import { GenerationOutput, type FinishReason } from './output.js';
import { decodeProcessedAutoregressive, decodeProcessedSelfSpeculative, pickAfterPrefill } from './processed-decoding.js';

export type { FinishReason } from './output.js';

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens whose cache entries were reused from the previous generation. */
  reusedPromptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  /** Evaluated prompt tokens per second of prefill. */
  prefillTokensPerSecond: number;
  /** Generated tokens (after the first, which prefill produces) per second of decoding. */
  decodeTokensPerSecond: number;
  /** Generated tokens per second of the whole generation, prefill included. */
  tokensPerSecond: number;
  generationStrategy: string;
  /** Layers the strategy exits at (= numLayers for plain decoding). */
  exitLayer: number;
  numLayers: number;
  device: string;
  /** Self-speculative counters (all 0 for autoregressive): drafts verified, drafts accepted, their ratio. */
  drafted: number;
  accepted: number;
  acceptanceRate: number;
  verifySteps: number;
  /** tokensPerVerifyStep[n]: verify steps that yielded n tokens (accepted drafts + the verifier's token). */
  tokensPerVerifyStep: number[];
  /** Time spent drafting (layers [0, E) + head) and verifying (layers [E, L) + head over the drafts). */
  draftMs: number;
  verifyMs: number;
}

export interface GenerationResult {
  /** With the logprobs option: each generated token's log-probability and its top alternatives. */
  logprobs?: TokenLogprob[];
  text: string;
  tokenIds: number[];
  promptTokenIds: number[];
  finishReason: FinishReason;
  stats: GenerationStats;
}

export interface GenerationJob {
  sequence: Sequence;
  /** Absent for checkpoints without tokenizer files: the result then has token ids and empty text. */
  tokenizer?: LlamaTokenizer;
  promptIds: number[];
  options: ResolvedOptions;
  device: string;
  /** Called with each piece of text as soon as it is final. */
  onText?: (piece: string) => void;
}

export async function runGeneration(job: GenerationJob): Promise<GenerationResult> {
  const { sequence, tokenizer, promptIds, options } = job;
  const sampling: Sampling = { temperature: options.temperature, topK: options.topK, topP: options.topP };
  const random = new Random(options.seed);
  const output = new GenerationOutput(tokenizer, options.stopTokenIds, options.stopStrings, options.maxSteps, job.onText);
  const generated = output.tokenIds;

  const counters = newSpeculationCounters();
  const started = performance.now();
  let prefillEnded = started;
  let reused = 0;
  const stats = (): GenerationStats => {
    const ended = performance.now();
    const prefillMs = prefillEnded - started;
    const decodeMs = ended - prefillEnded;
    const evaluated = promptIds.length - reused;
    return {
      promptTokens: promptIds.length,
      reusedPromptTokens: reused,
      generatedTokens: generated.length,
      prefillMs,
      decodeMs,
      totalMs: ended - started,
      prefillTokensPerSecond: prefillMs > 0 ? (evaluated * 1000) / prefillMs : 0,
      decodeTokensPerSecond: decodeMs > 0 && generated.length > 1 ? ((generated.length - 1) * 1000) / decodeMs : 0,
      generationStrategy: options.generationStrategy,
      exitLayer: options.exitLayer,
      numLayers: sequence.numLayers,
      device: job.device,
      tokensPerSecond: ended > started ? (generated.length * 1000) / (ended - started) : 0,
      drafted: counters.drafted,
      accepted: counters.accepted,
      acceptanceRate: counters.drafted > 0 ? counters.accepted / counters.drafted : 0,
      verifySteps: counters.verifySteps,
      tokensPerVerifyStep: Array.from(counters.emittedPerStep, (count) => count ?? 0),
      draftMs: counters.draftMs,
      verifyMs: counters.verifyMs,
    };
  };

  // Decides, token by token, whether generation goes on.
  const emit: EmitTokens = (tokens) => {
    for (const token of tokens) if (!output.push(token)) return false;
    if (options.signal?.aborted) return output.end('abort');
    if (sequence.length + 1 >= sequence.contextLength) return output.end('context_full');
    return true;
  };

  const logprobs: TokenLogprob[] = [];
  if (options.maxSteps > 0 && !options.signal?.aborted) {
    const prefillLayers = options.generationStrategy === 'autoregressive' ? options.exitLayer : sequence.numLayers;
    // Logits processing and logprobs pick in TypeScript from rows read back (processed-decoding.ts); the engine
    // then runs greedily.
    const processed = processingActive(options);
    const pickFirst = processed ? GREEDY : sampling;
    const first = await sequence.prefill(promptIds, prefillLayers, pickFirst, random, options.signal, options.reusePromptCache);
    prefillEnded = performance.now();
    const speculation = {
      exitLayer: options.exitLayer,
      numSpeculations: options.numSpeculations,
      draftConfidence: options.draftConfidence,
      stopTokenIds: options.stopTokenIds,
      tokensLeft: () => options.maxSteps - generated.length,
      onSpeculation: options.onSpeculation,
    };
    if (first === undefined) {
      output.end('abort');
    } else if (processed) {
      reused = first.reused;
      const settings = { ...speculation, processing: { ...sampling, ...options }, vocabSize: options.vocabSize, logprobs: options.logprobs };
      const token = pickAfterPrefill(sequence, settings, random, logprobs);
      if (options.generationStrategy === 'autoregressive') {
        await decodeProcessedAutoregressive(sequence, token, options.exitLayer, settings, random, emit, logprobs);
      } else {
        await decodeProcessedSelfSpeculative(sequence, token, settings, random, emit, counters, logprobs);
      }
    } else if (options.generationStrategy === 'autoregressive') {
      reused = first.reused;
      await decodeAutoregressive(sequence, first, options.exitLayer, sampling, random, emit);
    } else {
      reused = first.reused;
      await decodeSelfSpeculative(sequence, first, { ...speculation, sampling }, random, emit, counters);
    }
  } else if (options.signal?.aborted) {
    output.end('abort');
  }
  output.flush();
  const finishReason: FinishReason = output.finishReason ?? 'length';
  const result: GenerationResult = { text: output.text, tokenIds: generated, promptTokenIds: promptIds, finishReason, stats: stats() };
  // One entry per generated token (a stop token's, picked but not output, is dropped).
  if (options.logprobs > 0) result.logprobs = logprobs.slice(0, generated.length);
  return result;
}
