// A small safetensors reader for the reference model, written independently of the C++ loader:
// 8-byte little-endian header size, JSON header {name: {dtype, shape, data_offsets}}, then raw data.
// Reads a single model.safetensors or shards listed by model.safetensors.index.json, and widens
// BF16 / F16 / F32 to Float32Array (exact for all three).

import fs from 'node:fs';
import path from 'node:path';

export interface ReferenceTensor {
  shape: number[];
  data: Float32Array; // row-major, shape.reduce(*) elements
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const DTYPE_BYTES: Record<string, number> = { BF16: 2, F16: 2, F32: 4 };

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function decodeTensor(bytes: Buffer, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
  } else if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = bytes.readUInt16LE(i * 2) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(bytes.readUInt16LE(i * 2));
  }
  return out;
}

/** Reads every tensor of one .safetensors file. */
export function readSafetensorsFile(file: string): Map<string, ReferenceTensor> {
  const buffer = fs.readFileSync(file);
  if (buffer.length < 8) throw new Error(`${file}: too short for a safetensors header`);
  const headerSize = Number(buffer.readBigUInt64LE(0));
  if (8 + headerSize > buffer.length) throw new Error(`${file}: header size ${headerSize} exceeds file size ${buffer.length}`);
  const header = JSON.parse(buffer.subarray(8, 8 + headerSize).toString('utf8')) as Record<string, HeaderEntry>;
  const dataStart = 8 + headerSize;
  const tensors = new Map<string, ReferenceTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytesPerElement = DTYPE_BYTES[entry.dtype];
    if (!bytesPerElement) throw new Error(`${file}: tensor ${name} has unsupported dtype ${entry.dtype}`);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * bytesPerElement || dataStart + end > buffer.length) {
      throw new Error(`${file}: tensor ${name} data_offsets [${begin}, ${end}] do not fit shape [${entry.shape}] ${entry.dtype}`);
    }
    tensors.set(name, { shape: entry.shape, data: decodeTensor(buffer.subarray(dataStart + begin, dataStart + end), entry.dtype, count) });
  }
  return tensors;
}

/** Reads all tensors of a checkpoint folder (single file or sharded with an index). */
export function readCheckpointTensors(dir: string): Map<string, ReferenceTensor> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) return readSafetensorsFile(path.join(dir, 'model.safetensors'));
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
  const tensors = new Map<string, ReferenceTensor>();
  for (const shard of new Set(Object.values(index.weight_map))) {
    for (const [name, tensor] of readSafetensorsFile(path.join(dir, shard))) {
      if (index.weight_map[name] !== shard) throw new Error(`${shard}: tensor ${name} is not mapped to this shard in the index`);
      tensors.set(name, tensor);
    }
  }
  for (const name of Object.keys(index.weight_map)) {
    if (!tensors.has(name)) throw new Error(`${indexFile}: tensor ${name} missing from ${index.weight_map[name]}`);
  }
  return tensors;
}
