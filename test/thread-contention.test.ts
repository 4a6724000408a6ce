// Decoding while another process keeps a core busy (the machines this runs on are shared): 1 and 2 threads must
// give identical text, and the speeds are printed for the record (reported, not asserted: a timed assertion on a
// shared machine would be flaky). Before the thread pool stopped waiting for descheduled workers, 2 threads under
// a hog decoded ~20× slower than 1 (issue 14).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { loadModel } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';

describe('decoding beside a CPU hog', function () {
  let hog: ChildProcess | undefined;
  before(function () {
    hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  });
  after(function () {
    hog?.kill('SIGKILL');
  });

  it('gives the same text with 1 and 2 threads and reports both speeds', async function () {
    const results: Record<number, { text: string; tokensPerSecond: number[] }> = {};
    for (const threads of [2, 1, 2, 1]) {
      const model = await loadModel(path.join(packageRoot(), 'models', 'default'), { threads });
      try {
        const result = await model.generate('def fibonacci(n):', { maxSteps: 128, stopTokenIds: [] });
        const entry = (results[threads] ??= { text: result.text, tokensPerSecond: [] });
        assert.equal(result.text, entry.text);
        entry.tokensPerSecond.push(result.stats.decodeTokensPerSecond);
      } finally {
        await model.dispose();
      }
    }
    assert.equal(results[1].text, results[2].text);
    const show = (threads: number) => results[threads].tokensPerSecond.map((t) => t.toFixed(0)).join(', ');
    console.log(`      decode tok/s beside a busy core: 2 threads ${show(2)}; 1 thread ${show(1)}`);
  });
});
