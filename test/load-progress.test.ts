// Weight-upload progress and the memory report: loadModel's onProgress (increasing, ending at the checkpoint's
// tensor bytes, settled before the promise), a throwing callback failing the load without hurting the process,
// failed loads with a callback (nothing left holding the event loop: mocha would hang), and the CLI's bar.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { formatMemoryReport, formatProgressBar, LoadProgressBar } from '../lib/cli/load-progress.js';
import { loadModel } from '../lib/index.js';
import { loadNativeBinding } from '../lib/native.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';

/** Bytes of tensor data in a checkpoint folder: each safetensors file minus its 8-byte length and JSON header. */
function tensorBytes(dir: string): number {
  let total = 0;
  for (const file of fs.readdirSync(dir).filter((name) => name.endsWith('.safetensors'))) {
    const bytes = fs.readFileSync(path.join(dir, file));
    total += bytes.length - 8 - Number(bytes.readBigUInt64LE(0));
  }
  return total;
}

describe('weight upload progress', function () {
  const dirs: Record<string, string> = {};
  before(function () {
    Object.assign(dirs, ensureFixtures(['tiny-gqa-bf16', 'tiny-sharded', 'tiny-mha-f32']));
  });

  for (const name of ['tiny-gqa-bf16', 'tiny-sharded', 'tiny-mha-f32']) {
    it(`${name}: onProgress increases and ends at the checkpoint's tensor bytes before load resolves`, async function () {
      const calls: Array<[number, number]> = [];
      const model = await loadModel(dirs[name], { threads: 1, onProgress: (uploaded, total) => calls.push([uploaded, total]) });
      const expectedTotal = tensorBytes(dirs[name]);
      assert.ok(calls.length >= 1, 'no progress calls');
      for (let i = 0; i < calls.length; i++) {
        assert.equal(calls[i][1], expectedTotal, `call ${i}: total`);
        if (i > 0) assert.ok(calls[i][0] > calls[i - 1][0], `call ${i}: ${calls[i][0]} after ${calls[i - 1][0]}`);
      }
      assert.equal(calls[calls.length - 1][0], expectedTotal);
      await model.dispose();
    });
  }

  it('reports resident weight bytes; device memory is null on the CPU', async function () {
    const model = await loadModel(dirs['tiny-gqa-bf16'], { threads: 1 });
    const { residentWeightBytes, deviceFreeBytes, deviceTotalBytes, numLayers, hiddenSize } = model.info;
    // Matrices read in place (their stored bytes) plus f32 copies of the 2 · layers + 1 norm vectors.
    const normBytes = (2 * numLayers + 1) * hiddenSize * 4;
    const normStoredBytes = (2 * numLayers + 1) * hiddenSize * 2;
    assert.equal(residentWeightBytes, tensorBytes(dirs['tiny-gqa-bf16']) - normStoredBytes + normBytes);
    assert.equal(deviceFreeBytes, null);
    assert.equal(deviceTotalBytes, null);
    await model.dispose();
  });

  it('a throwing onProgress fails the load with its message; the process and later loads are fine', async function () {
    let calls = 0;
    await assert.rejects(
      loadModel(dirs['tiny-gqa-bf16'], {
        threads: 1,
        onProgress: () => {
          calls++;
          throw new Error('progress bar exploded');
        },
      }),
      /onProgress threw: progress bar exploded/,
    );
    assert.equal(calls, 1, 'the callback is not called again after it threw');
    await assert.rejects(
      loadModel(dirs['tiny-gqa-bf16'], {
        threads: 1,
        onProgress: () => {
          throw 'a string'; // eslint-disable-line no-throw-literal
        },
      }),
      /^Error: onProgress threw: /,
    );
    const model = await loadModel(dirs['tiny-gqa-bf16'], { threads: 1, onProgress: () => {} });
    assert.equal((await model.generate([1, 2], { maxSteps: 2, stopTokenIds: [] })).tokenIds.length, 2);
    await model.dispose();
  });

  it('a load that fails before uploading rejects without calling onProgress', async function () {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-progress-'));
    try {
      fs.cpSync(dirs['tiny-gqa-bf16'], scratch, { recursive: true });
      const configFile = path.join(scratch, 'config.json');
      const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
      config.num_hidden_layers += 1;
      fs.writeFileSync(configFile, JSON.stringify(config));
      let calls = 0;
      await assert.rejects(loadModel(scratch, { threads: 1, onProgress: () => calls++ }), /missing tensor "model\.layers\.4\./);
      assert.equal(calls, 0);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('onProgress must be a function (TypeScript API and raw binding)', async function () {
    await assert.rejects(loadModel(dirs['tiny-gqa-bf16'], { onProgress: 42 as never }), /onProgress must be a function/);
    await assert.rejects(
      async () => loadNativeBinding().NativeModel.load(dirs['tiny-gqa-bf16'], { device: 'cpu', onProgress: 'x' as never }),
      (error: Error) => error instanceof TypeError && /onProgress must be a function/.test(error.message),
    );
  });
});

describe('CLI load progress bar', function () {
  function fakeStream(isTTY: boolean) {
    const writes: string[] = [];
    return { isTTY, writes, write: (text: string) => writes.push(text) };
  }

  it('draws a one-line \\r bar with percent and MB on a TTY, once per percent, and clears it', function () {
    const stream = fakeStream(true);
    const bar = new LoadProgressBar(stream, 1000);
    for (const uploaded of [400_000_000, 400_100_000, 1_235_000_000, 2_470_000_000]) bar.onProgress(uploaded, 2_470_000_000);
    assert.deepEqual(stream.writes, [
      `\r${formatProgressBar(400_000_000, 2_470_000_000)}`,
      `\r${formatProgressBar(1_235_000_000, 2_470_000_000)}`,
      `\r${formatProgressBar(2_470_000_000, 2_470_000_000)}`,
    ]);
    assert.equal(formatProgressBar(1_235_000_000, 2_470_000_000), `loading weights [${'#'.repeat(15)}${'-'.repeat(15)}]  50%  1235 / 2470 MB`);
    assert.match(stream.writes[2], /\[#{30}\] 100%  2470 \/ 2470 MB$/);
    assert.equal(bar.finish(), true);
    assert.equal(stream.writes[3], '\r\x1b[2K');
  });

  it('stays silent off a TTY and for small models', function () {
    const pipe = fakeStream(false);
    const pipeBar = new LoadProgressBar(pipe);
    pipeBar.onProgress(1e9, 2e9);
    assert.equal(pipeBar.finish(), false);
    const tty = fakeStream(true);
    const smallBar = new LoadProgressBar(tty);
    smallBar.onProgress(100e6, 200e6);
    assert.equal(smallBar.finish(), false);
    assert.deepEqual([pipe.writes, tty.writes], [[], []]);
  });

  it('formats the memory report for the CPU and for CUDA', function () {
    assert.equal(
      formatMemoryReport({ device: 'cpu', residentWeightBytes: 2 ** 30, deviceFreeBytes: null, deviceTotalBytes: null }),
      'cpu: 1.00 GiB of weights resident',
    );
    assert.equal(
      formatMemoryReport({ device: 'cuda', residentWeightBytes: 2.5 * 2 ** 30, deviceFreeBytes: 130 * 2 ** 30, deviceTotalBytes: 140 * 2 ** 30 }),
      'cuda: 2.50 GiB of weights resident; 130.00 GiB of 140.00 GiB free',
    );
  });
});
