// Decoding with logits processing (repetition penalty, no-repeat n-grams, min-p) or per-token logprobs: the engine
// runs its forward passes greedily, and every pick is made here from the logits row read back, processed with the
// tokens before its position (logits-processing.ts). Self-speculative steps do the same for each draft pass and each
// verification row, and speculative sampling's acceptance rule runs on the processed distributions, so greedy output
// equals plain decoding's and sampling draws from its distribution, as without processing. Slower than the native
// path (a logits row crosses to JavaScript per pick), so generate.ts takes it only when these options are on.
import type { EmitTokens } from './autoregressive.js';
import {
  applyProcessors,
  argmax,
  draw,
  logSoftmax,
  samplingDistribution,
  tokenLogprob,
  type ProcessingOptions,
  type TokenLogprob,
} from './logits-processing.js';
import type { Random } from './random.js';
import type { SpeculationCounters, SpeculationEvent } from './self-speculative.js';
import { GREEDY, type Sequence } from './sequence.js';

export interface ProcessedSettings {
  processing: ProcessingOptions;
  vocabSize: number;
  /** Alternatives reported per generated token (0 = no logprobs). */
  logprobs: number;
  exitLayer: number;
  numSpeculations: number;
  draftConfidence: number;
  stopTokenIds: ReadonlySet<number>;
  tokensLeft: () => number;
  onSpeculation?: (event: SpeculationEvent) => void | Promise<void>;
}

// A pick from one processed row: the token and, when asked, its logprobs.
function pick(row: Float32Array, context: readonly number[], settings: ProcessedSettings, random: Random) {
  applyProcessors(row, context, settings.processing);
  const distribution = samplingDistribution(row, settings.processing);
  const token = settings.processing.temperature > 0 ? draw(distribution, random.next()) : argmax(row);
  return { token, distribution, row };
}

function logprobOf(row: Float32Array, token: number, settings: ProcessedSettings): TokenLogprob | undefined {
  return settings.logprobs > 0 ? tokenLogprob(logSoftmax(row), token, settings.logprobs) : undefined;
}

/** The first token after a prefilled prompt (the engine's last logits row is the prompt's last position). */
export function pickAfterPrefill(sequence: Sequence, settings: ProcessedSettings, random: Random, logprobs: TokenLogprob[]): number {
  const chosen = pick(sequence.native.readLogits(1), sequence.tokens, settings, random);
  const logprob = logprobOf(chosen.row, chosen.token, settings);
  if (logprob) logprobs.push(logprob);
  return chosen.token;
}

export async function decodeProcessedAutoregressive(
  sequence: Sequence,
  first: number,
  layerEnd: number,
  settings: ProcessedSettings,
  random: Random,
  emit: EmitTokens,
  logprobs: TokenLogprob[],
): Promise<void> {
  let next = first;
  while (emit([next])) {
    await sequence.decodeOne(next, layerEnd, GREEDY, random);
    const chosen = pick(sequence.native.readLogits(1), sequence.tokens, settings, random);
    const logprob = logprobOf(chosen.row, chosen.token, settings);
    if (logprob) logprobs.push(logprob);
    next = chosen.token;
  }
}

export async function decodeProcessedSelfSpeculative(
  sequence: Sequence,
  first: number,
  settings: ProcessedSettings,
  random: Random,
  emit: EmitTokens,
  counters: SpeculationCounters,
  logprobs: TokenLogprob[],
): Promise<void> {
  // Verification reads all its rows back at once: at most the logits buffer's 64.
  sequence.native.reserveSpeculation(Math.min(settings.numSpeculations, 63));
  let last: number | undefined = first;
  if (!emit([last])) return;
  while (last !== undefined) last = await processedStep(sequence, last, settings, random, emit, counters, logprobs);
}

async function processedStep(
  sequence: Sequence,
  last: number,
  settings: ProcessedSettings,
  random: Random,
  emit: EmitTokens,
  counters: SpeculationCounters,
  logprobs: TokenLogprob[],
): Promise<number | undefined> {
  const native = sequence.native;
  const sampled = settings.processing.temperature > 0;
  const vocab = settings.vocabSize;
  const room = Math.min(sequence.contextLength - 1 - sequence.length, settings.tokensLeft() - 1);
  const maxDrafts = Math.max(0, Math.min(settings.numSpeculations, 63, room));
  const context = [...sequence.tokens, last];

  // 1. Draft: one pass at a time, each pick made from its processed row (the engine continues from that pick).
  const draftStarted = performance.now();
  const drafts: number[] = [];
  const draftDistributions: Float64Array[] = [];
  for (let pass = 0; ; pass++) {
    await native.draft(pass === 0 ? last : drafts[pass - 1], { exitLayer: settings.exitLayer, ...GREEDY });
    if (maxDrafts === 0) break; // no room to draft: verify(0) then decodes one token
    const chosen = pick(native.readLogits(1), [...context, ...drafts], settings, random);
    const confidence = sampled ? maxOf(chosen.distribution) : Math.exp(maxOf(logSoftmax(chosen.row)));
    if (confidence < settings.draftConfidence) break;
    native.replaceProposal(chosen.token);
    drafts.push(chosen.token);
    draftDistributions.push(chosen.distribution);
    await settings.onSpeculation?.({ type: 'draft', token: chosen.token });
    if (drafts.length === maxDrafts || settings.stopTokenIds.has(chosen.token)) break;
  }

  // 2. Verify: layers [E, L) over [x, d1 … dj]; every row processed with the tokens before its position.
  const verifyStarted = performance.now();
  await native.verify(drafts.length, GREEDY);
  const rows = native.readLogits(drafts.length + 1);
  const verifyEnded = performance.now();
  const rowAt = (i: number) => {
    const row = rows.slice(i * vocab, (i + 1) * vocab);
    applyProcessors(row, [...context, ...drafts.slice(0, i)], settings.processing);
    return row;
  };

  // 3. Accept (greedy: the processed argmax; sampling: u < p/q), then the correction or bonus token.
  const block: number[] = [];
  const blockRows: Float32Array[] = [];
  let accepted = 0;
  for (; ; accepted++) {
    const row = rowAt(accepted);
    const target = samplingDistribution(row, settings.processing);
    if (accepted === drafts.length) {
      block.push(sampled ? draw(target, random.next()) : argmax(row));
      blockRows.push(row);
      break;
    }
    const draft = drafts[accepted];
    const agrees = sampled ? random.next() < target[draft] / draftDistributions[accepted][draft] : argmax(row) === draft;
    if (!agrees) {
      block.push(sampled ? draw(residual(target, draftDistributions[accepted]), random.next()) : argmax(row));
      blockRows.push(row);
      break;
    }
    block.push(draft);
    blockRows.push(row);
  }
  await settings.onSpeculation?.({ type: 'verify', drafts, accepted });
  counters.drafted += drafts.length;
  counters.accepted += accepted;
  counters.verifySteps++;
  counters.emittedPerStep[accepted + 1] = (counters.emittedPerStep[accepted + 1] ?? 0) + 1;
  counters.draftMs += verifyStarted - draftStarted;
  counters.verifyMs += verifyEnded - verifyStarted;

  // 4. Roll back to x + the accepted drafts and emit the block one token at a time.
  sequence.tokens.push(last);
  let emitted = 0;
  while (emitted < block.length) {
    const logprob = logprobOf(blockRows[emitted], block[emitted], settings);
    if (logprob) logprobs.push(logprob); // a stop token's entry is dropped by the caller with the token
    if (!emit([block[emitted]])) break;
    emitted++;
    if (emitted < block.length) sequence.tokens.push(block[emitted - 1]);
  }
  sequence.truncate(sequence.length);
  return emitted === block.length ? block[block.length - 1] : undefined;
}

// normalize(max(0, p − q)), or p when that has no mass (speculative sampling's correction distribution).
function residual(target: Float64Array, draft: Float64Array): Float64Array {
  const out = new Float64Array(target.length);
  let mass = 0;
  for (let i = 0; i < target.length; i++) mass += out[i] = Math.max(0, target[i] - draft[i]);
  if (mass <= 0) return target;
  for (let i = 0; i < out.length; i++) out[i] /= mass;
  return out;
}

function maxOf(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}
