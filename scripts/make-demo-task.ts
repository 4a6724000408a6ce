// The demo model's benchmark task: documented functions of its 19 held-out standard-library files (never trained on),
// in LayerSkip's custom_jsonl format, one {"id", "prompt", "response"} object per line:
//   id       "<file path>:<def line>:<qualified name>", e.g. "tempfile.py:232:_mkstemp_inner"
//   prompt   the `def` line through the docstring's closing quotes, decorators left out
//   response the newline after them and the rest of the body, trailing blank lines dropped
// The line break goes with the response because the tokenizer merges a newline with the next line's indentation:
// a prompt ending in a bare "\n" ends on a token the model rarely saw there, and it then starts a new function.
// Both are kept exactly as in the file: a method keeps its indentation (no dedent), so the model sees the text it
// would meet in a file. The parsing, and what it skips, is lib/tasks/python-functions.ts (no Python needed).
// Kept: prompt ≤ 120 tokens (with the BOS the tokenizer adds), 8 ≤ response ≤ 120 tokens (no BOS), counted with
// the demo model's tokenizer; then at most 64, taken round-robin over the files (each file's in line order) and
// written in file order (held_out_files.txt), then line order.
//
//   npx tsx scripts/make-demo-task.ts [--stdlib DIR] [--out FILE]
// --stdlib defaults to `python3 -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])"`; --out to
// models/default/held_out_functions.jsonl.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { scanPythonFunctions, type PythonFunction } from '../lib/tasks/python-functions.js';
import { LlamaTokenizer } from '../lib/tokenizer.js';

const MAX_PROMPT_TOKENS = 120;
const MAX_RESPONSE_TOKENS = 120;
const MIN_RESPONSE_TOKENS = 8;
const MAX_FUNCTIONS = 64;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODEL_DIR = path.join(REPO_ROOT, 'models/default');

interface TaskEntry extends PythonFunction {
  id: string;
  promptTokens: number;
  responseTokens: number;
}

function defaultStdlib(): string {
  try {
    return execFileSync('python3', ['-c', "import sysconfig; print(sysconfig.get_paths()['stdlib'])"], { encoding: 'utf8' }).trim();
  } catch (error) {
    throw new Error(`cannot ask python3 for the standard library folder (${(error as Error).message}); pass --stdlib DIR`);
  }
}

/** Takes one entry per file in turn (file order, then line order) until `cap` are taken or none are left. */
function roundRobin<T>(perFile: T[][], cap: number): Set<T> {
  const taken = new Set<T>();
  for (let round = 0; taken.size < cap && perFile.some((entries) => round < entries.length); round++) {
    for (const entries of perFile) if (round < entries.length && taken.size < cap) taken.add(entries[round]);
  }
  return taken;
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return `min ${sorted[0]}, median ${median}, max ${sorted[sorted.length - 1]}`;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      stdlib: { type: 'string' },
      out: { type: 'string', default: path.join(MODEL_DIR, 'held_out_functions.jsonl') },
    },
  });
  const stdlib = args.stdlib ?? defaultStdlib();
  const files = fs.readFileSync(path.join(MODEL_DIR, 'held_out_files.txt'), 'utf8').split('\n').filter((line) => line.trim() !== '');
  const tokenizer = await LlamaTokenizer.fromDir(MODEL_DIR);

  const reasons = new Map<string, number>();
  const count = (reason: string) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  const perFile: TaskEntry[][] = [];
  const rows: string[][] = [];
  let found = 0;
  for (const file of files) {
    const source = fs.readFileSync(path.join(stdlib, file), 'utf8');
    const scan = scanPythonFunctions(source);
    const candidates = [...scan.functions, ...scan.skipped].length;
    found += candidates;
    scan.skipped.forEach((skip) => count(skip.reason));
    const kept: TaskEntry[] = [];
    for (const fn of scan.functions) {
      const promptTokens = tokenizer.encode(fn.prompt).length;
      const responseTokens = tokenizer.encode(fn.response, { addSpecialTokens: false }).length;
      if (promptTokens > MAX_PROMPT_TOKENS) count(`prompt over ${MAX_PROMPT_TOKENS} tokens`);
      else if (responseTokens > MAX_RESPONSE_TOKENS) count(`response over ${MAX_RESPONSE_TOKENS} tokens`);
      else if (responseTokens < MIN_RESPONSE_TOKENS) count(`response under ${MIN_RESPONSE_TOKENS} tokens`);
      else kept.push({ ...fn, id: `${file}:${fn.line}:${fn.name}`, promptTokens, responseTokens });
    }
    perFile.push(kept);
    rows.push([file, String(candidates), String(scan.functions.length), String(kept.length)]);
  }

  const chosen = roundRobin(perFile, MAX_FUNCTIONS);
  const entries = perFile.flat().filter((entry) => chosen.has(entry));
  const capped = perFile.flat().length - entries.length;
  if (capped > 0) reasons.set(`over the cap of ${MAX_FUNCTIONS}`, capped);
  fs.mkdirSync(path.dirname(args.out!), { recursive: true });
  const line = ({ id, prompt, response }: TaskEntry) => JSON.stringify({ id, prompt: prompt.slice(0, -1), response: '\n' + response }) + '\n';
  fs.writeFileSync(args.out!, entries.map(line).join(''));

  console.log(`${files.length} files from ${stdlib}: ${found} defs, ${perFile.flat().length} within the limits, ${entries.length} written to ${args.out}`);
  console.log('skipped:');
  for (const [reason, n] of reasons) console.log(`  ${String(n).padStart(4)}  ${reason}`);
  console.log('per file (defs / documented with a body / within the limits / written):');
  rows.forEach((row, i) => console.log(`  ${row[0].padEnd(48)} ${row.slice(1).map((n) => n.padStart(4)).join('')}${String(entries.filter((e) => perFile[i].includes(e)).length).padStart(4)}`));
  if (entries.length > 0) {
    console.log(`prompt tokens (with BOS): ${stats(entries.map((e) => e.promptTokens))}`);
    console.log(`response tokens: ${stats(entries.map((e) => e.responseTokens))}`);
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
