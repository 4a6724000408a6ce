// The bundled demo model (models/default, trained by this project with the LayerSkip recipe): it loads, generates
// code from the README's prompt with no --model, and its greedy self-speculative output equals autoregressive
// output at the exit layer its model card recommends.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel, type LayerSkipModel } from '../lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelDir = path.join(root, 'models', 'default');

describe('default model', function () {
  this.timeout(120000);
  let model: LayerSkipModel;
  before(async function () {
    model = await loadModel(modelDir, { threads: 1 });
  });
  after(async function () {
    await model?.dispose();
  });

  it('is a small LayerSkip-trained Llama with its own tokenizer and a model card', function () {
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.equal(model.info.dtype, 'BF16');
    assert.ok(model.tokenizer, 'tokenizer.json is bundled');
    const weights = fs.statSync(path.join(modelDir, 'model.safetensors')).size;
    assert.ok(weights < 25 * 2 ** 20, `weights are ${weights} bytes`);
    assert.match(fs.readFileSync(path.join(modelDir, 'README.md'), 'utf8'), /layerskip train/);
  });

  it('continues the README prompt with Python-looking code', async function () {
    const result = await model.generate('def fibonacci(n):', { maxSteps: 48 });
    assert.ok(result.tokenIds.length > 8);
    assert.match(result.text, /\n\s+\S/, 'an indented body line');
  });

  it('greedy self-speculative decoding reproduces autoregressive decoding', async function () {
    const prompts = ['def fibonacci(n):', 'import os\nimport sys\n\n\nclass ', '    for i in range(len(items)):\n'];
    for (const prompt of prompts) {
      const plain = await model.generate(prompt, { maxSteps: 64, stopTokenIds: [] });
      for (const [exitLayer, numSpeculations] of [[2, 4], [4, 6]]) {
        const speculative = await model.generate(prompt, {
          maxSteps: 64, stopTokenIds: [], generationStrategy: 'self_speculative', exitLayer, numSpeculations,
        });
        assert.deepEqual(speculative.tokenIds, plain.tokenIds, `E=${exitLayer} k=${numSpeculations} on ${JSON.stringify(prompt)}`);
        assert.ok(speculative.stats.accepted > 0);
      }
    }
  });

  it('`npx layerskip generate --prompt …` uses it when --model is not given', function () {
    const run = spawnSync(process.execPath, [path.join(root, 'bin', 'layerskip.js'), 'generate', '--prompt', 'def fibonacci(n):', '--max-steps', '16'], {
      cwd: root, encoding: 'utf8', env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' }, timeout: 60000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.length > 0);
  });
});
