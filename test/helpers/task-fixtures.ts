// Tiny copies of LayerSkip's benchmark datasets in their published schemas (column names and string types), laid
// out as `hf download` leaves them in the HuggingFace cache: hub/datasets--ORG--NAME/snapshots/REV/… Parquet is
// written with hyparquet-writer (snappy, as the Hub's files; humaneval with gzip to exercise the compressors).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { parquetWriteBuffer } from 'hyparquet-writer';

export type Table = Record<string, string[]>;

export function writeParquet(file: string, table: Table, options: { codec?: 'SNAPPY' | 'GZIP'; rowGroupSize?: number } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const columnData = Object.entries(table).map(([name, data]) => ({ name, data, type: 'STRING' as const }));
  const compressors = { GZIP: (bytes: Uint8Array) => new Uint8Array(zlib.gzipSync(bytes)) };
  const buffer = parquetWriteBuffer({ columnData, codec: options.codec ?? 'SNAPPY', compressors, rowGroupSize: options.rowGroupSize });
  fs.writeFileSync(file, Buffer.from(buffer));
}

export function writeJsonLines(file: string, rows: object[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((row) => JSON.stringify(row) + '\n').join(''));
}

const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** CNN/DailyMail 3.0.0 rows: `article`, `highlights` (newline-separated sentences, as published), `id`. */
export function cnnTable(count: number, prefix = 'test'): Table {
  return {
    article: numbered(`${prefix} article `, count).map((text, i) => `${text} (CNN) -- words ${'w '.repeat(i)}end.`),
    highlights: numbered(`${prefix} highlight `, count).map((text) => `${text} first.\n${text} second.`),
    id: numbered(`${prefix}-id-`, count),
  };
}

export interface HubCache {
  home: string; // HF_HOME
  snapshot(repo: string): string;
}

/** An empty HF_HOME in a temporary folder; snapshot(repo) makes (and returns) a snapshot folder for a dataset. */
export function makeHubCache(): HubCache {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-hf-'));
  return {
    home,
    snapshot: (repo) => {
      const dir = path.join(home, 'hub', `datasets--${repo.replace('/', '--')}`, 'snapshots', '0123456789abcdef0123456789abcdef01234567');
      fs.mkdirSync(dir, { recursive: true });
      return dir;
    },
  };
}

/** Every Hub dataset of the benchmark, small, in the cache layouts their repositories have. */
export function writeAllHubDatasets(cache: HubCache): void {
  const cnn = cache.snapshot('abisee/cnn_dailymail');
  writeParquet(path.join(cnn, '3.0.0', 'test-00000-of-00001.parquet'), cnnTable(10), { rowGroupSize: 4 });
  // The train split in three shards of 3, 2 and 2 rows (n-shot reads across them).
  const train = cnnTable(7, 'train');
  const shard = (from: number, to: number): Table => Object.fromEntries(Object.entries(train).map(([k, v]) => [k, v.slice(from, to)]));
  writeParquet(path.join(cnn, '3.0.0', 'train-00000-of-00003.parquet'), shard(0, 3));
  writeParquet(path.join(cnn, '3.0.0', 'train-00001-of-00003.parquet'), shard(3, 5));
  writeParquet(path.join(cnn, '3.0.0', 'train-00002-of-00003.parquet'), shard(5, 7));
  // Another configuration's files, which must not be read.
  writeParquet(path.join(cnn, '1.0.0', 'test-00000-of-00001.parquet'), { ...cnnTable(2), article: ['WRONG CONFIG', 'WRONG CONFIG'] });

  const xsum = cache.snapshot('EdinburghNLP/xsum');
  writeParquet(path.join(xsum, 'default', 'test', '0000.parquet'), {
    document: ['The first document.\nIt has two lines.', 'Second document.'],
    summary: ['First summary.', 'Second\nsummary.'],
    id: ['38264402', '34227252'],
  });
  writeParquet(path.join(xsum, 'default', 'train', '0000.parquet'), {
    document: ['Train doc A.', 'Train doc B.', 'Train doc C.'],
    summary: ['Sum A\nwith newline.', 'Sum B.', 'Sum C.'],
    id: ['1', '2', '3'],
  });

  const humaneval = cache.snapshot('openai/openai_humaneval');
  writeParquet(
    path.join(humaneval, 'openai_humaneval', 'test-00000-of-00001.parquet'),
    {
      task_id: ['HumanEval/0', 'HumanEval/1'],
      prompt: ['def add(a, b):\n    """Add."""\n', 'def neg(x):\n    """Negate."""\n'],
      canonical_solution: ['    return a + b\n', '    return -x\n'],
      test: ['def check(candidate): pass\n', 'def check(candidate): pass\n'],
      entry_point: ['add', 'neg'],
    },
    { codec: 'GZIP' },
  );

  const top = cache.snapshot('WillHeld/top_v2');
  writeParquet(path.join(top, 'data', 'test-00000-of-00001.parquet'), {
    domain: ['alarm', 'weather'],
    utterance: ['set an alarm for 7 am', 'will it rain today'],
    semantic_parse: ['[IN:CREATE_ALARM [SL:DATE_TIME for 7 am ] ]', '[IN:GET_WEATHER [SL:WEATHER_ATTRIBUTE rain ] [SL:DATE_TIME today ] ]'],
  });
}
