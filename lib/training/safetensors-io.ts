// Safetensors files from TypeScript: write named f32 tensors as F32 / BF16 / F16 (rounding to nearest even), and
// read BF16 / F16 / F32 tensors back widened to Float32Array. Format: 8-byte little-endian header size, a JSON header
// {name: {dtype, shape, data_offsets}} padded with spaces to 8 bytes, then the raw data.
import fs from 'node:fs';
import path from 'node:path';

export type SafetensorsDtype = 'F32' | 'BF16' | 'F16';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, BF16: 2, F16: 2 };

/** float32 bit pattern → bfloat16, round to nearest even; NaN stays a quiet NaN. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bit pattern → IEEE half, round to nearest even, with subnormals and overflow to inf. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x007fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x0200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x00800000;
    const shift = 14 - halfExponent;
    const halfway = 1 << (shift - 1);
    const remainder = mantissa & ((1 << shift) - 1);
    let half = mantissa >>> shift;
    if (remainder > halfway || (remainder === halfway && (half & 1) !== 0)) half += 1;
    return sign | half;
  }
  const remainder = mantissa & 0x1fff;
  let half = (halfExponent << 10) | (mantissa >>> 13);
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) !== 0)) half += 1;
  return sign | half;
}

/** Encodes float32 values as little-endian `dtype` bytes into out (values.length · bytes long). */
export function encodeTensorChunk(values: Float32Array, dtype: SafetensorsDtype, out: Buffer): void {
  if (dtype === 'F32') {
    Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(out);
    return;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const halves = new Uint16Array(out.buffer, out.byteOffset, values.length);
  const convert = dtype === 'BF16' ? f32BitsToBf16 : f32BitsToF16;
  for (let i = 0; i < bits.length; i++) halves[i] = convert(bits[i]);
}

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Widens little-endian `dtype` bytes exactly to float32 (the inverse of encodeTensorChunk). */
export function decodeTensorChunk(raw: Buffer, dtype: SafetensorsDtype, out: Float32Array): void {
  const count = out.length;
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = raw.readFloatLE(i * 4);
  } else if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset, count);
    for (let i = 0; i < count; i++) bits[i] = raw.readUInt16LE(i * 2) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(raw.readUInt16LE(i * 2));
  }
}

/**
 * The bytes before a safetensors file's data — 8-byte little-endian header size, then the JSON header padded with
 * spaces to a multiple of 8 — for tensors stored back to back in order as `dtype`; and the data's total size.
 */
export function safetensorsHeader(tensors: { name: string; shape: number[] }[], dtype: SafetensorsDtype,
  metadata: Record<string, string> = {}): { header: Buffer; dataBytes: number } {
  const entries: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const tensor of tensors) {
    const size = tensor.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    entries[tensor.name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let text = JSON.stringify(entries);
  text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const json = Buffer.from(text, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return { header: Buffer.concat([prefix, json]), dataBytes: offset };
}

/**
 * Writes `tensors` to `file` as `dtype`, atomically (a temporary file renamed into place, so an interrupted write
 * never leaves a truncated checkpoint behind).
 */
export function writeSafetensors(file: string, tensors: NamedTensor[], dtype: SafetensorsDtype,
  metadata: Record<string, string> = {}): number {
  const { header, dataBytes } = safetensorsHeader(tensors, dtype, metadata);
  const temporary = `${file}.partial`;
  const fd = fs.openSync(temporary, 'w');
  try {
    fs.writeSync(fd, header);
    for (const tensor of tensors) {
      const encoded = Buffer.alloc(tensor.data.length * BYTES[dtype]);
      encodeTensorChunk(tensor.data, dtype, encoded);
      fs.writeSync(fd, encoded);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file);
  return dataBytes;
}

/** Where one tensor's bytes are: `file`, from absolute byte `offset`, `bytes` long. */
export interface TensorLocation {
  name: string;
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  offset: number;
  bytes: number;
}

/**
 * Reads only the header of a .safetensors file and checks every entry (known dtype, data_offsets matching the
 * shape and inside the file); the data stays on disk, for readers that stream it.
 */
export function readSafetensorsHeader(file: string): TensorLocation[] {
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) throw new Error(`${file}: too short for a safetensors header`);
    const prefix = Buffer.alloc(8);
    fs.readSync(fd, prefix, 0, 8, 0);
    const headerSize = Number(prefix.readBigUInt64LE(0));
    if (8 + headerSize > fileSize) throw new Error(`${file}: header size ${headerSize} exceeds the file size ${fileSize}`);
    const json = Buffer.alloc(headerSize);
    fs.readSync(fd, json, 0, headerSize, 8);
    const header = JSON.parse(json.toString('utf8')) as
      Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const dataStart = 8 + headerSize;
    const locations: TensorLocation[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const bytes = BYTES[entry.dtype as SafetensorsDtype];
      if (!bytes) throw new Error(`${file}: tensor ${name} has unsupported dtype ${entry.dtype}`);
      const count = entry.shape.reduce((a, b) => a * b, 1);
      const [begin, end] = entry.data_offsets;
      if (end - begin !== count * bytes || dataStart + end > fileSize) {
        throw new Error(`${file}: tensor ${name} data_offsets [${begin}, ${end}] do not fit shape [${entry.shape}] ${entry.dtype}`);
      }
      locations.push({ name, file, dtype: entry.dtype as SafetensorsDtype, shape: entry.shape, offset: dataStart + begin, bytes: end - begin });
    }
    return locations;
  } finally {
    fs.closeSync(fd);
  }
}

/** The tensors of a checkpoint folder, by name: model.safetensors, or the shards its index lists. */
export function checkpointTensorLocations(dir: string): Map<string, TensorLocation> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const locations = new Map<string, TensorLocation>();
  if (!fs.existsSync(indexFile)) {
    for (const location of readSafetensorsHeader(path.join(dir, 'model.safetensors'))) locations.set(location.name, location);
    return locations;
  }
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
  for (const shard of new Set(Object.values(index.weight_map))) {
    for (const location of readSafetensorsHeader(path.join(dir, shard))) {
      if (index.weight_map[location.name] !== shard) throw new Error(`${shard}: tensor ${location.name} is not mapped to this shard in the index`);
      locations.set(location.name, location);
    }
  }
  for (const name of Object.keys(index.weight_map)) {
    if (!locations.has(name)) throw new Error(`${indexFile}: tensor ${name} missing from ${index.weight_map[name]}`);
  }
  return locations;
}

/** Reads the located tensors (all from one file), widened to f32. */
function readLocatedTensors(file: string, locations: Iterable<TensorLocation>): Map<string, NamedTensor> {
  const buffer = fs.readFileSync(file);
  const tensors = new Map<string, NamedTensor>();
  for (const { name, dtype, shape, offset, bytes } of locations) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    decodeTensorChunk(buffer.subarray(offset, offset + bytes), dtype, data);
    tensors.set(name, { name, shape, data });
  }
  return tensors;
}

/** Reads every tensor of one .safetensors file, widened to f32. */
export function readSafetensors(file: string): Map<string, NamedTensor> {
  return readLocatedTensors(file, readSafetensorsHeader(file));
}

/** Reads every tensor of a checkpoint folder: model.safetensors, or the shards its index lists. */
export function readCheckpointTensors(dir: string): Map<string, NamedTensor> {
  const byFile = new Map<string, TensorLocation[]>();
  for (const location of checkpointTensorLocations(dir).values()) {
    byFile.set(location.file, [...(byFile.get(location.file) ?? []), location]);
  }
  const tensors = new Map<string, NamedTensor>();
  for (const [file, locations] of byFile) {
    for (const [name, tensor] of readLocatedTensors(file, locations)) tensors.set(name, tensor);
  }
  return tensors;
}
