// Converts a HuggingFace LlamaForCausalLM checkpoint folder (config.json, model.safetensors or shards with
// model.safetensors.index.json, optional tokenizer.json + tokenizer_config.json) to a GGUF file llama.cpp loads:
// GGUF v3, little endian, architecture "llama", matrices as F16 (bf16 and f32 checkpoints are converted; bf16 → f16
// is exact for every weight inside f16's range), norms and rope_freqs as F32, data aligned to 32 bytes.
// A folder written by `layerskip quantize` (q8 / q4) becomes a Q8_0 / Q4_1 GGUF holding the identical values:
// each matrix's planes are interleaved into ggml blocks, nothing is requantized (scripts/gguf-quantized.ts); a
// head kept unquantized is written as F16, as above.
//
// What llama.cpp's convert_hf_to_gguf.py does for Llama, and this file reproduces:
//   - tensor names: token_embd, output_norm, output (omitted with tied embeddings: llama.cpp reuses token_embd),
//     blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down};
//   - q_proj / k_proj rows permuted from HF's rotate-half RoPE layout to GGUF's interleaved one (permutedSourceRow:
//     per head, rows [first half | second half] become [r0, r_h, r1, r_h+1, ...]), k with the kv-head count;
//   - rope_scaling.rope_type "llama3": a rope_freqs tensor of per-frequency divisors (llama3RopeFactors). The
//     converter reads original_max_position_embeddings from the top level of config.json (default 8192); this file
//     reads it from rope_scaling, where HF reads it. They agree for every Meta checkpoint (8192).
//   - vocabulary: byte-level BPE (Llama 3) as tokenizer.ggml.model "gpt2" with merges, pre "llama-bpe" when the
//     pre-tokenizer is Llama 3's regex ("default" otherwise); SentencePiece-style BPE with byte fallback (Llama 2)
//     as "llama" with scores. tokenizer.json has no SentencePiece scores, so a normal token's score is -id (earlier
//     pieces merge first), which only matters to llama.cpp's own text tokenizer, not to token ids fed directly.
//     A folder without tokenizer.json gets a placeholder byte-level vocabulary (256 byte tokens, then <token_N>),
//     enough to load the model and feed it token ids.
//
// Tensors are streamed: read from the safetensors files a few MB at a time (the project's header reader,
// lib/training/safetensors-io.ts, or gguf-quantized.ts's for quantized folders), converted and appended, so a
// 2.5 GB model is never held in memory. Permuted q / k rows move whole, with their blocks.
//
//   npx tsx scripts/gguf-writer.ts MODEL_DIR OUT.gguf
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  checkpointTensorLocations,
  decodeTensorChunk,
  encodeTensorChunk,
  f32BitsToF16,
  type TensorLocation,
} from '../lib/training/safetensors-io.js';
import { parseConfig, ropeInverseFrequencies, type RawConfig, type ReferenceConfig } from '../test/reference/llama.js';
import {
  GGML_BLOCKS,
  QUANT_BLOCK,
  interleaveBlocks,
  planeNames,
  quantizationFormat,
  quantizedPlanes,
  quantizedTensorLocations,
  type QuantFormat,
  type QuantizedPlanes,
  type RawTensorLocation,
} from './gguf-quantized.js';

const ALIGNMENT = 32;
const CHUNK_BYTES = 8 << 20;

// GGUF metadata value types and ggml tensor types (ggml.h / gguf.h).
const enum ValueType { UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }
const GGML_F32 = 0;
const GGML_F16 = 1;
/** general.file_type per checkpoint format: llama_ftype's MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_1. */
const LLAMA_FTYPE: Record<QuantFormat | 'f16', number> = { f16: 1, q8: 7, q4: 3 };
// llama.cpp token types.
const TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_BYTE = 6;

/** The config.json fields the conversion needs: the reference model's, plus context length and special ids. */
export interface LlamaShape extends ReferenceConfig {
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

export interface GgufSummary {
  file: string;
  bytes: number;
  tensors: number;
  /** The matrices' ggml type: "F16", "Q8_0" or "Q4_1". */
  matrixType: string;
  tokenizerModel: string;
  tokenizerPre: string;
}

type MetadataValue =
  | { type: ValueType.UINT32 | ValueType.INT32 | ValueType.FLOAT32; value: number }
  | { type: ValueType.BOOL; value: boolean }
  | { type: ValueType.STRING; value: string }
  | { type: ValueType.ARRAY; elementType: ValueType.INT32 | ValueType.FLOAT32 | ValueType.STRING; value: (number | string)[] };

interface TensorPlan {
  name: string;
  /** Row-major shape as in the checkpoint ([rows, columns] for matrices). */
  shape: number[];
  /** GGML_F32, GGML_F16, or a block type of GGML_BLOCKS. */
  type: number;
  /** The checkpoint tensor, a quantized matrix's planes, or values computed here (rope_freqs). */
  source: TensorLocation | QuantizedPlanes | Float32Array;
  /** q/k projections: rows permuted per head of this many heads. */
  permuteHeads?: number;
}

// --- config ------------------------------------------------------------------------------------

export function readLlamaShape(dir: string): LlamaShape {
  const file = path.join(dir, 'config.json');
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as RawConfig;
  if (raw.attention_bias === true || raw.mlp_bias === true) throw new Error(`${file}: attention_bias / mlp_bias are not supported`);
  const firstId = (value: unknown): number | null => (Array.isArray(value) ? (value[0] as number) : typeof value === 'number' ? value : null);
  return {
    ...parseConfig(raw),
    maxPositionEmbeddings: typeof raw.max_position_embeddings === 'number' ? raw.max_position_embeddings : 2048,
    bosTokenId: firstId(raw.bos_token_id),
    eosTokenId: firstId(raw.eos_token_id),
  };
}

/**
 * llama3 RoPE: the divisor of each of the headDim / 2 inverse frequencies (convert_hf_to_gguf.py's rope_freqs),
 * i.e. unscaled over scaled frequency as the reference model computes them.
 */
export function llama3RopeFactors(shape: LlamaShape): Float32Array {
  const scaled = ropeInverseFrequencies(shape);
  const unscaled = ropeInverseFrequencies({ ...shape, ropeScaling: null });
  return Float32Array.from(scaled, (frequency, i) => unscaled[i] / frequency);
}

// --- vocabulary --------------------------------------------------------------------------------

interface Vocab {
  model: 'gpt2' | 'llama';
  pre: string;
  tokens: string[];
  types: number[];
  scores?: number[];
  merges?: string[];
  bosTokenId: number | null;
  eosTokenId: number | null;
  unknownTokenId?: number;
  addBosToken?: boolean;
}

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
  added_tokens?: { id: number; content: string; special: boolean }[];
  pre_tokenizer?: unknown;
}

const LLAMA3_SPLIT_REGEX_START = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}";

/** GPT-2's byte → printable character map, which byte-level BPE vocabularies are written in. */
function byteLevelCharacters(): string[] {
  const chars: string[] = [];
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    chars.push(String.fromCharCode(printable ? byte : next++));
  }
  return chars;
}

function placeholderVocab(shape: LlamaShape): Vocab {
  const bytes = byteLevelCharacters();
  const tokens = Array.from({ length: shape.vocabSize }, (_, i) => (i < 256 ? bytes[i] : `<token_${i}>`));
  const types = tokens.map((_, i) => (i === shape.bosTokenId || i === shape.eosTokenId ? TOKEN_CONTROL : TOKEN_NORMAL));
  return { model: 'gpt2', pre: 'default', tokens, types, merges: [], bosTokenId: shape.bosTokenId, eosTokenId: shape.eosTokenId };
}

function readVocab(dir: string, shape: LlamaShape): Vocab {
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizerFile)) return placeholderVocab(shape);
  const tokenizer = JSON.parse(fs.readFileSync(tokenizerFile, 'utf8')) as TokenizerJson;
  if (tokenizer.model.type !== 'BPE') throw new Error(`${tokenizerFile}: model type ${tokenizer.model.type} is not supported (BPE only)`);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown> : {};

  const text: (string | undefined)[] = new Array(shape.vocabSize);
  for (const [token, id] of Object.entries(tokenizer.model.vocab)) if (id < shape.vocabSize) text[id] = token;
  const added = new Map((tokenizer.added_tokens ?? []).map((token) => [token.id, token]));
  for (const token of added.values()) if (token.id < shape.vocabSize) text[token.id] = token.content;
  const idOf = new Map<string, number>();
  text.forEach((token, id) => token !== undefined && idOf.set(token, id));
  const specialId = (key: string, fallback: number | null): number | null => {
    const value = config[key] as string | { content?: string } | null | undefined;
    const content = typeof value === 'string' ? value : value?.content;
    const id = content === undefined ? undefined : idOf.get(content);
    return id ?? fallback;
  };

  const spm = tokenizer.model.byte_fallback === true;
  const unknownTokenId = spm && tokenizer.model.unk_token ? idOf.get(tokenizer.model.unk_token) : undefined;
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < shape.vocabSize; id++) {
    const addedToken = added.get(id);
    tokens.push(text[id] ?? `[PAD${id}]`); // as convert_hf_to_gguf.py pads a vocabulary shorter than vocab_size
    if (text[id] === undefined) types.push(TOKEN_USER_DEFINED);
    else if (id === unknownTokenId) types.push(TOKEN_UNKNOWN);
    else if (addedToken) types.push(addedToken.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED);
    else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(text[id]!)) types.push(TOKEN_BYTE);
    else types.push(TOKEN_NORMAL);
  }
  const vocab: Vocab = {
    model: spm ? 'llama' : 'gpt2',
    pre: 'default',
    tokens,
    types,
    bosTokenId: specialId('bos_token', shape.bosTokenId),
    eosTokenId: specialId('eos_token', shape.eosTokenId),
    unknownTokenId,
    addBosToken: typeof config.add_bos_token === 'boolean' ? config.add_bos_token : undefined,
  };
  if (spm) {
    vocab.scores = types.map((type, id) => (type === TOKEN_NORMAL ? -id : 0));
  } else {
    vocab.merges = (tokenizer.model.merges ?? []).map((merge) => (Array.isArray(merge) ? merge.join(' ') : merge));
    vocab.pre = JSON.stringify(tokenizer.pre_tokenizer ?? null).includes(JSON.stringify(LLAMA3_SPLIT_REGEX_START).slice(1, -1))
      ? 'llama-bpe' : 'default';
  }
  return vocab;
}

// --- metadata and tensor plan ------------------------------------------------------------------

function metadata(dir: string, shape: LlamaShape, vocab: Vocab, format: QuantFormat | null): Map<string, MetadataValue> {
  const u32 = (value: number): MetadataValue => ({ type: ValueType.UINT32, value });
  const f32 = (value: number): MetadataValue => ({ type: ValueType.FLOAT32, value });
  const entries = new Map<string, MetadataValue>([
    ['general.architecture', { type: ValueType.STRING, value: 'llama' }],
    ['general.name', { type: ValueType.STRING, value: path.basename(path.resolve(dir)) }],
    ['general.file_type', u32(LLAMA_FTYPE[format ?? 'f16'])],
    ['general.quantization_version', u32(2)],
    ['general.alignment', u32(ALIGNMENT)],
    ['llama.vocab_size', u32(shape.vocabSize)],
    ['llama.context_length', u32(shape.maxPositionEmbeddings)],
    ['llama.embedding_length', u32(shape.hiddenSize)],
    ['llama.block_count', u32(shape.numLayers)],
    ['llama.feed_forward_length', u32(shape.intermediateSize)],
    ['llama.rope.dimension_count', u32(shape.headDim)],
    ['llama.attention.head_count', u32(shape.numHeads)],
    ['llama.attention.head_count_kv', u32(shape.numKvHeads)],
    ['llama.attention.key_length', u32(shape.headDim)],
    ['llama.attention.value_length', u32(shape.headDim)],
    ['llama.attention.layer_norm_rms_epsilon', f32(shape.rmsNormEps)],
    ['llama.rope.freq_base', f32(shape.ropeTheta)],
    ['tokenizer.ggml.model', { type: ValueType.STRING, value: vocab.model }],
    ['tokenizer.ggml.pre', { type: ValueType.STRING, value: vocab.pre }],
    ['tokenizer.ggml.tokens', { type: ValueType.ARRAY, elementType: ValueType.STRING, value: vocab.tokens }],
    ['tokenizer.ggml.token_type', { type: ValueType.ARRAY, elementType: ValueType.INT32, value: vocab.types }],
  ]);
  if (vocab.scores) entries.set('tokenizer.ggml.scores', { type: ValueType.ARRAY, elementType: ValueType.FLOAT32, value: vocab.scores });
  if (vocab.merges) entries.set('tokenizer.ggml.merges', { type: ValueType.ARRAY, elementType: ValueType.STRING, value: vocab.merges });
  if (vocab.bosTokenId !== null) entries.set('tokenizer.ggml.bos_token_id', u32(vocab.bosTokenId));
  if (vocab.eosTokenId !== null) entries.set('tokenizer.ggml.eos_token_id', u32(vocab.eosTokenId));
  if (vocab.unknownTokenId !== undefined) entries.set('tokenizer.ggml.unknown_token_id', u32(vocab.unknownTokenId));
  if (vocab.addBosToken !== undefined) entries.set('tokenizer.ggml.add_bos_token', { type: ValueType.BOOL, value: vocab.addBosToken });
  return entries;
}

function planTensors(dir: string, shape: LlamaShape, format: QuantFormat | null): TensorPlan[] {
  const locations: Map<string, RawTensorLocation> = format ? quantizedTensorLocations(dir) : checkpointTensorLocations(dir);
  const used = new Set<string>();
  const take = (hfName: string, expected: number[]): TensorLocation => {
    const location = locations.get(hfName);
    if (!location) throw new Error(`${dir}: missing tensor ${hfName}`);
    if (location.shape.join(',') !== expected.join(',')) {
      throw new Error(`${dir}: tensor ${hfName} has shape [${location.shape}], expected [${expected}]`);
    }
    if (!['F32', 'F16', 'BF16'].includes(location.dtype)) throw new Error(`${location.file}: tensor ${hfName} has dtype ${location.dtype}`);
    used.add(hfName);
    return location as TensorLocation;
  };
  const { hiddenSize: hidden, intermediateSize: ffn, headDim, vocabSize } = shape;
  const qDim = shape.numHeads * headDim;
  const kvDim = shape.numKvHeads * headDim;
  // A matrix is ggml blocks where the folder holds its planes, else F16 (unquantized checkpoints, a kept head).
  const matrix = (name: string, hfName: string, rows: number, columns: number, permuteHeads?: number): TensorPlan => {
    const planes = format ? quantizedPlanes(locations, format, hfName, rows, columns) : null;
    if (!planes) return { name, shape: [rows, columns], type: GGML_F16, source: take(hfName, [rows, columns]), permuteHeads };
    for (const plane of planeNames(hfName)) used.add(plane);
    return { name, shape: [rows, columns], type: GGML_BLOCKS[planes.format].type, source: planes, permuteHeads };
  };
  const norm = (name: string, hfName: string): TensorPlan => ({ name, shape: [hidden], type: GGML_F32, source: take(hfName, [hidden]) });

  const plan: TensorPlan[] = [];
  if (shape.ropeScaling) plan.push({ name: 'rope_freqs.weight', shape: [headDim / 2], type: GGML_F32, source: llama3RopeFactors(shape) });
  plan.push(matrix('token_embd.weight', 'model.embed_tokens.weight', vocabSize, hidden));
  for (let layer = 0; layer < shape.numLayers; layer++) {
    const hf = `model.layers.${layer}`;
    const blk = `blk.${layer}`;
    plan.push(
      norm(`${blk}.attn_norm.weight`, `${hf}.input_layernorm.weight`),
      matrix(`${blk}.attn_q.weight`, `${hf}.self_attn.q_proj.weight`, qDim, hidden, shape.numHeads),
      matrix(`${blk}.attn_k.weight`, `${hf}.self_attn.k_proj.weight`, kvDim, hidden, shape.numKvHeads),
      matrix(`${blk}.attn_v.weight`, `${hf}.self_attn.v_proj.weight`, kvDim, hidden),
      matrix(`${blk}.attn_output.weight`, `${hf}.self_attn.o_proj.weight`, hidden, qDim),
      norm(`${blk}.ffn_norm.weight`, `${hf}.post_attention_layernorm.weight`),
      matrix(`${blk}.ffn_gate.weight`, `${hf}.mlp.gate_proj.weight`, ffn, hidden),
      matrix(`${blk}.ffn_up.weight`, `${hf}.mlp.up_proj.weight`, ffn, hidden),
      matrix(`${blk}.ffn_down.weight`, `${hf}.mlp.down_proj.weight`, hidden, ffn),
    );
  }
  plan.push(norm('output_norm.weight', 'model.norm.weight'));
  if (!shape.tieWordEmbeddings) plan.push(matrix('output.weight', 'lm_head.weight', vocabSize, hidden));
  else used.add('lm_head.weight'); // some tied checkpoints still store a copy; llama.cpp reuses token_embd
  const extra = [...locations.keys()].filter((name) => !used.has(name) && !name.endsWith('rotary_emb.inv_freq'));
  if (extra.length > 0) throw new Error(`${dir}: unexpected tensors ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? '…' : ''}`);
  return plan;
}

// --- binary encoding ---------------------------------------------------------------------------

/** Little-endian byte sink for the header. */
class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;

  private push(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(value: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(value); this.push(b); }
  i32(value: number): void { const b = Buffer.alloc(4); b.writeInt32LE(value); this.push(b); }
  u64(value: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(value)); this.push(b); }
  f32(value: number): void { const b = Buffer.alloc(4); b.writeFloatLE(value); this.push(b); }
  bool(value: boolean): void { this.push(Buffer.from([value ? 1 : 0])); }
  string(value: string): void { const bytes = Buffer.from(value, 'utf8'); this.u64(bytes.length); this.push(bytes); }
  padTo(alignment: number): void { this.push(Buffer.alloc((alignment - (this.length % alignment)) % alignment)); }
  toBuffer(): Buffer { return Buffer.concat(this.chunks); }
}

function writeValue(out: ByteWriter, type: ValueType, value: number | string | boolean): void {
  if (type === ValueType.UINT32) out.u32(value as number);
  else if (type === ValueType.INT32) out.i32(value as number);
  else if (type === ValueType.FLOAT32) out.f32(value as number);
  else if (type === ValueType.BOOL) out.bool(value as boolean);
  else out.string(value as string);
}

function tensorBytes(tensor: TensorPlan): number {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (tensor.type === GGML_F16) return count * 2;
  if (tensor.type === GGML_F32) return count * 4;
  const block = Object.values(GGML_BLOCKS).find((candidate) => candidate.type === tensor.type)!;
  return (count / QUANT_BLOCK) * block.blockBytes;
}

/** Header, metadata and tensor infos (ggml dimension order: innermost first), padded to the data section. */
function encodeHeader(entries: Map<string, MetadataValue>, plan: TensorPlan[]): Buffer {
  const out = new ByteWriter();
  out.u32(0x46554747); // "GGUF"
  out.u32(3);
  out.u64(plan.length);
  out.u64(entries.size);
  for (const [key, entry] of entries) {
    out.string(key);
    out.u32(entry.type);
    if (entry.type === ValueType.ARRAY) {
      out.u32(entry.elementType);
      out.u64(entry.value.length);
      for (const element of entry.value) writeValue(out, entry.elementType, element);
    } else {
      writeValue(out, entry.type, entry.value);
    }
  }
  let offset = 0;
  for (const tensor of plan) {
    out.string(tensor.name);
    out.u32(tensor.shape.length);
    for (const dim of [...tensor.shape].reverse()) out.u64(dim);
    out.u32(tensor.type);
    out.u64(offset);
    offset += tensorBytes(tensor);
    offset += (ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT;
  }
  out.padTo(ALIGNMENT);
  return out.toBuffer();
}

// --- tensor data -------------------------------------------------------------------------------

let bf16ToF16Table: Uint16Array | undefined;

/** bf16 bits → f16 bits for all 65536 patterns (round to nearest even), so bf16 matrices convert by lookup. */
function bf16ToF16(): Uint16Array {
  if (!bf16ToF16Table) {
    bf16ToF16Table = new Uint16Array(65536);
    for (let bits = 0; bits < 65536; bits++) bf16ToF16Table[bits] = f32BitsToF16(bits << 16);
  }
  return bf16ToF16Table;
}

/** Converts `raw` checkpoint bytes of `count` values to the GGUF type's bytes. */
function convertChunk(raw: Buffer, dtype: TensorLocation['dtype'], type: number, count: number): Buffer {
  if (type === GGML_F16 && dtype === 'F16') return raw;
  if (type === GGML_F32 && dtype === 'F32') return raw;
  const out = Buffer.alloc(count * (type === GGML_F16 ? 2 : 4));
  if (type === GGML_F16 && dtype === 'BF16') {
    const table = bf16ToF16();
    const input = new Uint16Array(raw.buffer, raw.byteOffset, count);
    const output = new Uint16Array(out.buffer, out.byteOffset, count);
    for (let i = 0; i < count; i++) output[i] = table[input[i]];
    return out;
  }
  const values = new Float32Array(count);
  decodeTensorChunk(raw, dtype, values);
  encodeTensorChunk(values, type === GGML_F16 ? 'F16' : 'F32', out);
  return out;
}

/**
 * convert_hf_to_gguf.py's permute(w, n_head, n_head_kv): w.reshape(heads, 2, headDim / 2, cols).swapaxes(1, 2).
 * Output row (head, i, j) (i < headDim / 2, j < 2) is input row (head, j, i): within each head the two halves of
 * the rotate-half layout are interleaved. Returns the input row of output row `row`.
 */
export function permutedSourceRow(row: number, rows: number, heads: number): number {
  const headDim = rows / heads;
  const half = headDim / 2;
  const head = Math.floor(row / headDim);
  const within = row % headDim;
  return head * headDim + (within % 2) * half + Math.floor(within / 2);
}

/** Rows per chunk: about CHUNK_BYTES of `rowBytes`-byte rows, whole heads when permuting. */
function rowsPerChunk(tensor: TensorPlan, rows: number, rowBytes: number): number {
  const rowsPerHead = tensor.permuteHeads ? rows / tensor.permuteHeads : 1;
  return Math.max(rowsPerHead, Math.floor(CHUNK_BYTES / rowBytes / rowsPerHead) * rowsPerHead);
}

/** Streams a quantized matrix into fd as ggml blocks, rows permuted whole (with all their blocks). */
function writeQuantizedTensor(fd: number, tensor: TensorPlan, planes: QuantizedPlanes): void {
  const [rows, columns] = tensor.shape;
  const chunkRows = rowsPerChunk(tensor, rows, (columns / QUANT_BLOCK) * GGML_BLOCKS[planes.format].blockBytes);
  const input = fs.openSync(planes.qweight.file, 'r');
  // `count` rows of a plane from row `first`: the plane's rows are equal slices of its bytes.
  const readRows = (plane: RawTensorLocation | null, first: number, count: number): Buffer | null => {
    if (!plane) return null;
    const rowBytes = plane.bytes / rows;
    const raw = Buffer.alloc(count * rowBytes);
    fs.readSync(input, raw, 0, raw.length, plane.offset + first * rowBytes);
    return raw;
  };
  try {
    for (let first = 0; first < rows; first += chunkRows) {
      const count = Math.min(chunkRows, rows - first);
      const sourceRow = (row: number) => (tensor.permuteHeads ? permutedSourceRow(first + row, rows, tensor.permuteHeads) - first : row);
      fs.writeSync(fd, interleaveBlocks(planes.format, count, columns, readRows(planes.qweight, first, count)!,
        readRows(planes.scales, first, count)!, readRows(planes.mins, first, count), sourceRow));
    }
  } finally {
    fs.closeSync(input);
  }
}

/** Streams one tensor into fd: whole rows (whole heads when permuting) per chunk. */
function writeTensor(fd: number, tensor: TensorPlan): void {
  if (tensor.source instanceof Float32Array) {
    fs.writeSync(fd, Buffer.from(tensor.source.buffer, tensor.source.byteOffset, tensor.source.byteLength));
    return;
  }
  if ('qweight' in tensor.source) {
    writeQuantizedTensor(fd, tensor, tensor.source);
    return;
  }
  const source = tensor.source;
  const rows = tensor.shape.length === 2 ? tensor.shape[0] : 1;
  const columns = tensor.shape[tensor.shape.length - 1];
  const rowBytes = source.bytes / rows;
  const chunkRows = rowsPerChunk(tensor, rows, rowBytes);
  const input = fs.openSync(source.file, 'r');
  try {
    for (let first = 0; first < rows; first += chunkRows) {
      const count = Math.min(chunkRows, rows - first);
      let raw = Buffer.alloc(count * rowBytes);
      fs.readSync(input, raw, 0, raw.length, source.offset + first * rowBytes);
      if (tensor.permuteHeads) {
        const permuted = Buffer.alloc(raw.length);
        for (let row = 0; row < count; row++) {
          const from = permutedSourceRow(first + row, rows, tensor.permuteHeads) - first;
          raw.copy(permuted, row * rowBytes, from * rowBytes, (from + 1) * rowBytes);
        }
        raw = permuted;
      }
      fs.writeSync(fd, convertChunk(raw, source.dtype, tensor.type, count * columns));
    }
  } finally {
    fs.closeSync(input);
  }
}

/**
 * Writes `dir` as a GGUF file at `outFile` (to `outFile.partial`, renamed into place when complete): F16 matrices,
 * or Q8_0 / Q4_1 ones for a folder written by `layerskip quantize`.
 */
export function writeGguf(dir: string, outFile: string): GgufSummary {
  const shape = readLlamaShape(dir);
  const format = quantizationFormat(dir);
  const vocab = readVocab(dir, shape);
  const plan = planTensors(dir, shape, format);
  const header = encodeHeader(metadata(dir, shape, vocab, format), plan);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const partial = `${outFile}.partial`;
  const fd = fs.openSync(partial, 'w');
  let bytes = 0;
  try {
    bytes += fs.writeSync(fd, header);
    for (const tensor of plan) {
      writeTensor(fd, tensor);
      bytes += tensorBytes(tensor);
      const padding = (ALIGNMENT - (bytes % ALIGNMENT)) % ALIGNMENT;
      if (padding > 0) bytes += fs.writeSync(fd, Buffer.alloc(padding));
    }
  } finally {
    fs.closeSync(fd);
  }
  if (fs.statSync(partial).size !== bytes) throw new Error(`${partial}: wrote ${fs.statSync(partial).size} bytes, expected ${bytes}`);
  fs.renameSync(partial, outFile);
  return {
    file: outFile,
    bytes,
    tensors: plan.length,
    matrixType: format ? GGML_BLOCKS[format].name : 'F16',
    tokenizerModel: vocab.model,
    tokenizerPre: vocab.pre,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) {
    process.stderr.write('usage: npx tsx scripts/gguf-writer.ts MODEL_DIR OUT.gguf\n');
    process.exit(2);
  }
  const summary = writeGguf(dir, out);
  process.stdout.write(`${summary.file}: ${summary.tensors} tensors (matrices ${summary.matrixType}), ${(summary.bytes / 2 ** 20).toFixed(1)} MiB, ` +
    `tokenizer ${summary.tokenizerModel} (pre ${summary.tokenizerPre})\n`);
}
