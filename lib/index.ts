// Public entry point of the layerskip package.
export { loadModel, LayerSkipModel, type LoadOptions, type ModelInfo, type Device } from './model.js';
export type { LoadProgressCallback } from './native.js';
export type { GenerationOptions, GenerationStrategy } from './generation/options.js';
export type { GenerationResult, GenerationStats, FinishReason } from './generation/generate.js';
export { LlamaTokenizer, StreamingDetokenizer } from './tokenizer.js';
export {
  evaluateExitLayers,
  recommendExitLayer,
  headCostRatio,
  measurePassCosts,
  type ExitLayerRow,
  type ExitLayerEvalOptions,
  type ExitLayerRecommendation,
} from './eval/exit-layer-eval.js';
