// Autoregressive decoding: one token per forward pass. With exitLayer E < L this is LayerSkip's early-exit
// decoding — layers [0, E), then the model's own final norm and LM head.
import type { Random } from './random.js';
import type { PickedToken, Sampling, Sequence } from './sequence.js';

/** Receives generated tokens; returns false when generation should end. */
export type EmitTokens = (tokens: number[]) => boolean;

export async function decodeAutoregressive(
  sequence: Sequence,
  first: PickedToken,
  exitLayer: number,
  sampling: Sampling,
  random: Random,
  emit: EmitTokens,
): Promise<void> {
  let next = first;
  while (emit([next.token])) {
    next = await sequence.decodeOne(next.token, exitLayer, sampling, random);
  }
}
