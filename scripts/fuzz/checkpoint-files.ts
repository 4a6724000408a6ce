// The fuzzer's view of a fixture checkpoint folder: what it holds (parsed once per run), how a case gets its own
// copy (hard links, so unmutated files cost nothing), and the file edits mutations are made of. Every edit replaces
// the file (unlink, then write a new one) and never writes through a link, so the fixture stays untouched.
import fs from 'node:fs';
import path from 'node:path';

export interface SafetensorsFile {
  name: string; // file name in the folder
  headerText: string; // the JSON after the 8-byte length, padding removed
  header: Record<string, any>;
  data: Buffer; // the bytes after the header
}

export interface FixtureInfo {
  name: string;
  dir: string;
  files: string[]; // every file of the folder except the fixture's own marker
  configText: string;
  config: Record<string, any>;
  safetensors: SafetensorsFile[];
  hasTokenizer: boolean;
  vocabSize: number;
  numLayers: number;
  maxPositions: number;
}

export function readSafetensors(file: string): Omit<SafetensorsFile, 'name'> {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const headerText = bytes.subarray(8, 8 + length).toString('utf8').trimEnd();
  return { headerText, header: JSON.parse(headerText), data: bytes.subarray(8 + length) };
}

/** safetensors bytes: the stated length is the JSON's (plus `padding` spaces) plus `lengthDelta`. */
export function safetensorsBytes(headerText: string | Buffer, data: Buffer, padding = 0, lengthDelta = 0): Buffer {
  const json = Buffer.concat([Buffer.from(headerText), Buffer.alloc(padding, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Math.max(0, json.length + lengthDelta)));
  return Buffer.concat([prefix, json, data]);
}

export function describeFixture(name: string, dir: string): FixtureInfo {
  const files = fs.readdirSync(dir).filter((file) => !file.startsWith('.')).sort();
  const configText = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
  const config = JSON.parse(configText);
  const safetensors = files
    .filter((file) => file.endsWith('.safetensors'))
    .map((file) => ({ name: file, ...readSafetensors(path.join(dir, file)) }));
  return {
    name, dir, files, configText, config, safetensors,
    hasTokenizer: files.includes('tokenizer.json'),
    vocabSize: config.vocab_size,
    numLayers: config.num_hidden_layers,
    maxPositions: config.max_position_embeddings ?? 2048,
  };
}

/** A fresh folder `caseDir` holding the fixture's files as hard links (copies where links are not possible). */
export function materialize(fixture: FixtureInfo, caseDir: string): void {
  fs.rmSync(caseDir, { recursive: true, force: true });
  fs.mkdirSync(caseDir, { recursive: true });
  for (const file of fixture.files) {
    const from = path.join(fixture.dir, file);
    const to = path.join(caseDir, file);
    try {
      fs.linkSync(from, to);
    } catch {
      fs.copyFileSync(from, to);
    }
  }
}

/** Replaces `file` in `dir` with `content` (a new file: a hard-linked original is left as it was). */
export function replaceFile(dir: string, file: string, content: string | Buffer): void {
  const target = path.join(dir, file);
  fs.rmSync(target, { recursive: true, force: true });
  fs.writeFileSync(target, content);
}

/** Replaces `file` with a symbolic link to `to`. */
export function replaceWithSymlink(dir: string, file: string, to: string): void {
  const target = path.join(dir, file);
  fs.rmSync(target, { recursive: true, force: true });
  fs.symlinkSync(to, target);
}

/** A string no fixture holds, replaced by raw JSON text after JSON.stringify. */
export const RAW_PLACEHOLDER = '@@fuzz-raw-value@@';

/** The JSON text of `value` with `key` set to the raw JSON text `raw` (which may be invalid JSON: NaN, 1e999, …). */
export function withRawField(value: Record<string, unknown>, key: string, raw: string): string {
  const text = JSON.stringify({ ...value, [key]: RAW_PLACEHOLDER }, null, 2);
  return text.replace(JSON.stringify(RAW_PLACEHOLDER), () => raw);
}

/** `text` (a JSON object) with `"key": raw` added before its first key (first = false: after its last). */
export function withDuplicateKey(text: string, key: string, raw: string, first: boolean): string {
  const entry = `${JSON.stringify(key)}: ${raw}`;
  if (first) return text.replace('{', () => `{${entry}, `);
  const end = text.lastIndexOf('}');
  return `${text.slice(0, end)}, ${entry}${text.slice(end)}`;
}
