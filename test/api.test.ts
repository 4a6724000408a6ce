// The public TypeScript API: loadModel → generate / stream / dispose, options and their validation.
import assert from 'node:assert/strict';

import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { loadReference, referenceGreedy } from './reference/llama.js';
import { tokenSequence } from './helpers/native.js';

describe('public API', function () {
  let dirs: Record<string, string>;
  let model: LayerSkipModel; // tok-llama3: real Llama 3 tokenizer, random weights
  let tiny: LayerSkipModel; // tiny-gqa-bf16: no tokenizer, prompts as ids

  before(async function () {
    dirs = ensureFixtures(['tok-llama3', 'tiny-gqa-bf16']);
    model = await loadModel(dirs['tok-llama3'], { threads: 2 });
    tiny = await loadModel(dirs['tiny-gqa-bf16'], { threads: 2, contextLength: 64 });
  });
  after(async function () {
    await model.dispose();
    await tiny.dispose();
  });

  it('reports the model and device', function () {
    assert.equal(model.info.numLayers, 2);
    assert.equal(model.info.vocabSize, 128256);
    assert.equal(model.info.device, 'cpu');
    assert.match(model.info.backend, /^cpu \(/);
    assert.deepEqual(model.info.eosTokenIds, [128001, 128009]);
  });

  it('generate() greedy equals the reference model and its text decodes the ids', async function () {
    const reference = loadReference(dirs['tiny-gqa-bf16']);
    const prompt = tokenSequence(5, 512, 3);
    const result = await tiny.generate(prompt, { maxSteps: 10, stopTokenIds: [] });
    assert.deepEqual(result.tokenIds, referenceGreedy(reference, prompt, 10));
    assert.equal(result.finishReason, 'length');
    assert.equal(result.stats.promptTokens, 5);
    assert.equal(result.stats.generatedTokens, 10);

    const text = await model.generate('Hello world', { maxSteps: 12, stopTokenIds: [] });
    assert.deepEqual(text.promptTokenIds, [128000, 9906, 1917]);
    assert.equal(text.text, model.decode(text.tokenIds));
    assert.ok(text.stats.prefillTokensPerSecond > 0 && text.stats.decodeTokensPerSecond > 0);
  });

  it('maxTokens is an alias of maxSteps; maxSteps 0 generates nothing', async function () {
    assert.equal((await tiny.generate([1, 2, 3], { maxTokens: 4, stopTokenIds: [] })).tokenIds.length, 4);
    const none = await tiny.generate([1, 2, 3], { maxSteps: 0 });
    assert.deepEqual(none.tokenIds, []);
    await assert.rejects(tiny.generate([1], { maxSteps: 3, maxTokens: 4 }), /aliases/);
  });

  it('stops at a stop token without emitting it', async function () {
    const free = await tiny.generate([7, 8, 9], { maxSteps: 8, stopTokenIds: [] });
    const stopAt = free.tokenIds[3];
    const stopped = await tiny.generate([7, 8, 9], { maxSteps: 8, stopTokenIds: [stopAt] });
    assert.equal(stopped.finishReason, 'stop_token');
    assert.deepEqual(stopped.tokenIds, free.tokenIds.slice(0, free.tokenIds.indexOf(stopAt)));
  });

  it('stops at a stop string, which never reaches the stream', async function () {
    const free = await model.generate('Once upon a time', { maxSteps: 16, stopTokenIds: [] });
    const stop = free.text.slice(6, 9);
    assert.ok(stop.length === 3);
    const pieces: string[] = [];
    const stream = model.stream('Once upon a time', { maxSteps: 16, stopTokenIds: [], stopStrings: [stop] });
    for await (const piece of stream) pieces.push(piece);
    const result = await stream.result;
    assert.equal(result.finishReason, 'stop_string');
    assert.equal(pieces.join(''), result.text);
    assert.equal(result.text, free.text.slice(0, free.text.indexOf(stop)));
    assert.ok(!result.text.includes(stop));
  });

  it('stream() yields exactly the text generate() returns', async function () {
    const expected = await model.generate('The quick brown fox', { maxSteps: 20, stopTokenIds: [] });
    let streamed = '';
    const stream = model.stream('The quick brown fox', { maxSteps: 20, stopTokenIds: [] });
    for await (const piece of stream) streamed += piece;
    assert.equal(streamed, expected.text);
    assert.deepEqual((await stream.result).tokenIds, expected.tokenIds);
  });

  it('sampling is reproducible for a seed and differs across seeds', async function () {
    const options = { maxSteps: 24, sample: true, temperature: 1.5, topP: 1, stopTokenIds: [] };
    const a = await tiny.generate([4, 5, 6], { ...options, seed: 42 });
    const b = await tiny.generate([4, 5, 6], { ...options, seed: 42 });
    const c = await tiny.generate([4, 5, 6], { ...options, seed: 43 });
    assert.deepEqual(a.tokenIds, b.tokenIds);
    assert.notDeepEqual(a.tokenIds, c.tokenIds);
    const topK1 = await tiny.generate([4, 5, 6], { ...options, topK: 1, seed: 7 });
    const greedy = await tiny.generate([4, 5, 6], { maxSteps: 24, stopTokenIds: [] });
    assert.deepEqual(topK1.tokenIds, greedy.tokenIds);
  });

  it('reuses the cached prompt prefix and still gives identical output', async function () {
    const prompt = tokenSequence(20, 512, 5);
    const cold = await tiny.generate(prompt, { maxSteps: 6, stopTokenIds: [] });
    const warm = await tiny.generate([...prompt, ...cold.tokenIds.slice(0, 2)], { maxSteps: 4, stopTokenIds: [] });
    assert.ok(warm.stats.reusedPromptTokens >= 20, `reused ${warm.stats.reusedPromptTokens}`);
    assert.deepEqual(warm.tokenIds, cold.tokenIds.slice(2, 6));
  });

  it('an AbortSignal ends generation with finishReason "abort"', async function () {
    const before = new AbortController();
    before.abort();
    const aborted = await tiny.generate([1, 2, 3], { maxSteps: 40, stopTokenIds: [], signal: before.signal });
    assert.equal(aborted.finishReason, 'abort');
    assert.deepEqual(aborted.tokenIds, []);

    const midway = new AbortController();
    let pieces = 0;
    const stream = model.stream('Hello', { maxSteps: 40, stopTokenIds: [], signal: midway.signal });
    for await (const piece of stream) {
      void piece;
      if (++pieces === 1) midway.abort();
    }
    const cut = await stream.result;
    assert.equal(cut.finishReason, 'abort');
    assert.ok(cut.tokenIds.length >= 1 && cut.tokenIds.length < 40, `${cut.tokenIds.length} tokens`);
  });

  it('concurrent generate() calls queue instead of colliding', async function () {
    const prompt = tokenSequence(8, 512, 9);
    const [a, b] = await Promise.all([
      tiny.generate(prompt, { maxSteps: 5, stopTokenIds: [] }),
      tiny.generate(prompt, { maxSteps: 5, stopTokenIds: [] }),
    ]);
    assert.deepEqual(a.tokenIds, b.tokenIds);
  });

  it('rejects absurd options with errors naming the option', async function () {
    await assert.rejects(tiny.generate([1], { maxSteps: -1 }), /maxSteps must be an integer/);
    await assert.rejects(tiny.generate([1], { sample: true, temperature: -0.5 }), /temperature must be/);
    await assert.rejects(tiny.generate([1], { topP: 1.5 }), /topP must be in \(0, 1\]/);
    await assert.rejects(tiny.generate([1], { topK: -2 }), /topK must be an integer/);
    await assert.rejects(tiny.generate([1], { exitLayer: 9 }), /exitLayer must be an integer in \[1, 4\]/);
    await assert.rejects(tiny.generate([1], { stopTokenIds: [99999] }), /stopTokenIds\[\] must be an integer in \[0, 511\]/);
    await assert.rejects(tiny.generate([600]), /prompt token id 600 is outside the vocabulary/);
    await assert.rejects(tiny.generate([]), /the prompt is empty/);
    await assert.rejects(tiny.generate('text'), /has no tokenizer\.json: give prompts as token ids/);
    await assert.rejects(tiny.generate(tokenSequence(64, 512, 1)), /the prompt has 64 tokens; the context holds 64/);
    await assert.rejects(loadModel(dirs['tiny-gqa-bf16'], { device: 'tpu' as never }), /device must be "cpu", "cuda" or "auto"/);
    await assert.rejects(loadModel(dirs['tiny-gqa-bf16'], { threads: 0 }), /threads must be an integer in \[1, 256\]/);
    // The model still works after every rejection.
    assert.equal((await tiny.generate([1, 2], { maxSteps: 2, stopTokenIds: [] })).tokenIds.length, 2);
  });

  it('generation stops cleanly when the context fills up', async function () {
    const result = await tiny.generate(tokenSequence(60, 512, 2), { maxSteps: 100, stopTokenIds: [] });
    assert.equal(result.finishReason, 'context_full');
    assert.equal(60 + result.tokenIds.length, 64);
  });

  it('dispose() is final and idempotent', async function () {
    const local = await loadModel(dirs['tiny-gqa-bf16']);
    await local.dispose();
    await local.dispose();
    assert.ok(local.disposed);
    await assert.rejects(local.generate([1]), /disposed/);
  });
});
