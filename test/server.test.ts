// `layerskip serve` end to end with the real batching engine, through the official `openai` client: the demo
// model for completions (8 concurrent streams, each equal to its single-request greedy text; streaming equal to
// non-streaming; stop strings; seeds; self-speculative requests; logprobs; cancellation mid-stream freeing the
// slot) and tok-llama3 for chat (its chat template, logprobs); 503 while loading. The CLI process: serves on a free port, exits 0 on
// SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';

import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { BatchEngine } from '../lib/server/batch-engine.js';
import { startServer, startServerWhileLoading, type RunningServer } from '../lib/server/http-server.js';
import { ServerMetrics } from '../lib/server/metrics.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';

const PROMPTS = [
  'def fibonacci(n):',
  'import os\nimport sys\n\n',
  'class Stack:\n    def __init__(self):',
  'for i in range(10):',
  '# Copyright',
  'def parse_args(argv):',
  'import json\n',
  'while True:',
];

interface Served {
  model: LayerSkipModel;
  engine: BatchEngine;
  server: RunningServer;
  client: OpenAI;
}

async function serve(dir: string, modelId: string, parallel: number): Promise<Served> {
  const model = await loadModel(dir, { threads: 2, contextLength: 256 });
  const metrics = new ServerMetrics();
  const engine = await BatchEngine.create(model, { parallel, queueLimit: 16, requestTimeoutMs: 0, observer: metrics });
  const defaults = { generationStrategy: 'autoregressive' as const, exitLayer: model.info.numLayers, numSpeculations: 4, draftConfidence: 0 };
  const server = await startServer({ engine, model, modelId, host: '127.0.0.1', port: 0, defaults, metrics });
  const client = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  return { model, engine, server, client };
}

async function stop(served: Served | undefined): Promise<void> {
  if (!served) return;
  await served.server.close(1000);
  await served.model.dispose();
}

describe('layerskip serve (real engine, openai client)', function () {
  let demo: Served;
  before(async function () {
    demo = await serve(path.join(packageRoot(), 'models', 'default'), 'demo', 8);
  });
  after(async function () {
    await stop(demo);
  });

  it('logprobs: each token and its alternatives, equal to the API\'s, autoregressive or self-speculative, streamed or not', async function () {
    const prompt = PROMPTS[0];
    const api = await demo.model.generate(prompt, { maxSteps: 12, logprobs: 3 });
    const expected = api.logprobs!;
    const tokenText = (id: number) => demo.model.decode([id]);
    for (const layerskip of [undefined, { generation_strategy: 'self_speculative' as const, exit_layer: 2, num_speculations: 3 }]) {
      const body = { model: 'demo', prompt, max_tokens: 12, temperature: 0, logprobs: 3, ...(layerskip ? { layerskip } : {}) };
      const completion = await demo.client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming);
      const logprobs = completion.choices[0].logprobs!;
      assert.equal(completion.choices[0].text, api.text);
      if (layerskip) assert.ok((completion as unknown as { timings: { draft_n: number } }).timings.draft_n > 0, 'verify rows were read');
      assert.deepEqual(logprobs.tokens, expected.map((e) => tokenText(e.token)));
      assert.deepEqual(logprobs.token_logprobs, expected.map((e) => e.logprob), 'the verifier\'s rows give the same numbers as plain decoding');
      assert.deepEqual(logprobs.top_logprobs, expected.map((e) => Object.fromEntries(e.top.map((t) => [tokenText(t.token), t.logprob]))));
      assert.equal(logprobs.text_offset![1], tokenText(expected[0].token).length);
      // Greedy: every chosen token is its row's most likely one.
      expected.forEach((e) => assert.equal(e.logprob, e.top[0].logprob));

      const stream = await demo.client.completions.create({ ...body, stream: true } as OpenAI.CompletionCreateParamsStreaming);
      const streamed: number[] = [];
      for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.token_logprobs ?? []));
      assert.deepEqual(streamed, expected.map((e) => e.logprob));
    }
  });

  it('runs 8 concurrent streams, each equal to its single-request greedy text', async function () {
    const expected = [];
    for (const prompt of PROMPTS) expected.push((await demo.model.generate(prompt, { maxSteps: 24 })).text);
    const streams = PROMPTS.map(async (prompt, i) => {
      const speculative = i % 2 === 1;
      const stream = await demo.client.completions.create({
        model: 'demo',
        prompt,
        max_tokens: 24,
        temperature: 0,
        stream: true,
        ...(speculative ? { layerskip: { generation_strategy: 'self_speculative', exit_layer: 2, num_speculations: 3 } } : {}),
      } as OpenAI.CompletionCreateParamsStreaming);
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
      return text;
    });
    assert.deepEqual(await Promise.all(streams), expected);
  });

  it('streams what it answers without streaming; usage counts the tokens; stop strings end the text before them', async function () {
    const params = { model: 'demo', prompt: PROMPTS[2], max_tokens: 30, temperature: 0 };
    const whole = await demo.client.completions.create(params);
    let streamed = '';
    for await (const chunk of await demo.client.completions.create({ ...params, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    assert.equal(streamed, whole.choices[0].text);
    assert.equal(whole.usage!.prompt_tokens, demo.model.encode(PROMPTS[2]).length);
    assert.ok(whole.usage!.completion_tokens > 0 && whole.usage!.completion_tokens <= 30);

    const cut = whole.choices[0].text.slice(5, 9);
    const stopped = await demo.client.completions.create({ ...params, stop: [cut] });
    assert.equal(stopped.choices[0].finish_reason, 'stop');
    assert.equal(stopped.choices[0].text, whole.choices[0].text.slice(0, whole.choices[0].text.indexOf(cut)));
  });

  it('reproduces a sampled completion from its seed, speculative or not', async function () {
    for (const layerskip of [undefined, { generation_strategy: 'self_speculative', exit_layer: 2 }]) {
      const params = { model: 'demo', prompt: PROMPTS[0], max_tokens: 20, temperature: 0.9, seed: 1234, layerskip } as OpenAI.CompletionCreateParamsNonStreaming;
      const [a, b] = await Promise.all([demo.client.completions.create(params), demo.client.completions.create(params)]);
      assert.equal(a.choices[0].text, b.choices[0].text);
    }
  });

  it('frees the slot of a stream the client cancels', async function () {
    const controller = new AbortController();
    const stream = await demo.client.completions.create(
      { model: 'demo', prompt: PROMPTS[0], max_tokens: 200, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming,
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      // Chunks the client had already parsed from the same network read may still arrive after abort(),
      // so stop reading here rather than count them.
      for await (const _ of stream) if (++chunks === 3) { controller.abort(); break; }
    } catch (error) {
      assert.match(String(error), /abort/i); // the client reports the abort (or just ends the iteration)
    }
    assert.equal(chunks, 3);
    for (let wait = 0; wait < 50 && demo.engine.state().running > 0; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(demo.engine.state().running, 0);
    const metrics = await (await fetch(demo.server.url + '/metrics')).text();
    assert.match(metrics, /finished_reason="abort"\} [1-9]/);
  });

  it('answers chat completions through the checkpoint\'s chat template (tok-llama3)', async function () {
    const dirs = ensureFixtures(['tok-llama3']);
    let chat: Served | undefined;
    try {
      chat = await serve(dirs['tok-llama3'], 'tok-llama3', 2);
      const messages = [{ role: 'user' as const, content: 'Hi there!' }];
      const reply = await chat.client.chat.completions.create({ model: 'tok-llama3', messages, max_tokens: 8, temperature: 0 });
      const rendered = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';
      const expected = await chat.model.generate(chat.model.encode(rendered, { addSpecialTokens: false }), { maxSteps: 8 });
      assert.equal(reply.choices[0].message.content, expected.text);
      assert.equal(reply.usage!.prompt_tokens, expected.promptTokenIds.length);

      // logprobs: true, top_logprobs: 2 → OpenAI's chat shape, the same numbers as the API's.
      const withLogprobs = await chat.client.chat.completions.create({ model: 'tok-llama3', messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 });
      const api = await chat.model.generate(chat.model.encode(rendered, { addSpecialTokens: false }), { maxSteps: 8, logprobs: 2 });
      const content = withLogprobs.choices[0].logprobs!.content!;
      assert.equal(content.length, withLogprobs.usage!.completion_tokens);
      content.forEach((entry, i) => {
        assert.equal(entry.logprob, api.logprobs![i].logprob);
        assert.equal(entry.token, chat!.model.decode([api.logprobs![i].token]));
        assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, 'utf8')]);
        assert.deepEqual(entry.top_logprobs.map((t) => t.logprob), api.logprobs![i].top.map((t) => t.logprob));
      });
    } finally {
      await stop(chat);
    }
  });

  it('listens while the model loads: 503 with Retry-After until it is ready, then serves', async function () {
    let finishLoading!: () => void;
    const gate = new Promise<void>((resolve) => (finishLoading = resolve));
    const metrics = new ServerMetrics();
    const listening = await startServerWhileLoading('127.0.0.1', 0, async () => {
      await gate;
      const engine = await BatchEngine.create(demo.model, { parallel: 1, queueLimit: 1, requestTimeoutMs: 0, observer: metrics });
      const defaults = { generationStrategy: 'autoregressive' as const, exitLayer: demo.model.info.numLayers, numSpeculations: 4, draftConfidence: 0 };
      return { engine, model: demo.model, modelId: 'demo', host: '127.0.0.1', port: 0, defaults, metrics };
    });
    const health = await fetch(listening.url + '/health');
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'loading' });
    const early = await fetch(listening.url + '/v1/completions', { method: 'POST', body: '{"prompt":"def"}' });
    assert.equal(early.status, 503);
    assert.equal(early.headers.get('retry-after'), '5');
    assert.equal(((await early.json()) as { error: { code: string } }).error.code, 'model_loading');
    finishLoading();
    const server = await listening.ready;
    assert.deepEqual(await (await fetch(server.url + '/health')).json(), { status: 'ok' });
    await server.close(1000);
  });

  it('runs as a CLI process on a free port and exits 0 on SIGTERM', async function () {
    const child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'layerskip.js'), 'serve', '--port', '0', '--parallel', '2', '--quiet'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (data: Buffer) => {
        stderr += data.toString();
        const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    // It listens before the model has loaded: health says "loading" (503) until then, "ok" after.
    let health = await fetch(url + '/health');
    while (health.status === 503) {
      assert.deepEqual(await health.json(), { status: 'loading' });
      await new Promise((resolve) => setTimeout(resolve, 20));
      health = await fetch(url + '/health');
    }
    assert.deepEqual(await health.json(), { status: 'ok' });
    const completion = await (await fetch(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'def', max_tokens: 4 }) })).json() as { object: string };
    assert.equal(completion.object, 'text_completion');
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });
});
