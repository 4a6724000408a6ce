// Reads a checkpoint written by `layerskip quantize` for the reference model, independently of the C++ loader:
// its own safetensors header parse, and the README's definition of the formats (32-column blocks; q8 w = d·q;
// q4 w = d·q + m with byte j of a block holding q[j] low and q[j + 16] high), giving each matrix's dequantized
// f32 values under its original "<name>.weight". Other tensors go through the package's plain reader.
import fs from 'node:fs';
import path from 'node:path';

import { decodeTensorChunk, type SafetensorsDtype } from '../../lib/training/safetensors-io.js';
import type { ReferenceTensor } from './safetensors.js';

const BLOCK = 32;

function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

function readRawTensors(file: string): Map<string, RawTensor> {
  const buffer = fs.readFileSync(file);
  const headerLength = Number(buffer.readBigUInt64LE(0));
  const header = JSON.parse(buffer.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLength;
  const tensors = new Map<string, RawTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, { dtype: entry.dtype, shape: entry.shape, bytes: buffer.subarray(base + entry.data_offsets[0], base + entry.data_offsets[1]) });
  }
  return tensors;
}

function dequantize(format: string, qweight: RawTensor, scales: RawTensor, mins: RawTensor | undefined): Float32Array {
  const rows = qweight.shape[0];
  const cols = scales.shape[1] * BLOCK;
  const out = new Float32Array(rows * cols);
  const f16 = (tensor: RawTensor, index: number) => f16ToNumber(tensor.bytes.readUInt16LE(index * 2));
  for (let block = 0; block < rows * (cols / BLOCK); block++) {
    const d = f16(scales, block);
    if (format === 'q8') {
      for (let i = 0; i < BLOCK; i++) out[block * BLOCK + i] = d * qweight.bytes.readInt8(block * BLOCK + i);
    } else {
      const m = f16(mins!, block);
      for (let j = 0; j < 16; j++) {
        const byte = qweight.bytes[block * 16 + j];
        out[block * BLOCK + j] = Math.fround(d * (byte & 15) + m);
        out[block * BLOCK + j + 16] = Math.fround(d * (byte >> 4) + m);
      }
    }
  }
  return out;
}

/** All tensors of a quantized checkpoint folder, matrices dequantized back to "<name>.weight". */
export function readQuantizedCheckpoint(dir: string, format: string): Map<string, ReferenceTensor> {
  const raw = readRawTensors(path.join(dir, 'model.safetensors'));
  const plain = new Map<string, ReferenceTensor>();
  for (const [name, qweight] of raw) {
    if (/\.(scales|mins)$/.test(name)) continue;
    if (!name.endsWith('.qweight')) {
      const data = new Float32Array(qweight.shape.reduce((a, b) => a * b, 1));
      decodeTensorChunk(qweight.bytes, qweight.dtype as SafetensorsDtype, data);
      plain.set(name, { name, shape: qweight.shape, data });
      continue;
    }
    const base = name.slice(0, -'.qweight'.length);
    const scales = raw.get(`${base}.scales`)!;
    const data = dequantize(format, qweight, scales, raw.get(`${base}.mins`));
    plain.set(`${base}.weight`, { name: `${base}.weight`, shape: [qweight.shape[0], scales.shape[1] * BLOCK], data });
  }
  return plain;
}
