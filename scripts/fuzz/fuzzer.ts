// The fuzz loop: writes the fixtures, draws cases from the seed, runs `jobs` of them at a time (each in its own child,
// scripts/fuzz/run-case.ts) until the case count or the time budget is reached, and tallies verdicts. Working files
// live in a fresh folder under os.tmpdir(), removed at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ensureFixtures } from '../../test/fixtures/make-fixtures.js';
import { controlCase, FUZZ_FIXTURES, makeCase, type FuzzCase } from './cases.js';
import { describeFixture, type FixtureInfo } from './checkpoint-files.js';
import { FAILING_VERDICTS, prepareChild, runCase, VERDICTS, type CaseResult, type Limits, type Verdict } from './run-case.js';
import { encodeOptions } from './values.js';

export interface FuzzOptions {
  seed: number;
  cases?: number; // stop after this many (default: unlimited with `minutes`, else 200)
  minutes?: number; // stop starting cases after this long
  only?: number; // run just this case index
  jobs: number;
  limits: Limits;
  keep?: boolean; // keep the mutated folders (printed) for inspection
  onResult?: (fuzzCase: FuzzCase, result: CaseResult & { dir: string }) => void;
}

export interface CaseRecord {
  index: number;
  fixture: string;
  verdict: Verdict;
  stage?: string;
  mutations: string[];
  kinds: string[];
  expect?: string;
  message: string;
  peakRssMiB: number;
  ms: number;
  replay: string;
  stderrTail?: string;
  dir?: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  seconds: number;
  counts: Record<Verdict, number>;
  byKind: Record<string, Partial<Record<Verdict, number>>>;
  failures: CaseRecord[];
  peakRssMiB: number;
}

export function replayCommand(seed: number, index: number): string {
  return `npx tsx scripts/fuzz-checkpoint.ts --seed ${seed} --case ${index}`;
}

/** What a case does, for replay and failure reports. */
export function describeCase(fuzzCase: FuzzCase): string[] {
  return [
    `fixture ${fuzzCase.fixture}; expect ${fuzzCase.expect ?? 'either'}`,
    ...fuzzCase.mutations.map((mutation) => `mutation [${mutation.kind}] ${mutation.description}${mutation.expect ? ` (must ${mutation.expect})` : ''}`),
    `load ${encodeOptions(fuzzCase.load)}`,
    `generate ${encodeOptions(fuzzCase.generate)}; prompt ${encodeOptions(fuzzCase.prompt).slice(0, 200)}`,
  ];
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const dirs = ensureFixtures(Object.keys(FUZZ_FIXTURES));
  const fixtures: Record<string, FixtureInfo> = {};
  for (const [name, dir] of Object.entries(dirs)) fixtures[name] = describeFixture(name, dir);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-fuzz-'));
  const started = performance.now();
  const counts = Object.fromEntries(VERDICTS.map((verdict) => [verdict, 0])) as Record<Verdict, number>;
  const byKind: FuzzReport['byKind'] = {};
  const failures: CaseRecord[] = [];
  let peakRss = 0;
  const first = options.only ?? 0;
  let issued = 0;
  let done = 0;
  const limit = options.only !== undefined ? 1 : (options.cases ?? (options.minutes ? Infinity : 200));
  const deadline = options.minutes ? started + options.minutes * 60_000 : Infinity;

  try {
    const child = await prepareChild(workDir);
    // Control: every fixture, unmutated, must load and generate, or every verdict below would mean nothing.
    for (const fixture of Object.values(fixtures)) {
      const result = await runCase(controlCase(options.seed, fixture), fixture, child, options.limits, path.join(workDir, `control-${fixture.name}`));
      if (result.verdict !== 'success') throw new Error(`control case ${fixture.name} (unmutated) gave ${result.verdict}: ${result.message}`);
    }
    const worker = async () => {
      while (issued < limit && performance.now() < deadline) {
        const index = first + issued++;
        const fuzzCase = makeCase(options.seed, index, fixtures);
        const result = await runCase(fuzzCase, fixtures[fuzzCase.fixture], child, options.limits, path.join(workDir, `case-${index}`), options.keep);
        done++;
        counts[result.verdict]++;
        peakRss = Math.max(peakRss, result.peakRssBytes);
        for (const mutation of fuzzCase.mutations) {
          const tally = (byKind[mutation.kind] ??= {});
          tally[result.verdict] = (tally[result.verdict] ?? 0) + 1;
        }
        options.onResult?.(fuzzCase, result);
        if (FAILING_VERDICTS.includes(result.verdict)) {
          failures.push({
            index, fixture: fuzzCase.fixture, verdict: result.verdict, stage: result.stage, expect: fuzzCase.expect,
            mutations: fuzzCase.mutations.map((m) => m.description), kinds: fuzzCase.mutations.map((m) => m.kind),
            message: result.message.slice(0, 2000), peakRssMiB: Math.round(result.peakRssBytes / 2 ** 20), ms: Math.round(result.ms),
            replay: replayCommand(options.seed, index), stderrTail: result.stderrTail || undefined, dir: options.keep ? result.dir : undefined,
          });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.jobs) }, worker));
  } finally {
    if (!options.keep) fs.rmSync(workDir, { recursive: true, force: true });
  }
  failures.sort((a, b) => a.index - b.index);
  return {
    seed: options.seed, cases: done, seconds: (performance.now() - started) / 1000, counts, byKind, failures,
    peakRssMiB: Math.round(peakRss / 2 ** 20),
  };
}
