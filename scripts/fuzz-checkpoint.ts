// layerskip's checkpoint and options fuzzer (README "Fuzzing and sanitizers"): structured mutations of the test
// fixtures (safetensors headers and data, config.json, generation_config.json, index.json, tokenizer files, special
// files) and of load / generation options, each case in its own child process with memory and time limits, judged
// clean-error / success / crash / hang / blow-up / silent-accept / wrong-refusal. Exits 1 when any case is one of
// the last five.
//
//   npx tsx scripts/fuzz-checkpoint.ts [--seed S] [--cases N | --minutes M] [--jobs J] [--json]
//   npx tsx scripts/fuzz-checkpoint.ts --seed S --case N [--keep]      replay one case, printing its mutation
//   --verbose prints one line per case (verdict, mutations, message)
//   limits: --timeout-s 20  --rss-limit-mb 1024  --as-limit-mb 8192 (0: no address-space limit)
//
// LAYERSKIP_ADDON_PATH picks the addon the children load (default build/Release/layerskip.node); with LD_PRELOAD of
// libasan the children run an ASan+UBSan addon (no address-space limit then; raise --rss-limit-mb).
import { parseArgs } from 'node:util';
import os from 'node:os';

import { describeCase, replayCommand, runFuzz, type FuzzReport } from './fuzz/fuzzer.js';
import { VERDICTS } from './fuzz/run-case.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    cases: { type: 'string' },
    minutes: { type: 'string' },
    case: { type: 'string' },
    jobs: { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
    'timeout-s': { type: 'string', default: '20' },
    'rss-limit-mb': { type: 'string', default: '1024' },
    'as-limit-mb': { type: 'string', default: '8192' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: npx tsx scripts/fuzz-checkpoint.ts [--seed S] [--cases N | --minutes M] [--jobs J] [--json] [--verbose]\n' +
      '       npx tsx scripts/fuzz-checkpoint.ts --seed S --case N [--keep]\n' +
      '       [--timeout-s 20] [--rss-limit-mb 1024] [--as-limit-mb 8192]\n',
  );
  process.exit(0);
}

function numberFlag(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    process.stderr.write(`--${name} must be a number >= ${min}, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return value;
}

const seed = numberFlag('seed', values.seed, 0) ?? Math.floor(Math.random() * 2 ** 31);
const only = numberFlag('case', values.case, 0);
const jobs = numberFlag('jobs', values.jobs, 1) ?? Math.max(1, os.availableParallelism());
const limits = {
  timeoutMs: numberFlag('timeout-s', values['timeout-s'], 1)! * 1000,
  rssLimitBytes: numberFlag('rss-limit-mb', values['rss-limit-mb'], 64)! * 2 ** 20,
  addressSpaceBytes: numberFlag('as-limit-mb', values['as-limit-mb'], 0)! * 2 ** 20,
};
const log = (line: string) => {
  if (!values.json) process.stdout.write(`${line}\n`);
};

log(`layerskip fuzz: seed ${seed}, ${only !== undefined ? `case ${only}` : values.minutes ? `${values.minutes} min` : `${values.cases ?? 200} cases`}, ` +
  `${only !== undefined ? 1 : jobs} at a time, limits ${limits.timeoutMs / 1000} s / ${limits.rssLimitBytes / 2 ** 20} MiB RSS` +
  `${limits.addressSpaceBytes && !/asan|ubsan/.test(process.env.LD_PRELOAD ?? '') ? ` / ${limits.addressSpaceBytes / 2 ** 20} MiB address space` : ''}`);
let lastProgress = performance.now();
let seen = 0;
const report: FuzzReport = await runFuzz({
  seed, jobs: only !== undefined ? 1 : jobs, limits, keep: values.keep, only,
  cases: numberFlag('cases', values.cases, 1), minutes: numberFlag('minutes', values.minutes, 0),
  onResult: (fuzzCase, result) => {
    seen++;
    if (only !== undefined) {
      for (const line of describeCase(fuzzCase)) log(line);
      log(`verdict ${result.verdict}${result.stage ? ` (${result.stage})` : ''} in ${result.ms.toFixed(0)} ms, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
      log(`message ${result.message}`);
      if (result.stderrTail) log(`stderr …${result.stderrTail.slice(-2000)}`);
      if (values.keep) log(`folder ${result.dir}`);
    } else if (values.verbose) {
      const what = fuzzCase.mutations.map((m) => m.description).join('; ');
      log(`  ${fuzzCase.index} ${result.verdict}${result.stage ? `/${result.stage}` : ''}: ${what} -> ${result.message.slice(0, 160)}`);
    } else if (performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now();
      log(`  ${seen} cases …`);
    }
  },
});

if (values.json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  log(`\n${report.cases} cases in ${report.seconds.toFixed(1)} s (seed ${report.seed}), largest peak RSS ${report.peakRssMiB} MiB`);
  for (const verdict of VERDICTS) log(`  ${verdict.padEnd(14)} ${report.counts[verdict]}`);
  if (report.failures.length > 0) log('\nnot clean:');
  for (const failure of report.failures) {
    log(`  case ${failure.index} ${failure.verdict}: ${failure.fixture}; ${failure.mutations.join('; ')}`);
    log(`    ${failure.message.slice(0, 300)}`);
    log(`    replay: ${failure.replay}`);
  }
  if (only === undefined && report.failures.length === 0) log(`\nall clean; replay any case with ${replayCommand(seed, 0).replace(/0$/, 'N')}`);
}
process.exit(report.failures.length > 0 ? 1 : 0);
