// Mutations of safetensors files: the header's shapes, dtypes, data_offsets, names and __metadata__, the header
// length and text, and the tensor data. The format's rules (README "Limits and trust model") decide what must be
// refused: a tensor whose bytes do not match its shape and dtype, offsets that overlap, leave holes or run past the
// data, trailing bytes, a header length off by any amount, names that are not UTF-8 or repeat, metadata that is not
// a map of strings to strings, and any change to a tensor the config sizes.
import type { FixtureInfo, SafetensorsFile } from './checkpoint-files.js';
import { RAW_PLACEHOLDER, replaceFile, safetensorsBytes } from './checkpoint-files.js';
import type { Mutation, MutationFamily } from './mutation.js';
import { NUMBER_VALUES, OTHER_TYPE_VALUES, type Rng } from './values.js';

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };

const tensorNames = (file: SafetensorsFile) => Object.keys(file.header).filter((name) => name !== '__metadata__');

function pickTensor(rng: Rng, fixture: FixtureInfo): { file: SafetensorsFile; name: string; entry: Entry } {
  const file = rng.pick(fixture.safetensors);
  const name = rng.pick(tensorNames(file));
  return { file, name, entry: file.header[name] };
}

/** A mutation that rewrites `file` with a new header object (same data, fresh padding). */
function headerEdit(
  kind: string, file: SafetensorsFile, description: string, expect: Mutation['expect'],
  edit: (header: Record<string, any>) => void,
): Mutation {
  return {
    kind, target: file.name, description: `${file.name}: ${description}`, expect,
    apply: (dir) => {
      const header = structuredClone(file.header);
      edit(header);
      replaceFile(dir, file.name, safetensorsBytes(JSON.stringify(header), file.data));
    },
  };
}

/** A mutation that rewrites `file` as `bytes(file)`. */
function bytesEdit(kind: string, file: SafetensorsFile, description: string, expect: Mutation['expect'], bytes: () => Buffer): Mutation {
  return { kind, target: file.name, description: `${file.name}: ${description}`, expect, apply: (dir) => replaceFile(dir, file.name, bytes()) };
}

function shape(rng: Rng, fixture: FixtureInfo): Mutation {
  const { file, name, entry } = pickTensor(rng, fixture);
  const kind = 'safetensors.shape';
  const op = rng.int(5);
  if (op === 0) {
    const dim = rng.int(entry.shape.length);
    const value = rng.pick(rng.chance(0.8) ? NUMBER_VALUES : OTHER_TYPE_VALUES).value;
    if (value === entry.shape[dim]) return headerEdit(kind, file, `${name} unchanged`, undefined, () => {});
    return headerEdit(kind, file, `${name} shape[${dim}] = ${JSON.stringify(value) ?? String(value)}`, 'refuse', (header) => {
      header[name].shape[dim] = value;
    });
  }
  if (op === 1 && entry.shape.length === 2 && entry.shape[0] !== entry.shape[1]) {
    return headerEdit(kind, file, `${name} shape transposed`, 'refuse', (header) => header[name].shape.reverse());
  }
  if (op === 2) return headerEdit(kind, file, `${name} shape gains a trailing 1`, 'refuse', (header) => header[name].shape.push(1));
  if (op === 3) return headerEdit(kind, file, `${name} shape loses its last dim`, 'refuse', (header) => header[name].shape.pop());
  const replacement = rng.pick(['"64"', 'null', '{}', '[[64]]']);
  return headerEdit(kind, file, `${name} shape = ${replacement}`, 'refuse', (header) => (header[name].shape = JSON.parse(replacement)));
}

const HALF_TYPES = ['F16', 'BF16'];

function dtype(rng: Rng, fixture: FixtureInfo): Mutation {
  const { file, name, entry } = pickTensor(rng, fixture);
  const dtypeValue = rng.pick(['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'I64', 'BOOL', 'F8_E4M3', 'bf16', 'f32', '', 'Q8', 7, null, ['F32']]);
  if (dtypeValue === entry.dtype) return headerEdit('safetensors.dtype', file, `${name} dtype unchanged`, undefined, () => {});
  // Same-sized half types swap legally (a checkpoint may mix dtypes): only the values change.
  const expect = HALF_TYPES.includes(entry.dtype) && HALF_TYPES.includes(dtypeValue as string) ? undefined : 'refuse';
  return headerEdit('safetensors.dtype', file, `${name} dtype ${entry.dtype} -> ${JSON.stringify(dtypeValue)}`, expect, (header) => {
    header[name].dtype = dtypeValue;
  });
}

function dataOffsets(rng: Rng, fixture: FixtureInfo): Mutation {
  const { file, name, entry } = pickTensor(rng, fixture);
  const [begin, end] = entry.data_offsets;
  const kind = 'safetensors.data_offsets';
  const set = (offsets: unknown, what: string) =>
    headerEdit(kind, file, `${name} data_offsets ${JSON.stringify(entry.data_offsets)} -> ${what}`, 'refuse', (header) => {
      header[name].data_offsets = offsets;
    });
  const op = rng.int(7);
  if (op === 0) {
    const shift = rng.pick([-8, -2, -1, 1, 2, 8, 4096, 2 ** 32]);
    return set([begin + shift, end + shift], `shifted by ${shift}`);
  }
  if (op === 1) {
    const delta = rng.pick([-1, 1, -(end - begin), end - begin]);
    return set([begin, end + delta], `end ${delta > 0 ? '+' : ''}${delta}`);
  }
  if (op === 2 && end > begin) return set([end, begin], 'swapped');
  if (op === 3) {
    const other = rng.pick(tensorNames(file).filter((other) => other !== name));
    if (other) return set(file.header[other].data_offsets, `those of ${other}`);
  }
  if (op === 4) return set([2 ** 53, 2 ** 53 + end - begin], 'past 2^53');
  const forms: unknown[] = [[begin], [begin, end, end], '0', null, [begin, String(end)], [-1, end], [begin + 0.5, end], []];
  const form = rng.pick(forms);
  return set(form, JSON.stringify(form));
}

function names(rng: Rng, fixture: FixtureInfo): Mutation {
  const { file, name, entry } = pickTensor(rng, fixture);
  const kind = 'safetensors.names';
  const dataEnd = file.data.length;
  const op = rng.int(7);
  if (op === 0) {
    const renamed = rng.pick([`${name}2`, '', 'a'.repeat(100_000), `${name}\u0000`, name.toUpperCase(), `model.layers.999.${name}`]);
    return headerEdit(kind, file, `${name} renamed to ${JSON.stringify(renamed.slice(0, 60))}`, 'refuse', (header) => {
      header[renamed] = header[name];
      delete header[name];
    });
  }
  if (op === 1) {
    return bytesEdit(kind, file, `${name} listed twice`, 'refuse', () =>
      safetensorsBytes(file.headerText.replace('{', () => `{${JSON.stringify(name)}:${JSON.stringify(entry)},`), file.data));
  }
  if (op === 2) {
    return bytesEdit(kind, file, `${name}: a byte of its name is not UTF-8`, 'refuse', () => {
      const text = Buffer.from(file.headerText);
      const at = text.indexOf(Buffer.from(JSON.stringify(name))) + 1 + rng.int(Math.max(1, name.length));
      text[at] = rng.pick([0xff, 0xc0, 0x80, 0xed]);
      return safetensorsBytes(text, file.data);
    });
  }
  if (op === 3) {
    return {
      kind, target: file.name, expect: undefined, description: `${file.name}: an extra F32 [2] tensor "extra.weight" after the data`,
      apply: (dir) => {
        const header = { ...file.header, 'extra.weight': { dtype: 'F32', shape: [2], data_offsets: [dataEnd, dataEnd + 8] } };
        replaceFile(dir, file.name, safetensorsBytes(JSON.stringify(header), Buffer.concat([file.data, Buffer.alloc(8)])));
      },
    };
  }
  const extraShape = rng.pick([[0], [0, 2 ** 40], [2 ** 40, 2 ** 24], [2 ** 31, 2 ** 31], [2 ** 62, 4], [-1, 0]]);
  const empty = extraShape.some((dim) => dim === 0);
  return headerEdit(kind, file, `an extra tensor of shape ${JSON.stringify(extraShape)} with 0 bytes`, empty ? undefined : 'refuse', (header) => {
    header['extra.\u00e9'] = { dtype: 'F32', shape: extraShape, data_offsets: [dataEnd, dataEnd] };
  });
}

function metadata(rng: Rng, fixture: FixtureInfo): Mutation {
  const file = rng.pick(fixture.safetensors);
  const kind = 'safetensors.metadata';
  const set = (value: unknown, what: string, expect: Mutation['expect']) =>
    headerEdit(kind, file, `__metadata__ = ${what}`, expect, (header) => {
      if (value === undefined) delete header.__metadata__;
      else header.__metadata__ = value;
    });
  const op = rng.int(8);
  if (op === 0) return set({ format: 'pt' }, '{"format": "pt"}', 'accept');
  if (op === 1) return set(undefined, '(removed)', 'accept');
  if (op === 2) {
    const value = rng.pick([5, {}, ['pt'], null, true]);
    return set({ format: value }, `{"format": ${JSON.stringify(value)}}`, 'refuse');
  }
  if (op === 3) {
    const value = rng.pick([[], 'pt', 5, null]);
    return set(value, JSON.stringify(value), value === null ? undefined : 'refuse');
  }
  if (op === 4) {
    const count = rng.pick([1000, 200_000]);
    const many = Object.fromEntries(Array.from({ length: count }, (_, i) => [`key${i}`, 'v']));
    return set(many, `${count} string entries`, 'accept');
  }
  const length = rng.pick([1000, 1_100_000, 3_000_000]);
  return bytesEdit(kind, file, `__metadata__ holds an array of ${length} numbers`, 'refuse', () => {
    const header = { ...file.header, __metadata__: RAW_PLACEHOLDER };
    const text = JSON.stringify(header).replace(JSON.stringify(RAW_PLACEHOLDER), () => `{"x":[${'0,'.repeat(length - 1)}0]}`);
    return safetensorsBytes(text, file.data);
  });
}

function headerLength(rng: Rng, fixture: FixtureInfo): Mutation {
  const file = rng.pick(fixture.safetensors);
  const jsonLength = Buffer.byteLength(file.headerText);
  const padding = rng.pick([0, 8]);
  const delta = rng.pick([-1, 1, -2, 2, -8, 8, -jsonLength, -jsonLength + 1, 2 ** 32, 2 ** 40, file.data.length + 1]);
  const description = `header length off by ${delta} (JSON ${jsonLength} bytes + ${padding} spaces)`;
  return bytesEdit('safetensors.header_length', file, description, 'refuse', () =>
    safetensorsBytes(file.headerText, file.data, padding, delta));
}

function headerText(rng: Rng, fixture: FixtureInfo): Mutation {
  const { file, name } = pickTensor(rng, fixture);
  const kind = 'safetensors.header_text';
  const text = file.headerText;
  const op = rng.int(8);
  if (op === 0) return bytesEdit(kind, file, 'a space before the {', 'refuse', () => safetensorsBytes(` ${text}`, file.data));
  if (op === 1) return bytesEdit(kind, file, 'padded with NULs', 'refuse', () => safetensorsBytes(`${text}\0\0\0\0`, file.data));
  if (op === 2) return bytesEdit(kind, file, 'padded with "xyz"', 'refuse', () => safetensorsBytes(`${text}xyz`, file.data));
  if (op === 3) {
    const at = 1 + rng.int(text.length - 1);
    return bytesEdit(kind, file, `JSON cut at byte ${at}`, 'refuse', () => safetensorsBytes(text.slice(0, at), file.data));
  }
  if (op === 4) return bytesEdit(kind, file, 'the root is an array', 'refuse', () => safetensorsBytes(`[${text}]`, file.data));
  if (op === 5) {
    const depth = rng.pick([65, 1000, 1_000_000]);
    return bytesEdit(kind, file, `__metadata__ nested ${depth} deep`, 'refuse', () =>
      safetensorsBytes(text.replace('{', () => `{"__metadata__":{"x":${'['.repeat(depth)}${']'.repeat(depth)}},`), file.data));
  }
  if (op === 6) {
    const value = rng.pick([5, 'x', [], null]);
    return headerEdit(kind, file, `${name} = ${JSON.stringify(value)}`, 'refuse', (header) => (header[name] = value));
  }
  const key = rng.pick(['dtype', 'shape', 'data_offsets', 'extra']);
  return headerEdit(kind, file, key === 'extra' ? `${name} gains a key "extra"` : `${name} loses "${key}"`,
    key === 'extra' ? undefined : 'refuse', (header) => {
      if (key === 'extra') header[name].extra = 1;
      else delete header[name][key];
    });
}

function data(rng: Rng, fixture: FixtureInfo): Mutation {
  const file = rng.pick(fixture.safetensors);
  const kind = 'safetensors.data';
  const whole = safetensorsBytes(file.headerText, file.data);
  const dataStart = whole.length - file.data.length;
  const op = rng.int(6);
  if (op === 0) {
    const cut = dataStart + rng.int(file.data.length);
    return bytesEdit(kind, file, `truncated to ${cut} of ${whole.length} bytes (in the data)`, 'refuse', () => whole.subarray(0, cut));
  }
  if (op === 1) {
    const cut = rng.int(dataStart);
    return bytesEdit(kind, file, `truncated to ${cut} bytes (in the header)`, 'refuse', () => whole.subarray(0, cut));
  }
  if (op === 2) {
    const extra = rng.pick([1, 7, 4096]);
    return bytesEdit(kind, file, `${extra} bytes appended`, 'refuse', () => Buffer.concat([whole, Buffer.alloc(extra, 0x41)]));
  }
  if (op === 3) {
    const flips = Array.from({ length: 16 }, () => dataStart + rng.int(file.data.length));
    return bytesEdit(kind, file, `16 data bytes flipped`, undefined, () => {
      const copy = Buffer.from(whole);
      for (const at of flips) copy[at] ^= 0xff;
      return copy;
    });
  }
  if (op === 4) {
    return bytesEdit(kind, file, 'every data byte 0xff (NaN weights)', undefined, () =>
      Buffer.concat([whole.subarray(0, dataStart), Buffer.alloc(file.data.length, 0xff)]));
  }
  return bytesEdit(kind, file, 'empty file', 'refuse', () => Buffer.alloc(0));
}

export const SAFETENSORS_FAMILIES: MutationFamily[] = [
  { kind: 'safetensors.shape', weight: 3, generate: shape },
  { kind: 'safetensors.dtype', weight: 2, generate: dtype },
  { kind: 'safetensors.data_offsets', weight: 3, generate: dataOffsets },
  { kind: 'safetensors.names', weight: 3, generate: names },
  { kind: 'safetensors.metadata', weight: 2, generate: metadata },
  { kind: 'safetensors.header_length', weight: 2, generate: headerLength },
  { kind: 'safetensors.header_text', weight: 2, generate: headerText },
  { kind: 'safetensors.data', weight: 3, generate: data },
];
