// LayerSkip's benchmark tasks (its data.py, f42c669): which Hub dataset each name reads, which columns, and how a row
// becomes a prompt and a reference — byte for byte as LayerSkip builds them. Pure functions over rows; finding and
// reading the files is dataset-files.ts, putting it together load-task.ts.
import { pythonSplit } from './python-strings.js';

export const TASK_DATASET_NAMES = [
  'cnn_dm_summarization',
  'xsum_summarization',
  'cnn_dm_lm',
  'human_eval',
  'top_v2',
  'custom_jsonl',
] as const;
export type TaskDatasetName = (typeof TASK_DATASET_NAMES)[number];

/** One benchmark example: the prompt given to the model and the reference its output is scored against. */
export interface TaskExample {
  prompt: string;
  reference: string;
}

export type Row = Record<string, unknown>;

export interface HubDataset {
  /** The Hub repository ("org/name") whose files LayerSkip's `load_dataset` reads. */
  repo: string;
  /** The dataset configuration, a folder in the repository (cnn_dailymail's "3.0.0"). */
  config?: string;
  /** The `hf download` arguments that fetch the split's files into the HuggingFace cache. */
  download: (split: string) => string;
}

export interface TaskDataset {
  name: TaskDatasetName;
  /** Where the data comes from when no --data is given (custom_jsonl has no Hub source). */
  hub?: HubDataset;
  /** Columns the prompt and reference are built from (custom_jsonl: --prompt-field / --response-field). */
  columns: (fields: { promptField: string; responseField: string }) => string[];
  /** Takes --n-shot: examples from the train split prepended to every prompt. */
  nShotColumns?: [document: string, summary: string];
  /** The examples one test row gives (with the n-shot block and the template applied by `makeExamples`). */
  build: (row: Row, fields: { promptField: string; responseField: string }) => { message: string; reference: string };
}

/** LayerSkip's prefix length for cnn_dm_lm: the first 100 words are the prompt, the rest the reference. */
export const LM_PREFIX_WORDS = 100;

const text = (row: Row, column: string) => row[column] as string;

const summarization = (documentColumn: string, summaryColumn: string) => (row: Row) => ({
  message: `Article: ${text(row, documentColumn)}\nSummary:`,
  reference: ` ${text(row, summaryColumn)}`,
});

const hfDownload = (repo: string, include: string, extra = '') =>
  `hf download ${repo} --repo-type dataset${extra} --include "${include}"`;

export const TASK_DATASETS: Record<TaskDatasetName, TaskDataset> = {
  cnn_dm_summarization: {
    name: 'cnn_dm_summarization',
    hub: { repo: 'abisee/cnn_dailymail', config: '3.0.0', download: (split) => hfDownload('abisee/cnn_dailymail', `3.0.0/${split}-*`) },
    columns: () => ['article', 'highlights'],
    nShotColumns: ['article', 'highlights'],
    build: summarization('article', 'highlights'),
  },
  xsum_summarization: {
    name: 'xsum_summarization',
    // The repository's main branch holds a loading script; its parquet files are on the Hub's converted branch.
    hub: {
      repo: 'EdinburghNLP/xsum',
      download: (split) => hfDownload('EdinburghNLP/xsum', `*${split}*`, ' --revision refs/convert/parquet'),
    },
    columns: () => ['document', 'summary'],
    nShotColumns: ['document', 'summary'],
    build: summarization('document', 'summary'),
  },
  cnn_dm_lm: {
    name: 'cnn_dm_lm',
    hub: { repo: 'abisee/cnn_dailymail', config: '3.0.0', download: (split) => hfDownload('abisee/cnn_dailymail', `3.0.0/${split}-*`) },
    columns: () => ['article'],
    build: (row) => {
      const words = pythonSplit(text(row, 'article'));
      return { message: words.slice(0, LM_PREFIX_WORDS).join(' '), reference: words.slice(LM_PREFIX_WORDS).join(' ') };
    },
  },
  human_eval: {
    name: 'human_eval',
    hub: { repo: 'openai/openai_humaneval', download: (split) => hfDownload('openai/openai_humaneval', `*${split}*`) },
    columns: () => ['prompt', 'canonical_solution'],
    build: (row) => ({ message: text(row, 'prompt'), reference: text(row, 'canonical_solution') }),
  },
  top_v2: {
    name: 'top_v2',
    hub: { repo: 'WillHeld/top_v2', download: (split) => hfDownload('WillHeld/top_v2', `*${split}*`) },
    columns: () => ['utterance', 'semantic_parse'],
    build: (row) => ({ message: text(row, 'utterance'), reference: text(row, 'semantic_parse') }),
  },
  custom_jsonl: {
    name: 'custom_jsonl',
    columns: ({ promptField, responseField }) => [promptField, responseField],
    build: (row, { promptField, responseField }) => ({ message: text(row, promptField), reference: text(row, responseField) }),
  },
};

export class TemplateError extends Error {}

/**
 * Python's `template.format(message=message)` (LayerSkip's apply_template): `{message}` is replaced, `{{` and `}}`
 * are literal braces, any other field is an error (Python raises KeyError / ValueError there).
 */
export function applyTemplate(message: string, template: string | undefined): string {
  if (template === undefined) return message;
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}|[{}]/g, (match, field: string | undefined) => {
    if (match === '{{') return '{';
    if (match === '}}') return '}';
    if (field === 'message') return message;
    if (field === undefined) throw new TemplateError(`--template has a single "${match}"; write "${match}${match}" for a literal brace`);
    throw new TemplateError(`--template has the field {${field}}; the only field is {message}`);
  });
}

/**
 * LayerSkip's n-shot block: for each chosen train row, "Article: …\nSummary: …\n" with the summary's newlines
 * removed, then one more "\n". Empty for no rows.
 */
export function nShotBlock(rows: Row[], [documentColumn, summaryColumn]: [string, string]): string {
  if (rows.length === 0) return '';
  const shots = rows.map((row) => `Article: ${text(row, documentColumn)}\nSummary: ${text(row, summaryColumn).replaceAll('\n', '')}\n`);
  return shots.join('') + '\n';
}

/** The examples of `rows` as LayerSkip builds them: n-shot block + the row's message, through the template. */
export function makeExamples(
  dataset: TaskDataset,
  rows: Row[],
  options: { promptField: string; responseField: string; shots?: string; template?: string },
): TaskExample[] {
  return rows.map((row) => {
    const { message, reference } = dataset.build(row, options);
    return { prompt: applyTemplate((options.shots ?? '') + message, options.template), reference };
  });
}
