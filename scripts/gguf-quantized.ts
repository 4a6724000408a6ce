// The GGUF writer's reader for checkpoints written by `layerskip quantize` (README "Quantized checkpoints"): the
// quantization_config of config.json, the safetensors header of model.safetensors with its I8 / U8 planes (the
// package's header reader knows F32 / F16 / BF16 only), and the interleaving of a matrix's planes into ggml blocks.
//
// A quantized matrix "<name>.weight" [rows, cols] is stored as planes, block b of a row covering columns
// [32b, 32b + 32):
//   q8: <name>.qweight I8 [rows, cols], <name>.scales F16 [rows, cols / 32];            w = d·q
//   q4: <name>.qweight U8 [rows, cols / 2], <name>.scales and <name>.mins F16 [rows, cols / 32]; w = d·q + m,
//       block b = bytes [16b, 16b + 16) of the row's qweight, byte j = q[j] | q[j + 16] << 4.
// ggml's blocks hold the same numbers, so the conversion moves bytes and computes nothing:
//   GGML_TYPE_Q8_0 (34 bytes): | d f16 | q[0] … q[31] int8 |
//   GGML_TYPE_Q4_1 (20 bytes): | d f16 | m f16 | 16 bytes, byte j = q[j] (low nibble) | q[j + 16] (high nibble) |
import fs from 'node:fs';
import path from 'node:path';

export type QuantFormat = 'q8' | 'q4';

export const GGML_Q4_1 = 3;
export const GGML_Q8_0 = 8;
export const QUANT_BLOCK = 32;

/** Per format: the ggml type, its block's bytes, the header bytes before the quants (d, and m for Q4_1). */
export const GGML_BLOCKS: Record<QuantFormat, { type: number; name: string; blockBytes: number; headerBytes: number; quantBytes: number }> = {
  q8: { type: GGML_Q8_0, name: 'Q8_0', blockBytes: 34, headerBytes: 2, quantBytes: 32 },
  q4: { type: GGML_Q4_1, name: 'Q4_1', blockBytes: 20, headerBytes: 4, quantBytes: 16 },
};

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1 };

/** Where one tensor's bytes are, for any dtype a quantized checkpoint holds. */
export interface RawTensorLocation {
  name: string;
  file: string;
  dtype: string;
  shape: number[];
  offset: number;
  bytes: number;
}

/** A quantized matrix: its planes (mins for q4 only). */
export interface QuantizedPlanes {
  format: QuantFormat;
  qweight: RawTensorLocation;
  scales: RawTensorLocation;
  mins: RawTensorLocation | null;
}

/** The folder's quantization format, null for an unquantized checkpoint; throws on a config this cannot read. */
export function quantizationFormat(dir: string): QuantFormat | null {
  const file = path.join(dir, 'config.json');
  const config = (JSON.parse(fs.readFileSync(file, 'utf8')) as { quantization_config?: Record<string, unknown> | null }).quantization_config;
  if (config === undefined || config === null) return null;
  if (config.quant_method !== 'layerskip' || config.version !== 1 || config.block_size !== QUANT_BLOCK ||
      (config.format !== 'q8' && config.format !== 'q4')) {
    throw new Error(`${file}: quantization_config ${JSON.stringify(config)} is not a layerskip q8 / q4 checkpoint (version 1, 32-column blocks)`);
  }
  return config.format;
}

/** The tensors of a quantized folder's model.safetensors (the only file the quantizer writes), header checked. */
export function quantizedTensorLocations(dir: string): Map<string, RawTensorLocation> {
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    if (fileSize < 8 || fs.readSync(fd, prefix, 0, 8, 0) !== 8) throw new Error(`${file}: too short for a safetensors header`);
    const headerSize = Number(prefix.readBigUInt64LE(0));
    if (8 + headerSize > fileSize) throw new Error(`${file}: header size ${headerSize} exceeds the file size ${fileSize}`);
    const json = Buffer.alloc(headerSize);
    fs.readSync(fd, json, 0, headerSize, 8);
    const header = JSON.parse(json.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const locations = new Map<string, RawTensorLocation>();
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const size = DTYPE_BYTES[entry.dtype];
      if (!size) throw new Error(`${file}: tensor ${name} has unsupported dtype ${entry.dtype}`);
      const [begin, end] = entry.data_offsets;
      if (end - begin !== entry.shape.reduce((a, b) => a * b, 1) * size || 8 + headerSize + end > fileSize) {
        throw new Error(`${file}: tensor ${name} data_offsets [${begin}, ${end}] do not fit shape [${entry.shape}] ${entry.dtype}`);
      }
      locations.set(name, { name, file, dtype: entry.dtype, shape: entry.shape, offset: 8 + headerSize + begin, bytes: end - begin });
    }
    return locations;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The planes of matrix `weightName` ("….weight") of shape [rows, cols], or null when the folder stores it as a plain
 * weight (a kept head). Checks every plane's dtype and shape.
 */
export function quantizedPlanes(locations: Map<string, RawTensorLocation>, format: QuantFormat, weightName: string,
  rows: number, cols: number): QuantizedPlanes | null {
  const base = weightName.replace(/\.weight$/, '');
  const qweight = locations.get(`${base}.qweight`);
  if (!qweight) return null;
  const blocks = [rows, cols / QUANT_BLOCK];
  const plane = (suffix: string, dtype: string, shape: number[]): RawTensorLocation => {
    const location = locations.get(`${base}.${suffix}`);
    if (!location) throw new Error(`${qweight.file}: ${base}.qweight has no ${base}.${suffix}`);
    if (location.dtype !== dtype || location.shape.join(',') !== shape.join(',')) {
      throw new Error(`${location.file}: ${location.name} is ${location.dtype} [${location.shape}], expected ${dtype} [${shape}]`);
    }
    return location;
  };
  if (cols % QUANT_BLOCK !== 0) throw new Error(`${qweight.file}: ${base} has ${cols} columns, not a multiple of ${QUANT_BLOCK}`);
  plane('qweight', format === 'q8' ? 'I8' : 'U8', [rows, format === 'q8' ? cols : cols / 2]);
  return {
    format,
    qweight,
    scales: plane('scales', 'F16', blocks),
    mins: format === 'q4' ? plane('mins', 'F16', blocks) : null,
  };
}

/** The plane names `quantizedPlanes` reads for `weightName`. */
export function planeNames(weightName: string): string[] {
  const base = weightName.replace(/\.weight$/, '');
  return [`${base}.qweight`, `${base}.scales`, `${base}.mins`];
}

/**
 * ggml blocks of `rows` rows of `cols` columns: output row r is plane row sourceRow(r) (all rows index into the
 * given plane slices). qweight (rows · cols or rows · cols / 2 bytes), scales and mins (rows · cols / 32 f16).
 */
export function interleaveBlocks(format: QuantFormat, rows: number, cols: number, qweight: Uint8Array, scales: Uint8Array,
  mins: Uint8Array | null, sourceRow: (row: number) => number): Buffer {
  const { blockBytes, headerBytes, quantBytes } = GGML_BLOCKS[format];
  const blocksPerRow = cols / QUANT_BLOCK;
  const out = Buffer.alloc(rows * blocksPerRow * blockBytes);
  let at = 0;
  for (let row = 0; row < rows; row++) {
    const firstBlock = sourceRow(row) * blocksPerRow;
    for (let block = firstBlock; block < firstBlock + blocksPerRow; block++) {
      out[at] = scales[2 * block];
      out[at + 1] = scales[2 * block + 1];
      if (mins) {
        out[at + 2] = mins[2 * block];
        out[at + 3] = mins[2 * block + 1];
      }
      const quants = block * quantBytes;
      for (let i = 0; i < quantBytes; i++) out[at + headerBytes + i] = qweight[quants + i];
      at += blockBytes;
    }
  }
  return out;
}
