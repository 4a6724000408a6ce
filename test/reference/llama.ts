// The oracle: a plain-TypeScript LlamaForCausalLM forward, transcribed from HuggingFace's modeling_llama.py.
// Float64 arithmetic (weights widened exactly from BF16/F16/F32), naive loops, no KV cache: every call
// recomputes the whole sequence. Only for tiny checkpoints.
//
//   h = embed[tokens]
//   per layer: h += o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = rmsnorm(h, input_layernorm)
//              h += down_proj(silu(gate_proj(n)) * up_proj(n))                 n = rmsnorm(h, post_attention_layernorm)
//   logits = lm_head(rmsnorm(h, norm))      (lm_head = embed_tokens when tied)
// Early exit runs the first exitLayer layers, then the same final norm and head.

import fs from 'node:fs';
import path from 'node:path';
import { readQuantizedCheckpoint } from './quantized.js';
import { readCheckpointTensors, type ReferenceTensor } from './safetensors.js';

export interface ReferenceConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number } | null;
  tieWordEmbeddings: boolean;
}

interface ReferenceLayer {
  inputNorm: Float32Array; // (hidden,)
  qProj: Float32Array; // (heads * headDim, hidden)
  kProj: Float32Array; // (kvHeads * headDim, hidden)
  vProj: Float32Array; // (kvHeads * headDim, hidden)
  oProj: Float32Array; // (hidden, heads * headDim)
  postAttentionNorm: Float32Array; // (hidden,)
  gateProj: Float32Array; // (ffn, hidden)
  upProj: Float32Array; // (ffn, hidden)
  downProj: Float32Array; // (hidden, ffn)
}

export interface ReferenceModel {
  config: ReferenceConfig;
  embedTokens: Float32Array; // (vocab, hidden)
  layers: ReferenceLayer[];
  finalNorm: Float32Array; // (hidden,)
  lmHead: Float32Array; // (vocab, hidden), the embedding when tied
  invFreq: Float64Array; // (headDim / 2,) RoPE inverse frequencies after any llama3 scaling
}

export type RawConfig = Record<string, unknown>;

/** The config.json fields of a Llama checkpoint the forward pass needs (also the GGUF writer's shape). */
export function parseConfig(raw: RawConfig): ReferenceConfig {
  const num = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'number') throw new Error(`config.json: ${key} must be a number`);
    return value;
  };
  const numHeads = num('num_attention_heads');
  const scaling = raw.rope_scaling as Record<string, number | string> | null | undefined;
  let ropeScaling: ReferenceConfig['ropeScaling'] = null;
  const scalingType = scaling ? (scaling.rope_type ?? scaling.type) : undefined;
  if (scaling && scalingType !== 'default') {
    if (scalingType !== 'llama3') throw new Error(`config.json: rope_scaling type ${String(scalingType)} is not supported (only llama3)`);
    ropeScaling = {
      factor: scaling.factor as number,
      lowFreqFactor: scaling.low_freq_factor as number,
      highFreqFactor: scaling.high_freq_factor as number,
      originalMaxPositionEmbeddings: scaling.original_max_position_embeddings as number,
    };
  }
  return {
    vocabSize: num('vocab_size'),
    hiddenSize: num('hidden_size'),
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numHeads,
    numKvHeads: num('num_key_value_heads', numHeads),
    headDim: (raw.head_dim as number | null | undefined) ?? num('hidden_size') / numHeads,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeScaling,
    tieWordEmbeddings: (raw.tie_word_embeddings as boolean | undefined) ?? false,
  };
}

/** HF _compute_default_rope_parameters, then _compute_llama3_parameters when rope_scaling is llama3. */
export function ropeInverseFrequencies(config: ReferenceConfig): Float64Array {
  const half = config.headDim / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  const scaling = config.ropeScaling;
  if (!scaling) return invFreq;
  const lowFreqWavelen = scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor;
  const highFreqWavelen = scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / invFreq[i];
    const scaled = wavelen > lowFreqWavelen ? invFreq[i] / scaling.factor : invFreq[i];
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (isMedium) {
      const smooth = (scaling.originalMaxPositionEmbeddings / wavelen - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
      invFreq[i] = ((1 - smooth) * scaled) / scaling.factor + smooth * scaled;
    } else {
      invFreq[i] = scaled;
    }
  }
  return invFreq;
}

/** Loads config.json and the safetensors weights of a Llama checkpoint folder. */
export function loadReference(dir: string): ReferenceModel {
  const config = parseConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RawConfig);
  const quantization = (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RawConfig).quantization_config as
    | { format: string }
    | undefined;
  const tensors = quantization ? readQuantizedCheckpoint(dir, quantization.format) : readCheckpointTensors(dir);
  const { hiddenSize: hidden, intermediateSize: ffn, headDim, vocabSize } = config;
  const take = (name: string, shape: number[]): Float32Array => {
    const tensor: ReferenceTensor | undefined = tensors.get(name);
    if (!tensor) throw new Error(`${dir}: missing tensor ${name}`);
    if (tensor.shape.join(',') !== shape.join(',')) throw new Error(`${dir}: tensor ${name} has shape [${tensor.shape}], expected [${shape}]`);
    return tensor.data;
  };
  const qDim = config.numHeads * headDim;
  const kvDim = config.numKvHeads * headDim;
  const layers: ReferenceLayer[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const prefix = `model.layers.${i}`;
    layers.push({
      inputNorm: take(`${prefix}.input_layernorm.weight`, [hidden]),
      qProj: take(`${prefix}.self_attn.q_proj.weight`, [qDim, hidden]),
      kProj: take(`${prefix}.self_attn.k_proj.weight`, [kvDim, hidden]),
      vProj: take(`${prefix}.self_attn.v_proj.weight`, [kvDim, hidden]),
      oProj: take(`${prefix}.self_attn.o_proj.weight`, [hidden, qDim]),
      postAttentionNorm: take(`${prefix}.post_attention_layernorm.weight`, [hidden]),
      gateProj: take(`${prefix}.mlp.gate_proj.weight`, [ffn, hidden]),
      upProj: take(`${prefix}.mlp.up_proj.weight`, [ffn, hidden]),
      downProj: take(`${prefix}.mlp.down_proj.weight`, [hidden, ffn]),
    });
  }
  const embedTokens = take('model.embed_tokens.weight', [vocabSize, hidden]);
  const lmHead = config.tieWordEmbeddings && !tensors.has('lm_head.weight') ? embedTokens : take('lm_head.weight', [vocabSize, hidden]);
  return { config, embedTokens, layers, finalNorm: take('model.norm.weight', [hidden]), lmHead, invFreq: ropeInverseFrequencies(config) };
}

// --- ops (float64) ------------------------------------------------------------------------------

/** y = W x for row-major W (rows, cols). */
function matVec(weight: Float32Array, x: Float64Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) sum += weight[base + c] * x[c];
    y[r] = sum;
  }
  return y;
}

/** HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w. */
function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i] * x[i];
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * scale * weight[i];
  return out;
}

/** In-place rotate-half RoPE on each head of vec (numHeads * headDim,) at position pos. */
function applyRope(vec: Float64Array, numHeads: number, headDim: number, pos: number, invFreq: Float64Array): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = pos * invFreq[i];
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let h = 0; h < numHeads; h++) {
      const base = h * headDim;
      const first = vec[base + i];
      const second = vec[base + i + half];
      vec[base + i] = first * cos - second * sin;
      vec[base + i + half] = second * cos + first * sin;
    }
  }
}

const silu = (x: number) => x / (1 + Math.exp(-x));

/** Causal self-attention over all positions; returns (seq,) of (heads * headDim,) before o_proj. */
function attention(q: Float64Array[], k: Float64Array[], v: Float64Array[], config: ReferenceConfig): Float64Array[] {
  const { numHeads, numKvHeads, headDim } = config;
  const groupSize = numHeads / numKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  return q.map((query, pos) => {
    const out = new Float64Array(numHeads * headDim);
    const scores = new Float64Array(pos + 1);
    for (let h = 0; h < numHeads; h++) {
      const kvBase = Math.floor(h / groupSize) * headDim;
      const qBase = h * headDim;
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += query[qBase + d] * k[t][kvBase + d];
        scores[t] = dot * scale;
        if (scores[t] > max) max = scores[t];
      }
      let total = 0;
      for (let t = 0; t <= pos; t++) {
        scores[t] = Math.exp(scores[t] - max);
        total += scores[t];
      }
      for (let t = 0; t <= pos; t++) {
        const weight = scores[t] / total;
        for (let d = 0; d < headDim; d++) out[qBase + d] += weight * v[t][kvBase + d];
      }
    }
    return out;
  });
}

function decoderLayer(hidden: Float64Array[], layer: ReferenceLayer, model: ReferenceModel): void {
  const config = model.config;
  const { hiddenSize, intermediateSize, numHeads, numKvHeads, headDim, rmsNormEps } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;

  const q: Float64Array[] = [];
  const k: Float64Array[] = [];
  const v: Float64Array[] = [];
  hidden.forEach((h, pos) => {
    const normed = rmsNorm(h, layer.inputNorm, rmsNormEps);
    const query = matVec(layer.qProj, normed, qDim, hiddenSize);
    const key = matVec(layer.kProj, normed, kvDim, hiddenSize);
    applyRope(query, numHeads, headDim, pos, model.invFreq);
    applyRope(key, numKvHeads, headDim, pos, model.invFreq);
    q.push(query);
    k.push(key);
    v.push(matVec(layer.vProj, normed, kvDim, hiddenSize));
  });
  attention(q, k, v, config).forEach((attended, pos) => {
    const projected = matVec(layer.oProj, attended, hiddenSize, qDim);
    for (let i = 0; i < hiddenSize; i++) hidden[pos][i] += projected[i];
  });

  for (const h of hidden) {
    const normed = rmsNorm(h, layer.postAttentionNorm, rmsNormEps);
    const gate = matVec(layer.gateProj, normed, intermediateSize, hiddenSize);
    const up = matVec(layer.upProj, normed, intermediateSize, hiddenSize);
    for (let i = 0; i < intermediateSize; i++) gate[i] = silu(gate[i]) * up[i];
    const down = matVec(layer.downProj, gate, hiddenSize, intermediateSize);
    for (let i = 0; i < hiddenSize; i++) h[i] += down[i];
  }
}

/** Residual stream after the first exitLayer decoder layers: (seq,) of (hidden,). */
export function referenceHiddenStates(model: ReferenceModel, tokenIds: number[], exitLayer = model.config.numLayers): Float64Array[] {
  const { hiddenSize, vocabSize, numLayers } = model.config;
  if (!Number.isInteger(exitLayer) || exitLayer < 0 || exitLayer > numLayers) {
    throw new Error(`exitLayer must be an integer in [0, ${numLayers}], got ${exitLayer}`);
  }
  const hidden = tokenIds.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`token id ${id} out of range [0, ${vocabSize})`);
    return Float64Array.from(model.embedTokens.subarray(id * hiddenSize, (id + 1) * hiddenSize));
  });
  for (let layer = 0; layer < exitLayer; layer++) decoderLayer(hidden, model.layers[layer], model);
  return hidden;
}

/** Logits (seq,) of (vocab,) after exitLayer layers, the final norm and the LM head. */
export function referenceLogitsAtExit(model: ReferenceModel, tokenIds: number[], exitLayer: number): Float64Array[] {
  const { hiddenSize, vocabSize, rmsNormEps } = model.config;
  return referenceHiddenStates(model, tokenIds, exitLayer).map((h) =>
    matVec(model.lmHead, rmsNorm(h, model.finalNorm, rmsNormEps), vocabSize, hiddenSize),
  );
}

/** Full-depth logits for every position: (seq,) of (vocab,). */
export function referenceLogits(model: ReferenceModel, tokenIds: number[]): Float64Array[] {
  return referenceLogitsAtExit(model, tokenIds, model.config.numLayers);
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Numerically stable softmax in float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/** Greedy decoding of `steps` new tokens, recomputing the full sequence each step (optionally at an early exit). */
export function referenceGreedy(model: ReferenceModel, prompt: number[], steps: number, exitLayer = model.config.numLayers): number[] {
  if (prompt.length === 0) throw new Error('referenceGreedy needs a non-empty prompt');
  const tokens = [...prompt];
  const generated: number[] = [];
  for (let step = 0; step < steps; step++) {
    const logits = referenceLogitsAtExit(model, tokens, exitLayer);
    const next = argmax(logits[logits.length - 1]);
    generated.push(next);
    tokens.push(next);
  }
  return generated;
}
