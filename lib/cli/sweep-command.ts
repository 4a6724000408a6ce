// `layerskip sweep`: LayerSkip's sweep.py — the self-speculative task benchmark at every (exit layer, k) of a grid,
// to DIR/sweep.csv (its columns) and two heatmaps (tokens/s, acceptance), the best cell printed; resumable (a
// killed sweep continues from its CSV); --write-defaults stores the best E and k in the checkpoint's
// generation_config.json. An autoregressive baseline is measured before and after the grid on the same examples.
import fs from 'node:fs';
import path from 'node:path';

import { writeSpeculationDefaults } from '../generation/checkpoint-defaults.js';
import type { GenerationOptions } from '../generation/options.js';
import type { LayerSkipModel } from '../model.js';
import { renderHeatmapSvg } from '../tasks/heatmap-svg.js';
import { DEFAULT_TASK_SEED, loadTask, type LoadedTask } from '../tasks/load-task.js';
import { MAX_JSON_FILE_BYTES } from '../limits.js';
import { resolveModelDir } from '../model-path.js';
import { bestCell, checkGrid, gridCells, parseAxis, readSweepCsv, writeSweepCsv, type SweepCell } from '../tasks/sweep.js';
import { readJsonFile } from '../tokenizer.js';
import type { RatioSpread } from '../benchmark.js';
import { runTaskBenchmark, type StrategyMetrics } from '../tasks/task-benchmark.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs, type ParsedOptions } from './args.js';
import { bundledModelDir, commandLoadOptions, defaultModelDir, ENGINE_OPTION_SPECS, interruptOnSigint } from './common.js';
import { loadModelWithProgress } from './load-progress.js';
import { noExampleFits } from './task-benchmark-command.js';
import { describeGeneration, TASK_OPTION_SPECS, taskGenerationOptions, taskLoadOptions } from './task-options.js';
import { TaskProgressLine } from './task-progress.js';

/** Cells re-measured after the grid, when --confirm is not given. */
const DEFAULT_CONFIRM = 3;

export const sweepSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  ...TASK_OPTION_SPECS,
  'exit-layers': { kind: 'string', placeholder: 'A:B[:S]', description: 'exit layers to try: A:B, A:B:STEP or a list; L = the layer count (default 1:L-1)' },
  'num-speculations': { kind: 'string', placeholder: 'A:B[:S]', description: 'draft lengths k to try (default 1:6)' },
  out: { kind: 'string', placeholder: 'DIR', description: 'where sweep.csv, sweep.json and the pictures go; an unfinished sweep there continues (default logs/sweep_<dataset>)' },
  confirm: {
    kind: 'integer',
    placeholder: 'N',
    description: `re-measure the N fastest cells against autoregressive decoding, example by example, and pick the best from those (default ${DEFAULT_CONFIRM}; 0: pick from the grid)`,
  },
  'write-defaults': { kind: 'boolean', description: "store the best E and k in the checkpoint's generation_config.json (assistant_early_exit, num_assistant_tokens)" },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const sweepHelp = formatHelp(
  'Usage: layerskip sweep --dataset NAME [--data PATH] [--exit-layers 1:L-1] [--num-speculations 1:6] [--out DIR] [--write-defaults]',
  'Runs the self-speculative task benchmark at every exit layer × draft length of a grid: acceptance, tokens/s and\n' +
    'time per token per cell to DIR/sweep.csv, heatmaps of tokens/s and acceptance (SVG), the best cell. Run the same\n' +
    'command again to continue a sweep that was stopped.',
  sweepSpecs,
);

/** What a sweep folder was made with: resuming with other settings would mix incomparable cells. */
interface SweepSettings {
  model: string;
  dataset: string;
  files: string[];
  examples: number;
  generation: GenerationOptions;
  backend: string;
}

interface SweepRecord {
  settings: SweepSettings;
  /** Autoregressive tokens/s (mean over examples) measured before the grid, and after it once finished. */
  baseline: { before: number; after?: number };
  /** The fastest cells re-measured against autoregressive decoding, example by example (see confirmFastest). */
  confirmed?: ConfirmedCell[];
}

interface ConfirmedCell {
  exitLayer: number;
  numSpeculations: number;
  speedup: RatioSpread;
  acceptanceRate: number;
}


const sameSettings = (a: SweepSettings, b: SweepSettings) => JSON.stringify(a) === JSON.stringify(b);

// The record of a sweep folder; a different sweep's folder is an error (the user's results are never overwritten).
function openSweepFolder(dir: string, settings: SweepSettings): SweepRecord | undefined {
  const file = path.join(dir, 'sweep.json');
  if (!fs.existsSync(file)) {
    if (fs.existsSync(path.join(dir, 'sweep.csv'))) throw new UsageError(`${dir} has a sweep.csv but no sweep.json: not a layerskip sweep to continue; use another --out`);
    return undefined;
  }
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as SweepRecord;
  if (!sameSettings(record.settings, settings)) {
    throw new UsageError(
      `${dir} holds a sweep with other settings (${JSON.stringify(record.settings)}); use another --out to start a new one, or the same settings to continue it`,
    );
  }
  return record;
}

function cellFrom(metrics: StrategyMetrics): SweepCell {
  return {
    exitLayer: metrics.exitLayer,
    numSpeculations: metrics.numSpeculations,
    acceptanceRate: metrics.acceptanceRate,
    totalTime: metrics.totalTimeMs / 1000,
    timePerToken: metrics.timePerTokenMs / 1000,
    tokensPerSecond: metrics.tokensPerSecond,
  };
}

/** The two pictures: tokens/s (autoregressive marked on the colour bar) and acceptance. */
function writePictures(
  dir: string,
  exitLayers: number[],
  ks: number[],
  cells: SweepCell[],
  baseline: number,
  subtitle: string,
  highlight: { x: number; y: number; caption: string } | undefined,
): string[] {
  const pictures = [
    { file: 'sweep_tokens_per_second.svg', title: 'Self-speculative decoding: tokens/s', valueLabel: 'tokens/s', value: (c: SweepCell) => c.tokensPerSecond, reference: { value: baseline, caption: 'autoregressive' } },
    { file: 'sweep_acceptance_rate.svg', title: 'Self-speculative decoding: acceptance rate', valueLabel: 'acceptance', value: (c: SweepCell) => c.acceptanceRate, reference: undefined },
  ];
  return pictures.map((picture) => {
    const svg = renderHeatmapSvg({
      title: picture.title,
      subtitle,
      xLabel: 'exit layer E',
      yLabel: 'speculations k',
      valueLabel: picture.valueLabel,
      xValues: exitLayers,
      yValues: ks,
      cells: gridCells(exitLayers, ks, cells).map(({ exitLayer, numSpeculations, cell }) => ({ x: exitLayer, y: numSpeculations, value: cell ? picture.value(cell) : null })),
      highlight,
      reference: picture.reference,
      format: picture.valueLabel === 'acceptance' ? (v) => `${(v * 100).toFixed(0)}%` : undefined,
    });
    const file = path.join(dir, picture.file);
    fs.writeFileSync(file, svg);
    return file;
  });
}

/** The cell and autoregressive decoding on every example back to back: the per-example speedup and its spread. */
async function confirmCell(model: LayerSkipModel, task: LoadedTask, generation: GenerationOptions, seed: number, cell: SweepCell, signal: AbortSignal): Promise<ConfirmedCell | undefined> {
  const result = await runTaskBenchmark(model, task.examples, {
    strategies: ['autoregressive', 'self_speculative'],
    generation: { ...generation, exitLayer: cell.exitLayer, numSpeculations: cell.numSpeculations },
    seed,
    signal,
  });
  if (result.interrupted || !result.comparison) return undefined;
  return { exitLayer: cell.exitLayer, numSpeculations: cell.numSpeculations, speedup: result.comparison.speedup, acceptanceRate: result.strategies[1].acceptanceRate };
}

/** "1.08× per example (middle half 1.02–1.13×)", or "too noisy to conclude (…)". */
function describeSpeedup(spread: RatioSpread): string {
  const range = `middle half ${spread.low.toFixed(2)}–${spread.high.toFixed(2)}×`;
  return spread.verdict === 'too noisy to conclude'
    ? `speedup ${spread.median.toFixed(2)}× per example, too noisy to conclude (${range})`
    : `speedup ${spread.median.toFixed(2)}× per example (${range}, ${spread.verdict})`;
}

async function measureBaseline(model: LayerSkipModel, task: LoadedTask, generation: GenerationOptions, seed: number, signal: AbortSignal): Promise<number | undefined> {
  const result = await runTaskBenchmark(model, task.examples, { strategies: ['autoregressive'], generation: { ...generation, exitLayer: undefined }, seed, signal });
  if (result.interrupted) return undefined;
  if (result.completed === 0) throw new Error(noExampleFits(task.examples.length, model.info.contextLength));
  return result.strategies[0].tokensPerSecond;
}

export async function runSweepCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, sweepSpecs);
  if (options.help) {
    process.stdout.write(sweepHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], sweepSpecs);
  const modelArgument = options.model as string | undefined;
  const loadOptions = taskLoadOptions(options, modelArgument, bundledModelDir());
  // The grid's flags are axes, not one E and k.
  const { exitLayer: _e, numSpeculations: _k, ...generation } = taskGenerationOptions(options);
  const confirmCount = (options.confirm as number | undefined) ?? DEFAULT_CONFIRM;
  if (confirmCount < 0) throw new UsageError(`--confirm must be ≥ 0, got ${confirmCount}`);
  const modelDir = modelArgument ?? defaultModelDir();
  // The grid is checked against config.json's layer count before any data is read or weights are loaded.
  const configuredLayers = await layerCount(modelDir);
  if (configuredLayers !== undefined) gridOf(options, configuredLayers);
  const task = await loadTask(loadOptions);
  const model = await loadModelWithProgress(modelDir, commandLoadOptions(options));
  try {
    return await sweep(model, task, options, generation, loadOptions.seed ?? DEFAULT_TASK_SEED, confirmCount);
  } finally {
    await model.dispose();
  }
}

/** num_hidden_layers of the checkpoint's config.json; undefined when it cannot be read (loading will say why). */
async function layerCount(modelDir: string): Promise<number | undefined> {
  try {
    const config = await readJsonFile(path.join(resolveModelDir(modelDir), 'config.json'), true, MAX_JSON_FILE_BYTES);
    const layers = config?.num_hidden_layers;
    return typeof layers === 'number' && Number.isInteger(layers) && layers > 0 ? layers : undefined;
  } catch {
    return undefined;
  }
}

/** The grid the flags ask for, checked against the model: a usage error naming the flag otherwise. */
function gridOf(options: ParsedOptions, numLayers: number): { exitLayers: number[]; ks: number[] } {
  try {
    const exitLayers = parseAxis('exit-layers', (options['exit-layers'] as string | undefined) ?? '1:L-1', numLayers);
    const ks = parseAxis('num-speculations', (options['num-speculations'] as string | undefined) ?? '1:6', numLayers);
    checkGrid(exitLayers, ks, numLayers);
    return { exitLayers, ks };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function sweep(
  model: LayerSkipModel,
  task: LoadedTask,
  options: ParsedOptions,
  generation: GenerationOptions,
  seed: number,
  confirmCount: number,
): Promise<number> {
  const { exitLayers, ks } = gridOf(options, model.info.numLayers);
  const dir = (options.out as string | undefined) ?? path.join('logs', `sweep_${task.dataset}`);
  const settings: SweepSettings = { model: model.info.dir, dataset: task.dataset, files: task.files, examples: task.examples.length, generation, backend: model.info.backend };
  const record: SweepRecord = openSweepFolder(dir, settings) ?? { settings, baseline: { before: NaN } };
  fs.mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, 'sweep.csv');
  const cells = readSweepCsv(csv);
  const saveRecord = () => fs.writeFileSync(path.join(dir, 'sweep.json'), JSON.stringify(record, null, 2) + '\n');
  const grid = gridCells(exitLayers, ks, cells);
  const todo = grid.filter((entry) => !entry.cell);
  process.stdout.write(
    `sweep of ${exitLayers.length} exit layers × ${ks.length} draft lengths on ${task.dataset} (${task.examples.length} examples); ` +
      `${describeGeneration(generation)}; ${model.info.backend}\n` +
      (todo.length < grid.length ? `continuing ${csv}: ${grid.length - todo.length} of ${grid.length} cells done\n` : ''),
  );

  const interrupt = interruptOnSigint();
  const progress = new TaskProgressLine(process.stderr, 'cells');
  let interrupted = false;
  try {
    // One untimed generation first: the first pass pays for page faults and waking threads.
    const fits = task.examples.find((example) => model.encode(example.prompt).length + 1 < model.info.contextLength);
    if (!fits) throw new Error(noExampleFits(task.examples.length, model.info.contextLength));
    await model.generate(fits.prompt, { ...generation, maxSteps: Math.min(16, generation.maxSteps ?? 16), signal: interrupt.signal });
    if (!Number.isFinite(record.baseline.before)) {
      progress.update(0, todo.length, ['measuring the autoregressive baseline']);
      const before = await measureBaseline(model, task, generation, seed, interrupt.signal);
      if (before === undefined) interrupted = true;
      else {
        record.baseline.before = before;
        saveRecord();
      }
    }
    for (const [index, entry] of todo.entries()) {
      if (interrupted) break;
      progress.update(index, todo.length, [`E ${entry.exitLayer} k ${entry.numSpeculations}`]);
      const result = await runTaskBenchmark(model, task.examples, {
        strategies: ['self_speculative'],
        generation: { ...generation, exitLayer: entry.exitLayer, numSpeculations: entry.numSpeculations },
        seed,
        signal: interrupt.signal,
      });
      if (result.interrupted) {
        interrupted = true;
        break;
      }
      cells.push(cellFrom(result.strategies[0]));
      // Grid order in the file whatever the order of measuring (a continued sweep appends in the middle).
      writeSweepCsv(csv, gridCells(exitLayers, ks, cells).flatMap(({ cell }) => (cell ? [cell] : [])));
      const cell = cells[cells.length - 1];
      process.stdout.write(`exit_layer ${cell.exitLayer}, num_speculations ${cell.numSpeculations}: ${cell.tokensPerSecond.toFixed(1)} tok/s, acceptance ${(cell.acceptanceRate * 100).toFixed(1)}%, time_per_token ${cell.timePerToken.toExponential(3)} s\n`);
    }
    if (!interrupted && record.baseline.after === undefined) {
      const after = await measureBaseline(model, task, generation, seed, interrupt.signal);
      if (after === undefined) interrupted = true;
      else {
        record.baseline.after = after;
        saveRecord();
      }
    }
    const fastest = [...cells].sort((a, b) => b.tokensPerSecond - a.tokensPerSecond).slice(0, confirmCount);
    for (const cell of fastest) {
      if (interrupted || record.confirmed?.some((c) => c.exitLayer === cell.exitLayer && c.numSpeculations === cell.numSpeculations)) continue;
      progress.update(grid.length, grid.length, [`confirming E ${cell.exitLayer} k ${cell.numSpeculations} against autoregressive`]);
      const confirmed = await confirmCell(model, task, generation, seed, cell, interrupt.signal);
      if (!confirmed) interrupted = true;
      else {
        (record.confirmed ??= []).push(confirmed);
        saveRecord();
      }
    }
  } finally {
    progress.finish();
    interrupt.release();
  }

  const measured = gridCells(exitLayers, ks, cells).flatMap(({ cell }) => (cell ? [cell] : []));
  const baselines = [record.baseline.before, record.baseline.after].filter((v): v is number => v !== undefined && Number.isFinite(v));
  const baseline = baselines.length > 0 ? baselines.reduce((a, b) => a + b) / baselines.length : NaN;
  const subtitle = `${path.basename(model.info.dir)} · ${task.dataset}, ${task.examples.length} examples · ${describeGeneration(generation)} · ${model.info.backend}`;
  const fastestInGrid = bestCell(measured);
  // With confirmations, the best is the confirmed cell with the highest per-example speedup; else the grid's fastest.
  const confirmed = interrupted ? [] : (record.confirmed ?? []).filter((c) => measured.some((m) => m.exitLayer === c.exitLayer && m.numSpeculations === c.numSpeculations));
  const bestConfirmed = confirmed.reduce<ConfirmedCell | undefined>((best, c) => (!best || c.speedup.median > best.speedup.median ? c : best), undefined);
  const best = bestConfirmed ? measured.find((m) => m.exitLayer === bestConfirmed.exitLayer && m.numSpeculations === bestConfirmed.numSpeculations) : fastestInGrid;
  const speedup = bestConfirmed ? bestConfirmed.speedup.median : (best?.tokensPerSecond ?? NaN) / baseline;
  const caption = best && `${bestConfirmed ? 'best confirmed' : 'fastest'}: E ${best.exitLayer}, k ${best.numSpeculations}` +
    (bestConfirmed ? ` (${speedup.toFixed(2)}× autoregressive per example)` : '');
  const highlight = best && caption ? { x: best.exitLayer, y: best.numSpeculations, caption } : undefined;
  const pictures = measured.length > 0 ? writePictures(dir, exitLayers, ks, measured, baseline, subtitle, highlight) : [];
  process.stdout.write(`\n${csv}${pictures.length ? `, ${pictures.join(', ')}` : ''}\n`);
  if (baselines.length > 0) {
    process.stdout.write(`autoregressive: ${baselines.map((v) => v.toFixed(1)).join(' tok/s before, ')} tok/s${baselines.length > 1 ? ' after the grid' : ' (before the grid)'}\n`);
  }
  if (interrupted) {
    process.stdout.write(`interrupted with ${measured.length} of ${grid.length} cells measured; the same command continues the sweep\n`);
    return 130;
  }
  if (!best) return 1;
  for (const c of confirmed) process.stdout.write(`confirmed E ${c.exitLayer} k ${c.numSpeculations}: ${describeSpeedup(c.speedup)}, acceptance ${(c.acceptanceRate * 100).toFixed(1)}%\n`);
  process.stdout.write(
    `best: --exit-layer ${best.exitLayer} --num-speculations ${best.numSpeculations} (${best.tokensPerSecond.toFixed(1)} tok/s in the grid, ` +
      `acceptance ${(best.acceptanceRate * 100).toFixed(1)}%; ` +
      (bestConfirmed ? `against autoregressive on every example: ${describeSpeedup(bestConfirmed.speedup)})` : `${speedup.toFixed(2)}× the autoregressive baseline)`) +
      '\n',
  );
  if (options['write-defaults']) {
    if (!(speedup > 1)) {
      process.stdout.write('no cell beat autoregressive decoding: generation_config.json left unchanged\n');
      return 0;
    }
    process.stdout.write(`writing assistant_early_exit ${best.exitLayer}, num_assistant_tokens ${best.numSpeculations} to ${path.join(model.info.dir, 'generation_config.json')}\n`);
    await writeSpeculationDefaults(model.info.dir, { exitLayer: best.exitLayer, numSpeculations: best.numSpeculations });
  }
  return 0;
}
