// Full-depth logits rows of a token window from a LayerSkipModel, a chunk of rows at a time, for evaluations that
// need whole distributions rather than the native per-layer sums (scoreExitLayers).
//
// LayerSkipModel has no public method that returns logits rows, so this module is the one place that reaches its
// native context, generation queue and cached sequence (TypeScript's element access to private members). It keeps
// the model's own discipline: the work runs after any generation in progress and leaves the cache empty, as
// scoreExitLayers does.
import type { LayerSkipModel } from '../model.js';
import type { NativeContext } from '../native.js';

/** Logits rows per evaluate(): the maxLogitRows a LayerSkipModel's context is created with (binding default). */
export const LOGIT_ROWS_PER_CHUNK = 64;

/**
 * Runs `work` with the model's native context once any generation in progress has finished, holding the model's
 * queue until it settles; the cache is empty afterwards.
 */
export function withModelContext<T>(model: LayerSkipModel, work: (context: NativeContext) => Promise<T>): Promise<T> {
  return model['enqueue'](async () => {
    const context = model['context'];
    if (!context) throw new Error(`${model.info.dir}: the model has been disposed`);
    try {
      return await work(context);
    } finally {
      model['sequence'].truncate(0);
    }
  });
}

/**
 * Feeds `tokens` through every layer at the context's current position and returns their logits,
 * (tokens.length, vocab) row-major. At most LOGIT_ROWS_PER_CHUNK tokens.
 */
export async function logitsRows(context: NativeContext, tokens: Int32Array): Promise<Float32Array> {
  if (tokens.length < 1 || tokens.length > LOGIT_ROWS_PER_CHUNK) {
    throw new RangeError(`logitsRows takes 1 to ${LOGIT_ROWS_PER_CHUNK} tokens, got ${tokens.length}`);
  }
  await context.evaluate(tokens, { logitRows: tokens.length });
  return context.readLogits(tokens.length);
}
