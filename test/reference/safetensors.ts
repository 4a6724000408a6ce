// The reference model reads checkpoints with the package's TypeScript safetensors reader
// (lib/training/safetensors-io.ts), which shares no code with the C++ loader it is compared against: BF16 / F16 /
// F32 widened exactly to Float32Array, single files or shards listed by model.safetensors.index.json.
export type { NamedTensor as ReferenceTensor } from '../../lib/training/safetensors-io.js';
export { readCheckpointTensors, readSafetensors as readSafetensorsFile } from '../../lib/training/safetensors-io.js';
