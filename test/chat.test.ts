// `layerskip chat` on tok-llama3 (Llama 3 tokenizer and chat template): a one-shot answer is exactly what generate()
// gives for the rendered conversation; piped turns keep the conversation in the cache (the second turn reuses the
// first's tokens); /reset starts over; a checkpoint without a template gets a clear message; on a terminal, Ctrl-C
// stops the answer only.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

import { loadModel } from '../lib/index.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { packageRoot, runLayerskip as layerskip } from './helpers/cli.js';

const BIN = path.join(packageRoot, 'bin', 'layerskip.js');

const RENDERED_HI =
  '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
  '<|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';

describe('layerskip chat', function () {
  let modelDir: string;
  before(function () {
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
  });

  it('answers one --message exactly as generate() does for the rendered conversation', async function () {
    const run = layerskip(['chat', '--model', modelDir, '--system', 'Be brief.', '--message', 'Hi there!', '--max-steps', '12']);
    assert.equal(run.code, 0, run.stderr);
    const model = await loadModel(modelDir, { threads: 1 });
    try {
      const expected = await model.generate(model.encode(RENDERED_HI, { addSpecialTokens: false }), { maxSteps: 12 });
      assert.equal(run.stdout, expected.text);
    } finally {
      await model.dispose();
    }
  });

  it('keeps the conversation in the cache between piped turns, and /reset starts over', function () {
    const run = layerskip(['chat', '--model', modelDir, '--max-steps', '6'], 'Hi there!\n/stats\nAnd then?\n/stats\n/reset\nHi there!\n/stats\n');
    assert.equal(run.code, 0, run.stderr);
    const stats = [...run.stdout.matchAll(/prompt (\d+) tokens(?: \((\d+) cached\))?/g)].map((m) => ({ prompt: Number(m[1]), cached: Number(m[2] ?? 0) }));
    assert.equal(stats.length, 3, run.stdout);
    assert.ok(stats[1].prompt > stats[0].prompt, 'the second turn carries the first');
    assert.ok(stats[1].cached >= stats[0].prompt, `the second turn reuses the first turn's cache (${JSON.stringify(stats)})`);
    assert.match(run.stdout, /\(new conversation\)/);
    assert.equal(stats[2].prompt, stats[0].prompt, 'after /reset the conversation is one message again');
  });

  it('says so when the checkpoint has no chat template', function () {
    const run = layerskip(['chat', '--message', 'hi']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /has no chat template .* not a chat model/);
  });
});

describe('layerskip chat on a terminal (a pseudo-terminal through util-linux script)', function () {
  let modelDir: string;
  before(function () {
    if (spawnSync('script', ['--version']).status !== 0) this.skip();
    modelDir = ensureFixtures(['tok-llama3'])['tok-llama3'];
  });

  it('Ctrl-C stops the answer being written, not the chat; /stats then shows it aborted; /exit quits', async function () {
    const command = [process.execPath, BIN, 'chat', '--model', modelDir, '--max-steps', '3000', '--context-length', '4096']
      .map((arg) => `'${arg}'`)
      .join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: packageRoot, env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' } });
    let output = '';
    let step = 0;
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      if (step === 0 && output.includes('> ')) {
        step = 1;
        child.stdin.write('Hi there!\r');
      } else if (step === 1 && output.length > output.indexOf('Hi there!') + 200) {
        step = 2;
        child.stdin.write('\x03');
        setTimeout(() => child.stdin.write('/stats\r/exit\r'), 300);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, output);
    assert.match(output, /finish: abort/);
  });
});
