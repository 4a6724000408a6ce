// Public entry point of the layerskip package.
export {
  loadModel,
  LayerSkipModel,
  cpuInfo,
  CPU_KERNEL_NAMES,
  type CpuKernelsName,
  QUANT_TYPES,
  type QuantType,
  type LoadOptions,
  type ModelInfo,
  type Device,
} from './model.js';
export type { NativeCpuInfo as CpuInfo, NativeCpuKernels as CpuKernelsInfo } from './native.js';
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
  type PassCosts,
} from './eval/exit-layer-eval.js';
export { compareToReference, type ReferenceComparison, type ReferenceComparisonOptions } from './eval/reference-eval.js';
export { quantizeModel, quantizationConfig, type QuantizeOptions, type QuantizeReport } from './quantize.js';
export { trainModel, type TrainEvent, type TrainResult, type ExitEvaluation } from './training/train.js';
export { DEFAULT_TRAIN_OPTIONS, type TrainOptions, type ModelShape } from './training/train-options.js';
export { trainBpeTokenizer, tokenizerConfigFor, writeTokenizerFiles } from './training/bpe-trainer.js';
