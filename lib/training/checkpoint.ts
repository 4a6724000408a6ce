// Files a training run reads and writes:
//   out/config.json, model.safetensors, generation_config.json, tokenizer files — the HF checkpoint this engine
//     (and HF transformers) loads;
//   out/checkpoint/ — f32 weights, AdamW moments and trainer_state.json, for --resume. Written into
//     checkpoint.partial/ and renamed into place, so an interrupted save never damages the previous checkpoint.
import fs from 'node:fs';
import path from 'node:path';

import type { NativeTrainer } from '../native.js';
import type { NamedTensor, SafetensorsDtype } from './safetensors-io.js';
import { readCheckpointTensors, readSafetensors, writeSafetensors } from './safetensors-io.js';
import type { ModelShape } from './train-options.js';

export interface TokenIds {
  bos: number | null;
  eos: number[];
}

/** config.json of a LlamaForCausalLM with this shape. */
export function llamaConfigJson(shape: ModelShape, tokens: TokenIds, dtype: 'bf16' | 'f32'): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    hidden_act: 'silu',
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.hiddenSize / shape.numHeads,
    rms_norm_eps: 1e-5,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    max_position_embeddings: shape.contextLength,
    initializer_range: 0.02,
    pretraining_tp: 1,
    tie_word_embeddings: shape.tieWordEmbeddings,
    vocab_size: shape.vocabSize,
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos.length === 1 ? tokens.eos[0] : tokens.eos,
    torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
    use_cache: true,
  };
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** The trainer's flat state carved into named tensors (views, not copies). */
export function namedTensors(trainer: NativeTrainer, flat: Float32Array): NamedTensor[] {
  return trainer.tensors().map((t) => ({ name: t.name, shape: t.shape, data: flat.subarray(t.offset, t.offset + t.size) }));
}

/** Writes the HF checkpoint files (weights as `dtype`) into `dir`. */
export function exportModel(dir: string, trainer: NativeTrainer, config: Record<string, unknown>, dtype: 'bf16' | 'f32'): void {
  fs.mkdirSync(dir, { recursive: true });
  const parameters = trainer.getParameters();
  const format: SafetensorsDtype = dtype === 'bf16' ? 'BF16' : 'F32';
  writeSafetensors(path.join(dir, 'model.safetensors'), namedTensors(trainer, parameters), format);
  writeJson(path.join(dir, 'config.json'), { ...config, torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32' });
  writeJson(path.join(dir, 'generation_config.json'), {
    _from_model_config: true,
    bos_token_id: config.bos_token_id,
    eos_token_id: config.eos_token_id,
    do_sample: false,
  });
}

/** Copies named weights from an HF checkpoint into the trainer (continual pretraining / fine-tuning). */
export function loadInitialWeights(trainer: NativeTrainer, dir: string): void {
  const tensors = readCheckpointTensors(dir);
  const parameters = trainer.getParameters();
  for (const t of trainer.tensors()) {
    const source = tensors.get(t.name);
    if (!source) throw new Error(`${dir}: the checkpoint has no tensor ${t.name}`);
    if (source.data.length !== t.size || source.shape.join(',') !== t.shape.join(',')) {
      throw new Error(`${dir}: tensor ${t.name} has shape [${source.shape}], the model expects [${t.shape}]`);
    }
    parameters.set(source.data, t.offset);
  }
  trainer.setState({ parameters, step: 0 });
}

export interface TrainerStateFile {
  /** Steps completed. */
  step: number;
  tokensSeen: number;
  elapsedSeconds: number;
  /** The options the run started with (a resumed run keeps them). */
  options: unknown;
  config: Record<string, unknown>;
}

const CHECKPOINT = 'checkpoint';

/** Saves weights, moments and the run's state to out/checkpoint/. */
export function saveTrainingCheckpoint(out: string, trainer: NativeTrainer, state: TrainerStateFile): void {
  const partial = path.join(out, `${CHECKPOINT}.partial`);
  const final = path.join(out, CHECKPOINT);
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  const native = trainer.getState();
  writeSafetensors(path.join(partial, 'model.safetensors'), namedTensors(trainer, native.parameters), 'F32');
  const moments = [
    ...namedTensors(trainer, native.firstMoment).map((t) => ({ ...t, name: `first_moment.${t.name}` })),
    ...namedTensors(trainer, native.secondMoment).map((t) => ({ ...t, name: `second_moment.${t.name}` })),
  ];
  writeSafetensors(path.join(partial, 'optimizer.safetensors'), moments, 'F32');
  writeJson(path.join(partial, 'trainer_state.json'), { ...state, optimizerStep: native.step });
  const previous = path.join(out, `${CHECKPOINT}.previous`);
  fs.rmSync(previous, { recursive: true, force: true });
  if (fs.existsSync(final)) fs.renameSync(final, previous);
  fs.renameSync(partial, final);
  fs.rmSync(previous, { recursive: true, force: true });
}

export function readTrainerState(out: string): TrainerStateFile | null {
  const file = path.join(out, CHECKPOINT, 'trainer_state.json');
  if (!fs.existsSync(file)) return null;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TrainerStateFile;
}

/** Restores weights and AdamW moments from out/checkpoint/. */
export function loadTrainingCheckpoint(out: string, trainer: NativeTrainer): void {
  const dir = path.join(out, CHECKPOINT);
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8')) as { optimizerStep: number };
  const weights = readSafetensors(path.join(dir, 'model.safetensors'));
  const moments = readSafetensors(path.join(dir, 'optimizer.safetensors'));
  const native = trainer.getState();
  for (const t of trainer.tensors()) {
    const pieces: [Float32Array, NamedTensor | undefined][] = [
      [native.parameters, weights.get(t.name)],
      [native.firstMoment, moments.get(`first_moment.${t.name}`)],
      [native.secondMoment, moments.get(`second_moment.${t.name}`)],
    ];
    for (const [flat, tensor] of pieces) {
      if (!tensor || tensor.data.length !== t.size) throw new Error(`${dir}: missing or misshapen tensor for ${t.name}`);
      flat.set(tensor.data, t.offset);
    }
  }
  trainer.setState({ ...native, step: state.optimizerStep });
}
