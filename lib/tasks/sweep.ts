// The exit-layer × speculation sweep (LayerSkip's sweep.py): the self-speculative task benchmark at every (E, k) of
// a grid, one CSV row per cell with sweep.py's columns (times in seconds, means over examples), resumable — cells
// already in the CSV are not run again — plus an autoregressive baseline measured before and after the grid.
// Unlike sweep.py, every cell runs the same examples (it reshuffles per cell), so cells compare like with like.
import fs from 'node:fs';

export interface SweepCell {
  exitLayer: number;
  numSpeculations: number;
  acceptanceRate: number;
  /** Seconds per example (prefill included), as sweep.py's total_time. */
  totalTime: number;
  /** Seconds per generated token. */
  timePerToken: number;
  tokensPerSecond: number;
}

export const SWEEP_CSV_HEADER = 'exit_layer,num_speculations,acceptance_rate,total_time,time_per_token,tokens_per_second';

export class SweepError extends Error {}

/**
 * A grid axis: "A:B" (inclusive), "A:B:STEP", or a comma list; `L` stands for the model's layer count, so the
 * default exit-layer axis is "1:L-1".
 */
export function parseAxis(flag: string, text: string, numLayers: number): number[] {
  const value = (part: string): number => {
    const match = /^\s*(?:(\d+)|L\s*(?:-\s*(\d+))?)\s*$/.exec(part);
    if (!match) throw new SweepError(`--${flag}: "${part}" is not a number (or L, L-N)`);
    return match[1] !== undefined ? Number(match[1]) : numLayers - Number(match[2] ?? 0);
  };
  let values: number[];
  if (text.includes(':')) {
    const parts = text.split(':');
    if (parts.length > 3) throw new SweepError(`--${flag}: write A:B or A:B:STEP, got "${text}"`);
    const [first, last] = [value(parts[0]), value(parts[1])];
    const step = parts.length === 3 ? value(parts[2]) : 1;
    if (step < 1) throw new SweepError(`--${flag}: the step must be ≥ 1, got "${text}"`);
    if (last < first) throw new SweepError(`--${flag}: ${text} is empty (${last} < ${first})`);
    values = [];
    for (let v = first; v <= last; v += step) values.push(v);
  } else {
    values = text.split(',').map(value);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Checks the grid against the model: exit layers in [1, L) (E = L drafts with every layer), k in [1, 64]. */
export function checkGrid(exitLayers: number[], numSpeculations: number[], numLayers: number): void {
  const badExit = exitLayers.find((e) => e < 1 || e >= numLayers);
  if (badExit !== undefined) {
    throw new SweepError(`--exit-layers: ${badExit} is outside [1, ${numLayers - 1}] (the model has ${numLayers} layers; E = ${numLayers} would draft with all of them)`);
  }
  const badK = numSpeculations.find((k) => k < 1 || k > 64);
  if (badK !== undefined) throw new SweepError(`--num-speculations: ${badK} is outside [1, 64]`);
}

const CELL_KEY = (exitLayer: number, numSpeculations: number) => `${exitLayer}:${numSpeculations}`;

function formatRow(cell: SweepCell): string {
  return [cell.exitLayer, cell.numSpeculations, cell.acceptanceRate, cell.totalTime, cell.timePerToken, cell.tokensPerSecond].join(',');
}

/** The cells of a sweep CSV (an absent file: none). A file that is not one is an error, never overwritten. */
export function readSweepCsv(file: string): SweepCell[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) return [];
  if (lines[0].trim() !== SWEEP_CSV_HEADER) throw new SweepError(`${file} is not a layerskip sweep CSV (its header is not ${SWEEP_CSV_HEADER})`);
  return lines.slice(1).map((line, index) => {
    const fields = line.split(',').map(Number);
    if (fields.length !== 6 || fields.some((field) => !Number.isFinite(field))) {
      throw new SweepError(`${file}:${index + 2}: not a sweep row (${JSON.stringify(line)})`);
    }
    const [exitLayer, numSpeculations, acceptanceRate, totalTime, timePerToken, tokensPerSecond] = fields;
    return { exitLayer, numSpeculations, acceptanceRate, totalTime, timePerToken, tokensPerSecond };
  });
}

/** Rewrites the CSV with `cells` (in grid order), through a temporary file so a kill never leaves half a row. */
export function writeSweepCsv(file: string, cells: SweepCell[]): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, [SWEEP_CSV_HEADER, ...cells.map(formatRow)].join('\n') + '\n');
  fs.renameSync(temporary, file);
}

/** The grid in LayerSkip's order (exit layer outer, k inner), each with its measured cell once done. */
export function gridCells(exitLayers: number[], numSpeculations: number[], done: SweepCell[]): { exitLayer: number; numSpeculations: number; cell?: SweepCell }[] {
  const measured = new Map(done.map((cell) => [CELL_KEY(cell.exitLayer, cell.numSpeculations), cell]));
  return exitLayers.flatMap((exitLayer) =>
    numSpeculations.map((k) => ({ exitLayer, numSpeculations: k, cell: measured.get(CELL_KEY(exitLayer, k)) })),
  );
}

/** The fastest cell (highest tokens/s; ties: higher acceptance). */
export function bestCell(cells: SweepCell[]): SweepCell | undefined {
  return cells.reduce<SweepCell | undefined>(
    (best, cell) =>
      !best || cell.tokensPerSecond > best.tokensPerSecond || (cell.tokensPerSecond === best.tokensPerSecond && cell.acceptanceRate > best.acceptanceRate)
        ? cell
        : best,
    undefined,
  );
}
