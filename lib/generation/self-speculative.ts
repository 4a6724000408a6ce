// Self-speculative decoding (LayerSkip, Elhoushi et al. 2024): the first E layers of the model draft k tokens,
// the remaining layers verify them in one pass, sharing one KV cache and the drafts' layer-E hidden states (the
// exit cache, kept natively). One step, as the issue states it:
//   1. Draft: from the last emitted token x, run layers [0, E) + final norm + LM head one token at a time, up to k
//      times (stop early at a stop token, the length limit, or a proposal below draftConfidence).
//   2. Verify: the last draft through [0, E), then layers [E, L) once over [x, d1 … dj] from the exit cache.
//   3. Accept: greedy, the drafts equal to the verifier's argmax; sampling, d_i with probability
//      min(1, p_verify(d_i) / p_draft(d_i)). Then the verifier's token at the first rejection (native draws it from
//      normalize(max(0, p_verify − p_draft))) or the bonus token when all are accepted.
//   4. Roll back: truncate every layer to x + the accepted drafts; the emitted correction/bonus token is the next
//      step's x.
import type { EmitTokens } from './autoregressive.js';
import type { Random } from './random.js';
import type { PickedToken, Sampling, Sequence } from './sequence.js';

/** What a speculative streamer sees: each proposal as it is drafted, then how many of the step's drafts survived. */
export type SpeculationEvent = { type: 'draft'; token: number } | { type: 'verify'; drafts: number[]; accepted: number };
/** May be async: its promise is awaited before the step goes on, and a rejection fails the generation as a throw does. */
export type SpeculationListener = (event: SpeculationEvent) => void | Promise<void>;

export interface SelfSpeculativeSettings {
  exitLayer: number;
  numSpeculations: number;
  /** Stop drafting when the draft's top probability falls below this (0 = always draft k). */
  draftConfidence: number;
  sampling: Sampling;
  stopTokenIds: ReadonlySet<number>;
  /** Tokens the driver will still take; drafting past them is wasted work. */
  tokensLeft: () => number;
  onSpeculation?: SpeculationListener;
}

/** Tells onSpeculation about `event`, waiting for it when it returned a promise (see SpeculationListener). */
async function notify(settings: SelfSpeculativeSettings, event: SpeculationEvent): Promise<void> {
  const pending = settings.onSpeculation?.(event);
  if (pending && typeof pending.then === 'function') await pending;
}

/** Counters every self-speculative generation reports. */
export interface SpeculationCounters {
  drafted: number;
  accepted: number;
  verifySteps: number;
  /** emittedPerStep[n]: verify steps that yielded n tokens (accepted drafts + 1). */
  emittedPerStep: number[];
  draftMs: number;
  verifyMs: number;
}

export function newSpeculationCounters(): SpeculationCounters {
  return { drafted: 0, accepted: 0, verifySteps: 0, emittedPerStep: [], draftMs: 0, verifyMs: 0 };
}

export async function decodeSelfSpeculative(
  sequence: Sequence,
  first: PickedToken,
  settings: SelfSpeculativeSettings,
  random: Random,
  emit: EmitTokens,
  counters: SpeculationCounters,
): Promise<void> {
  sequence.native.reserveSpeculation(settings.numSpeculations);
  let last: number | undefined = first.token;
  if (!emit([last])) return;
  while (last !== undefined) last = await selfSpeculativeStep(sequence, last, settings, random, emit, counters);
}

/**
 * One draft → verify → accept → roll back step from the emitted, not yet evaluated token `last` at position
 * n = sequence.length. Returns the next step's `last`, or undefined when `emit` ended generation.
 */
export async function selfSpeculativeStep(
  sequence: Sequence,
  last: number,
  settings: SelfSpeculativeSettings,
  random: Random,
  emit: EmitTokens,
  counters: SpeculationCounters,
): Promise<number | undefined> {
  const { exitLayer, sampling } = settings;
  const native = sequence.native;
  const sampled = sampling.temperature > 0;
  // Positions n … n + drafts must fit the context; the step yields drafts + 1 tokens at most.
  const room = Math.min(sequence.contextLength - 1 - sequence.length, settings.tokensLeft() - 1);
  const maxDrafts = Math.max(0, Math.min(settings.numSpeculations, room));

  // 1. Draft: each pass runs one token through [0, E) into the exit cache and proposes the next — the whole run in
  //    one native call (per-call overhead is a large share of a small model's draft pass).
  const draftStarted = performance.now();
  const run = await native.draftRun(last, {
    exitLayer,
    ...sampling,
    maxDrafts,
    draftConfidence: settings.draftConfidence,
    stopTokenIds: Int32Array.from(settings.stopTokenIds),
    uniforms: sampled ? random.uniforms(Math.max(1, maxDrafts)) : undefined,
  });
  const drafts = Array.from(run.tokens);
  for (const token of drafts) await notify(settings, { type: 'draft', token });

  // 2. Verify: layers [E, L) once over [x, d1 … dj].
  const verifyStarted = performance.now();
  const uniforms = sampled ? random.uniforms(drafts.length + 1) : undefined;
  const verdict = await native.verify(drafts.length, { ...sampling, uniforms });
  const verifyEnded = performance.now();

  // 3. Accept the longest agreeing prefix (u < p_v/p_d is "with probability min(1, p_v/p_d)"; p_d > 0 for a drawn
  //    draft), then the verifier's token at the first rejection, or the bonus token.
  let accepted = 0;
  while (accepted < drafts.length) {
    const agrees = sampled
      ? random.next() < verdict.verifyProbabilities[accepted] / verdict.draftProbabilities[accepted]
      : verdict.tokens[accepted] === drafts[accepted];
    if (!agrees) break;
    accepted++;
  }
  const block = [...drafts.slice(0, accepted), verdict.tokens[accepted]];
  await notify(settings, { type: 'verify', drafts, accepted });
  record(counters, drafts.length, accepted, verifyStarted - draftStarted, verifyEnded - verifyStarted);

  // 4. Roll back to x + the accepted drafts. The block's last token is emitted but not evaluated (the next
  //    step's x); emitting one token at a time makes a stop end the block exactly where it occurs.
  sequence.tokens.push(last);
  let emitted = 0;
  while (emitted < block.length && emit([block[emitted]])) {
    emitted++;
    if (emitted < block.length) sequence.tokens.push(block[emitted - 1]);
  }
  sequence.truncate(sequence.length);
  return emitted === block.length ? block[block.length - 1] : undefined;
}

function record(counters: SpeculationCounters, drafted: number, accepted: number, draftMs: number, verifyMs: number) {
  counters.drafted += drafted;
  counters.accepted += accepted;
  counters.verifySteps++;
  counters.emittedPerStep[accepted + 1] = (counters.emittedPerStep[accepted + 1] ?? 0) + 1;
  counters.draftMs += draftMs;
  counters.verifyMs += verifyMs;
}
