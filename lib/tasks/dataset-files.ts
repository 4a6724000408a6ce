// Finding and reading a benchmark dataset's files, all local: `--data PATH` (a parquet or jsonl file, or a folder of
// them), else the dataset's snapshot in the HuggingFace cache (hub/datasets--ORG--NAME/snapshots/REV/…) as
// `hf download` leaves it. Parquet is read with hyparquet (+ its compressors), only the needed columns and, for
// n-shot examples from a large train split, only the needed rows.
import fs from 'node:fs';
import path from 'node:path';

import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

import { huggingFaceHubCache } from '../model-path.js';
import type { HubDataset, Row } from './task-datasets.js';

/** A bad dataset file or a missing one: a message naming the file and what to do, before any model work. */
export class DatasetError extends Error {}

const TABLE_EXTENSIONS = ['.parquet', '.jsonl', '.json'];
const MAX_SEARCH_DEPTH = 5;

/** Table files under `dir` (recursive, symlinks followed as the HF cache needs), sorted by path. */
function tableFiles(dir: string, depth = 0): string[] {
  if (depth > MAX_SEARCH_DEPTH) return [];
  const found: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const full = path.join(dir, name);
    const stat = fs.statSync(full, { throwIfNoEntry: false });
    if (stat?.isDirectory()) found.push(...tableFiles(full, depth + 1));
    else if (stat?.isFile() && TABLE_EXTENSIONS.some((extension) => name.endsWith(extension))) found.push(full);
  }
  return found;
}

/**
 * The files of one split among `files` (paths relative to `root`): the split's name as a whole path part —
 * "3.0.0/test-00000-of-00001.parquet", "default/test/0000.parquet", "xsum-test.parquet" — restricted to the
 * configuration's folder when the files have one.
 */
export function splitFiles(root: string, files: string[], split: string, config?: string): string[] {
  const partOf = new RegExp(`(^|[/._-])${split}([/._-]|$)`);
  const relative = (file: string) => path.relative(root, file).split(path.sep).join('/');
  let matching = files.filter((file) => partOf.test(relative(file)));
  if (config !== undefined) {
    const inConfig = matching.filter((file) => relative(file).split('/').includes(config));
    if (inConfig.length > 0) matching = inConfig;
  }
  return matching;
}

/** The snapshot folders of a cached Hub dataset, newest first. */
function cachedSnapshots(repo: string): string[] {
  const snapshots = path.join(huggingFaceHubCache(), `datasets--${repo.replace('/', '--')}`, 'snapshots');
  if (!fs.existsSync(snapshots)) return [];
  return fs
    .readdirSync(snapshots)
    .map((name) => path.join(snapshots, name))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
}

export interface SplitSource {
  split: string;
  files: string[];
}

/**
 * The files holding `split`: from --data (a file is taken as the test split itself; a folder is searched like a
 * snapshot), else from the HuggingFace cache. Throws a DatasetError saying which files to download when none exist.
 */
export function locateSplit(options: { data?: string; hub?: HubDataset; split: string; datasetName: string }): SplitSource {
  const { data, hub, split } = options;
  if (data !== undefined) {
    const resolved = path.resolve(data);
    const stat = fs.statSync(resolved, { throwIfNoEntry: false });
    if (!stat) throw new DatasetError(`--data ${data}: no such file or folder`);
    if (stat.isFile()) {
      if (split === 'test') return { split, files: [resolved] };
      const siblings = splitFiles(path.dirname(resolved), tableFiles(path.dirname(resolved)), split, hub?.config);
      if (siblings.length > 0) return { split, files: siblings };
      throw new DatasetError(
        `--data ${data} is one file, taken as the test split; the ${split} split (for --n-shot) needs its own files: ` +
          `pass --data a folder holding both, e.g. the dataset's snapshot`,
      );
    }
    const files = splitFiles(resolved, tableFiles(resolved), split, hub?.config);
    if (files.length > 0) return { split, files };
    throw new DatasetError(`--data ${data}: no .parquet or .jsonl file of the ${split} split in that folder (looked for "${split}" in the file paths)`);
  }
  if (!hub) throw new DatasetError(`${options.datasetName} needs --data FILE.jsonl`);
  for (const snapshot of cachedSnapshots(hub.repo)) {
    const files = splitFiles(snapshot, tableFiles(snapshot), split, hub.config);
    if (files.length > 0) return { split, files };
  }
  throw new DatasetError(
    `${options.datasetName} reads the ${split} split of the Hub dataset ${hub.repo}${hub.config ? ` (${hub.config})` : ''}, ` +
      `not found in the HuggingFace cache (${huggingFaceHubCache()}). layerskip does not download; get it with\n` +
      `  ${hub.download(split)}\n` +
      `or pass --data PATH (a parquet or jsonl file, or a folder of them)`,
  );
}

/** A table file opened for reading: its row count and a reader of rows [start, end) for some columns. */
interface OpenTable {
  file: string;
  rows: number;
  columns: string[];
  read(columns: string[], start: number, end: number): Promise<Row[]>;
}

async function openParquet(file: string): Promise<OpenTable> {
  let buffer: AsyncBuffer;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw new DatasetError(`${file}: not a readable parquet file (${(error as Error).message})`);
  }
  const columns = parquetSchema(metadata).children.map((child) => child.element.name);
  return {
    file,
    rows: Number(metadata.num_rows),
    columns,
    read: async (wanted, start, end) => {
      try {
        return (await parquetReadObjects({ file: buffer, metadata, columns: wanted, rowStart: start, rowEnd: end, compressors })) as Row[];
      } catch (error) {
        throw new DatasetError(`${file}: cannot read rows ${start}–${end} (${(error as Error).message})`);
      }
    },
  };
}

/** The JSON objects of a JSONL text, one per non-blank line, with their line numbers; `file` names it in errors. */
export function parseJsonLines(text: string, file: string): { line: number; record: Row }[] {
  const records: { line: number; record: Row }[] = [];
  text.split('\n').forEach((content, index) => {
    if (content.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(content);
    } catch (error) {
      throw new DatasetError(`${file}:${index + 1}: not JSON (${(error as Error).message})`);
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new DatasetError(`${file}:${index + 1}: not a JSON object`);
    records.push({ line: index + 1, record: record as Row });
  });
  return records;
}

function openJsonLines(file: string): OpenTable {
  const rows = parseJsonLines(fs.readFileSync(file, 'utf8'), file).map(({ record }) => record);
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return { file, rows: rows.length, columns, read: async (wanted, start, end) => rows.slice(start, end) };
}

async function openTable(file: string): Promise<OpenTable> {
  if (file.endsWith('.parquet')) return openParquet(file);
  if (file.endsWith('.jsonl') || file.endsWith('.json')) return openJsonLines(file);
  throw new DatasetError(`${file}: not a .parquet or .jsonl file`);
}

/** The rows of a split, concatenated over its files in order, for reading all of them or chosen ones. */
export class SplitTable {
  private constructor(
    readonly files: string[],
    private readonly tables: OpenTable[],
    private readonly wanted: string[],
  ) {}

  /** Opens every file of the split and checks each holds the wanted columns. */
  static async open(source: SplitSource, wanted: string[]): Promise<SplitTable> {
    const tables: OpenTable[] = [];
    for (const file of source.files) {
      const table = await openTable(file);
      const missing = wanted.filter((column) => !table.columns.includes(column));
      if (missing.length > 0 && table.rows > 0) {
        throw new DatasetError(
          `${file}: no column ${missing.map((column) => JSON.stringify(column)).join(', ')} ` +
            `(its columns: ${table.columns.map((column) => JSON.stringify(column)).join(', ') || 'none'})`,
        );
      }
      tables.push(table);
    }
    const split = new SplitTable(source.files, tables, wanted);
    if (split.rowCount === 0) throw new DatasetError(`${source.files.join(', ')}: the ${source.split} split has no rows`);
    return split;
  }

  get rowCount(): number {
    return this.tables.reduce((sum, table) => sum + table.rows, 0);
  }

  /** Every row, in file order. */
  async readAll(): Promise<Row[]> {
    const rows: Row[] = [];
    for (const table of this.tables) rows.push(...this.checked(table, await table.read(this.wanted, 0, table.rows), 0));
    return rows;
  }

  /** The rows at the given global indices, in the order given. */
  async readRows(indices: number[]): Promise<Row[]> {
    const rows: Row[] = [];
    for (const index of indices) {
      const { table, row } = this.locate(index);
      rows.push(...this.checked(table, await table.read(this.wanted, row, row + 1), row));
    }
    return rows;
  }

  // The file holding the split's row `index`, and that row's index within the file.
  private locate(index: number): { table: OpenTable; row: number } {
    let row = index;
    for (const table of this.tables) {
      if (row < table.rows) return { table, row };
      row -= table.rows;
    }
    throw new RangeError(`row ${index} is past the split's ${this.rowCount} rows`);
  }

  // Every wanted value must be a string (the published schemas' type): a clear error otherwise.
  private checked(table: OpenTable, rows: Row[], firstRow: number): Row[] {
    rows.forEach((row, i) => {
      for (const column of this.wanted) {
        if (typeof row[column] !== 'string') {
          const where = table.file.endsWith('.parquet') ? `row ${firstRow + i}` : `record ${firstRow + i + 1}`;
          throw new DatasetError(`${table.file}: ${where}: column "${column}" is ${row[column] === undefined ? 'missing' : `not a string (${JSON.stringify(row[column])?.slice(0, 40)})`}`);
        }
      }
    });
    return rows;
  }
}
