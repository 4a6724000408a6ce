// A benchmark task's examples, from local files, chosen as LayerSkip chooses them: the test split in file order,
// shuffled with Python's `random.shuffle` after `random.seed(seed)`, the first --num-samples kept; n-shot examples
// are the first N of the train split under HF datasets' `shuffle(seed)` (numpy's default_rng(seed).permutation).
import { DatasetError, locateSplit, SplitTable } from './dataset-files.js';
import { numpyPermutation } from './numpy-random.js';
import { PythonRandom } from './python-random.js';
import { makeExamples, nShotBlock, TASK_DATASETS, type TaskDatasetName, type TaskExample } from './task-datasets.js';

export interface TaskLoadOptions {
  dataset: TaskDatasetName;
  /** A parquet or jsonl file (the test split) or a folder of them; default: the HuggingFace cache. */
  data?: string;
  /** Examples kept after shuffling; undefined = all. */
  numSamples?: number;
  /** Shuffle the examples before taking numSamples (LayerSkip's default: true). */
  randomShuffle?: boolean;
  /** Seeds the shuffle and the n-shot choice (LayerSkip's default 42). */
  seed?: number;
  /** Train examples prepended to every prompt (summarization tasks). */
  nShot?: number;
  /** Python-format template with a {message} field. */
  template?: string;
  promptField?: string;
  responseField?: string;
}

export interface LoadedTask {
  dataset: TaskDatasetName;
  examples: TaskExample[];
  /** Rows in the test split before sampling. */
  splitRows: number;
  files: string[];
  shotFiles: string[];
}

export const DEFAULT_TASK_SEED = 42;

export async function loadTask(options: TaskLoadOptions): Promise<LoadedTask> {
  const dataset = TASK_DATASETS[options.dataset];
  if (!dataset) throw new DatasetError(`unknown dataset "${options.dataset}"`);
  const fields = { promptField: options.promptField ?? 'prompt', responseField: options.responseField ?? 'response' };
  const seed = options.seed ?? DEFAULT_TASK_SEED;
  const nShot = options.nShot ?? 0;
  if (nShot > 0 && !dataset.nShotColumns) throw new DatasetError(`--n-shot applies to the summarization datasets, not ${dataset.name}`);
  if (options.numSamples !== undefined && options.numSamples < 1) {
    throw new DatasetError(`--num-samples must be ≥ 1, got ${options.numSamples} (leave it out for the whole split)`);
  }

  // Find every file first, so a missing split is reported before anything is read.
  const testSource = locateSplit({ data: options.data, hub: dataset.hub, split: 'test', datasetName: dataset.name });
  const trainSource = nShot > 0 ? locateSplit({ data: options.data, hub: dataset.hub, split: 'train', datasetName: dataset.name }) : undefined;

  let shots = '';
  if (trainSource && dataset.nShotColumns) {
    const train = await SplitTable.open(trainSource, dataset.nShotColumns);
    if (nShot > train.rowCount) throw new DatasetError(`--n-shot ${nShot} is more than the train split's ${train.rowCount} rows`);
    shots = nShotBlock(await train.readRows(numpyPermutation(seed, train.rowCount).slice(0, nShot)), dataset.nShotColumns);
  }

  const test = await SplitTable.open(testSource, dataset.columns(fields));
  const rows = await test.readAll();
  const order = rows.map((_, index) => index);
  if (options.randomShuffle ?? true) new PythonRandom(seed).shuffle(order);
  const chosen = order.slice(0, options.numSamples ?? order.length).map((index) => rows[index]);
  return {
    dataset: dataset.name,
    examples: makeExamples(dataset, chosen, { ...fields, shots, template: options.template }),
    splitRows: rows.length,
    files: testSource.files,
    shotFiles: trainSource?.files ?? [],
  };
}
