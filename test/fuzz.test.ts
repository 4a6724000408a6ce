// A short seeded run of the project's fuzzer (scripts/fuzz-checkpoint.ts, README "Fuzzing and sanitizers"):
// mutated fixture checkpoints and options, each case in its own child process with time and memory limits. No case
// may crash, hang, blow up, be silently accepted or be wrongly refused. A failure names the replay command.
import assert from 'node:assert/strict';

import { runFuzz } from '../scripts/fuzz/fuzzer.js';

const SEED = 15;
const CASES = 600;

describe('fuzzer (short seeded run)', function () {
  this.timeout(300_000);

  it(`${CASES} mutated checkpoints and options: no crash, hang, blow-up, silent accept or wrong refusal`, async function () {
    const report = await runFuzz({
      seed: SEED, cases: CASES, jobs: 2,
      limits: { timeoutMs: 20_000, rssLimitBytes: 1024 * 2 ** 20, addressSpaceBytes: 8192 * 2 ** 20 },
    });
    const failures = report.failures.map((f) => `case ${f.index} ${f.verdict}: ${f.mutations.join('; ')}\n    ${f.message}\n    ${f.replay}`);
    assert.deepEqual(failures, [], `not clean:\n${failures.join('\n')}`);
    assert.equal(report.cases, CASES);
    // Both outcomes occur, so the children really ran the engine.
    assert.ok(report.counts['clean-error'] > CASES / 4 && report.counts.success > CASES / 10, JSON.stringify(report.counts));
  });
});
