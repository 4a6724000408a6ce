// The HTTP / OpenAI protocol layer of `layerskip serve` against a FakeEngine: response and stream shapes (through
// the real `openai` client where the request is OpenAI-shaped), what reaches the engine, auth, limits, errors,
// client aborts, metrics and tokenize. Request validation and chat templates: server-requests.test.ts.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startServer, type RunningServer } from '../lib/server/http-server.js';
import { ServerMetrics } from '../lib/server/metrics.js';
import { FakeEngine, NATURAL_LENGTH, fakePieces } from './helpers/fake-engine.js';
import { API_KEY, CONTEXT_LENGTH, DEFAULTS, LLAMA3_TWO_MESSAGES, sseEvents, useProtocolServer } from './helpers/protocol-server.js';

describe('server protocol (OpenAI API over a fake engine)', function () {
  const fixture = useProtocolServer();
  const post = (path: string, body: unknown) => fixture.post(path, body);
  const get = (path: string, headers?: Record<string, string>) => fixture.get(path, headers);

  describe('completions', function () {
    it('answers in OpenAI shape and passes prompt, seed, stop and sampling to the engine', async function () {
      const completion = await fixture.client.completions.create({ model: 'tok-llama3', prompt: 'Hello world', seed: 3, stop: ['\n\n', 'END'], temperature: 0, top_p: 0.5 });
      assert.match(completion.id, /^cmpl-/);
      assert.equal(completion.object, 'text_completion');
      assert.equal(completion.model, 'tok-llama3');
      assert.equal(completion.choices[0].text, fakePieces(3, NATURAL_LENGTH).join(''));
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.deepEqual(completion.usage, { prompt_tokens: 3, completion_tokens: NATURAL_LENGTH, total_tokens: 3 + NATURAL_LENGTH });
      assert.equal((completion as unknown as { timings: { predicted_n: number } }).timings.predicted_n, NATURAL_LENGTH);
      const request = fixture.engine.requests[0];
      assert.deepEqual(request.promptIds, fixture.model.encode('Hello world'));
      assert.deepEqual(request.promptIds, [128000, 9906, 1917]);
      assert.equal(request.seed, 3);
      assert.deepEqual(request.stopStrings, ['\n\n', 'END']);
      assert.deepEqual(request.sampling, { temperature: 0, topK: 0, topP: 0.5 });
      assert.equal(request.maxTokens, 16, "OpenAI's default for completions");
      assert.deepEqual(request.strategy, DEFAULTS);
      assert.equal(request.stopTokenIds, undefined);
    });

    it('defaults as OpenAI (temperature 1, top_p 1, a random 32-bit seed); max_tokens beyond the context is clamped', async function () {
      await fixture.client.completions.create({ model: 'tok-llama3', prompt: [5, 6, 7], max_tokens: 100_000 });
      const request = fixture.engine.requests[0];
      assert.deepEqual(request.promptIds, [5, 6, 7]);
      assert.deepEqual(request.sampling, { temperature: 1, topK: 0, topP: 1 });
      assert.ok(Number.isInteger(request.seed) && request.seed >= 0 && request.seed < 2 ** 32);
      assert.equal(request.maxTokens, CONTEXT_LENGTH - 3);
    });

    it('streams chunks that concatenate to the non-streaming text, then usage, then [DONE]', async function () {
      const whole = await fixture.client.completions.create({ model: 'tok-llama3', prompt: [[1, 2]], seed: 11, max_tokens: 5 });
      const chunks = [];
      const stream = await fixture.client.completions.create({ model: 'tok-llama3', prompt: [[1, 2]], seed: 11, max_tokens: 5, stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) chunks.push(chunk);
      assert.ok(chunks.length >= 3);
      assert.equal(chunks.map((chunk) => chunk.choices[0]?.text ?? '').join(''), whole.choices[0].text);
      const finish = chunks.at(-2)!;
      assert.equal(finish.choices[0].finish_reason, 'length');
      assert.equal(finish.choices[0].text, '');
      const usage = chunks.at(-1)!;
      assert.deepEqual(usage.choices, []);
      assert.deepEqual(usage.usage, { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
      for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.usage, null, 'include_usage: other chunks carry usage null');

      const raw = await (await post('/v1/completions', { prompt: [1, 2], seed: 11, max_tokens: 5, stream: true })).text();
      const events = sseEvents(raw);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal((events.at(-2) as { choices: { finish_reason: string }[] }).choices[0].finish_reason, 'length');
      assert.ok(!raw.includes('"usage"'), 'no usage without include_usage');
    });

    it('passes the layerskip object and ignore_eos; ignores unknown fields and zero penalties', async function () {
      const response = await post('/v1/completions', {
        prompt: 'Hi',
        max_tokens: 3,
        ignore_eos: true,
        user: 'someone',
        frequency_penalty: 0,
        presence_penalty: 0,
        n: 1,
        layerskip: { generation_strategy: 'self_speculative', exit_layer: 1, num_speculations: 6, draft_confidence: 0.5 },
      });
      assert.equal(response.status, 200);
      const request = fixture.engine.requests[0];
      assert.deepEqual(request.strategy, { generationStrategy: 'self_speculative', exitLayer: 1, numSpeculations: 6, draftConfidence: 0.5 });
      assert.deepEqual(request.stopTokenIds, []);
    });
  });

  describe('chat completions', function () {
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi there!' }] },
    ];

    it('renders the chat template, generates until the context is full by default, and answers in OpenAI shape', async function () {
      const completion = await fixture.client.chat.completions.create({ model: 'tok-llama3', messages, seed: 4 });
      assert.match(completion.id, /^chatcmpl-/);
      assert.equal(completion.object, 'chat.completion');
      assert.deepEqual(completion.choices[0].message, { role: 'assistant', content: fakePieces(4, NATURAL_LENGTH).join('') });
      assert.equal(completion.choices[0].finish_reason, 'stop');
      const request = fixture.engine.requests[0];
      assert.deepEqual(request.promptIds, fixture.model.encode(LLAMA3_TWO_MESSAGES, { addSpecialTokens: false }));
      assert.equal(request.promptIds.filter((id) => id === 128000).length, 1, 'one BOS, from the template');
      assert.equal(request.maxTokens, CONTEXT_LENGTH - request.promptIds.length);
    });

    it('streams a role chunk, content deltas that concatenate to the answer, a finish chunk, usage and [DONE]', async function () {
      const whole = await fixture.client.chat.completions.create({ model: 'tok-llama3', messages, seed: 9, max_completion_tokens: 6 });
      const stream = await fixture.client.chat.completions.create({ model: 'tok-llama3', messages, seed: 9, max_completion_tokens: 6, stream: true, stream_options: { include_usage: true } });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks[0].object, 'chat.completion.chunk');
      assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
      assert.equal(text, whole.choices[0].message.content);
      assert.deepEqual(chunks.at(-2)!.choices[0].delta, {});
      assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'length');
      assert.equal(chunks.at(-1)!.usage?.completion_tokens, 6);
      assert.ok(new Set(chunks.map((chunk) => chunk.id)).size === 1, 'one id for the whole stream');
    });
  });

  describe('HTTP', function () {
    it('wants the API key everywhere but /health', async function () {
      assert.equal((await get('/v1/models', {})).status, 401);
      const wrong = await get('/v1/models', { Authorization: 'Bearer nope' });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      assert.equal((await get('/metrics', {})).status, 401);
      const badClient = new OpenAI({ baseURL: fixture.server.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(badClient.models.list(), OpenAI.AuthenticationError);
      const health = await get('/health', {});
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
    });

    it('lists the model; unknown paths are 404, wrong methods 405', async function () {
      const models = [];
      for await (const entry of fixture.client.models.list()) models.push(entry);
      assert.deepEqual(models.map(({ id, object, owned_by }) => ({ id, object, owned_by })), [{ id: 'tok-llama3', object: 'model', owned_by: 'layerskip' }]);
      assert.equal((await fixture.client.models.retrieve('tok-llama3')).id, 'tok-llama3');
      assert.equal((await get('/v1/models/other')).status, 404);
      assert.equal((await get('/v1/nothing')).status, 404);
      const wrongMethod = await get('/v1/completions');
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.headers.get('allow'), 'POST');
      assert.equal(((await wrongMethod.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    });

    it('answers 503 with Retry-After when the queue is full', async function () {
      fixture.engine.queueFullRetryAfter = 7;
      const response = await post('/v1/completions', { prompt: 'Hi', stream: true });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '7');
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /queue is full/);
      await assert.rejects(fixture.client.chat.completions.create({ model: 'tok-llama3', messages: [{ role: 'user', content: 'Hi' }] }), (error: InstanceType<typeof OpenAI.APIError>) => error.status === 503);
    });

    it('turns an engine failure into a 500, or an SSE error event once streaming, and keeps serving', async function () {
      fixture.engine.failure = new Error('device lost');
      const failed = await post('/v1/completions', { prompt: 'Hi' });
      assert.equal(failed.status, 500);
      assert.deepEqual(await failed.json(), { error: { message: 'device lost', type: 'server_error', param: null, code: null } });
      fixture.engine.failAfterPieces = 2;
      const events = sseEvents(await (await post('/v1/completions', { prompt: 'Hi', stream: true })).text());
      assert.deepEqual(events.at(-1), { error: { message: 'device lost', type: 'server_error', param: null, code: null } });
      assert.ok(!events.includes('[DONE]'));
      fixture.engine.failure = undefined;
      fixture.engine.failAfterPieces = 0;
      assert.equal((await post('/v1/completions', { prompt: 'Hi' })).status, 200);
    });

    it('aborts the engine request when the client goes away mid-stream', async function () {
      fixture.engine.pieceDelayMs = 10;
      const controller = new AbortController();
      const aborted = fixture.engine.nextAbort();
      const response = await fetch(fixture.server.url + '/v1/completions', {
        method: 'POST',
        headers: { Authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ prompt: [1], stream: true, ignore_eos: true, max_tokens: 200 }),
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /^data: /);
      controller.abort();
      const request = await aborted;
      assert.equal(request.signal?.aborted, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.match(fixture.metrics.render(), /layerskip:request_success_total\{finished_reason="abort"\} [1-9]/);
    });

    it('survives text for a client that is gone, and a client gone before its first token', async function () {
      fixture.engine.honourAbort = false;
      fixture.engine.pieceDelayMs = 5;
      const controller = new AbortController();
      const aborted = fixture.engine.nextAbort();
      const body = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], stream: true, ignore_eos: true, max_tokens: 40 });
      const init = { method: 'POST', headers: { Authorization: `Bearer ${API_KEY}` }, body, signal: controller.signal };
      const response = await fetch(fixture.server.url + '/v1/chat/completions', init);
      await response.body!.getReader().read();
      controller.abort();
      await aborted;
      await new Promise((resolve) => setTimeout(resolve, 250)); // the engine writes its last pieces into the closed stream

      fixture.engine.honourAbort = true;
      fixture.engine.pieceDelayMs = 100;
      const early = new AbortController();
      const abortedEarly = fixture.engine.nextAbort();
      const pending = fetch(fixture.server.url + '/v1/chat/completions', { ...init, signal: early.signal });
      setTimeout(() => early.abort(), 30);
      await assert.rejects(pending);
      assert.equal((await abortedEarly).signal?.aborted, true);
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal((await post('/v1/completions', { prompt: 'Hi', max_tokens: 1 })).status, 200);
    });

    it('exposes Prometheus metrics', async function () {
      const response = await get('/metrics');
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      for (const name of [
        'layerskip:num_requests_running 1',
        'layerskip:num_requests_waiting 2',
        'layerskip:kv_cache_usage_perc 0.25',
        'layerskip:prompt_tokens_total',
        'layerskip:generation_tokens_total',
        'layerskip:request_success_total{finished_reason="stop"}',
        'layerskip:time_to_first_token_seconds_bucket{le="0.005"}',
        'layerskip:inter_token_latency_seconds_count',
        'layerskip:e2e_request_latency_seconds_sum',
        'layerskip:spec_decode_num_drafts_total',
        'layerskip:spec_decode_num_draft_tokens_total',
        'layerskip:spec_decode_num_accepted_tokens_total',
        'layerskip:http_requests_total{endpoint="/v1/completions",status="200"}',
        '# TYPE layerskip:time_to_first_token_seconds histogram',
      ]) {
        assert.ok(text.includes(name), `missing ${name}`);
      }
      assert.ok(fixture.logLines.some((line) => /^POST \/v1\/completions 200 \d+ms prompt=3 completion=8$/.test(line)), fixture.logLines.join('\n'));
    });

    it('tokenizes and detokenizes', async function () {
      const tokens = ((await (await post('/tokenize', { content: 'Hello world' })).json()) as { tokens: number[] }).tokens;
      assert.deepEqual(tokens, [9906, 1917]);
      const withBos = ((await (await post('/tokenize', { content: 'Hello world', add_special: true })).json()) as { tokens: number[] }).tokens;
      assert.deepEqual(withBos, [128000, 9906, 1917]);
      assert.deepEqual(await (await post('/detokenize', { tokens })).json(), { content: 'Hello world' });
      assert.equal(((await (await post('/detokenize', { tokens: [1, 'a'] })).json()) as { error: { param: string } }).error.param, 'tokens[1]');
    });
  });

  describe('a model without a tokenizer, a small body limit', function () {
    let tinyServer: RunningServer;
    let tinyEngine: FakeEngine;
    before(async function () {
      tinyEngine = new FakeEngine(64);
      tinyServer = await startServer({ engine: tinyEngine, model: fixture.tiny, modelId: 'tiny', host: '127.0.0.1', port: 0, bodyLimitBytes: 2048, defaults: DEFAULTS, metrics: new ServerMetrics() });
    });

    it('takes token ids, refuses text with a clear 400', async function () {
      const send = (path: string, body: unknown) => fetch(tinyServer.url + path, { method: 'POST', body: JSON.stringify(body) });
      assert.equal((await send('/v1/completions', { prompt: [1, 2, 3] })).status, 200);
      for (const [path, body, param] of [
        ['/v1/completions', { prompt: 'text' }, 'prompt'],
        ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, 'messages'],
        ['/tokenize', { content: 'x' }, 'content'],
      ] as const) {
        const error = ((await (await send(path, body)).json()) as { error: { param: string; message: string } }).error;
        assert.equal(error.param, param);
        assert.match(error.message, /no tokenizer/);
      }
    });

    it('answers 413 past the body limit, declared or streamed', async function () {
      const big = JSON.stringify({ prompt: [1], padding: 'x'.repeat(4096) });
      const declared = await fetch(tinyServer.url + '/v1/completions', { method: 'POST', body: big });
      assert.equal(declared.status, 413);
      assert.equal(((await declared.json()) as { error: { code: string } }).error.code, 'request_too_large');
      const streamed = await fetch(tinyServer.url + '/v1/completions', {
        method: 'POST',
        body: new Blob([big]).stream(),
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
    });

    it('close() closes the engine with the deadline and stops listening', async function () {
      await tinyServer.close(250);
      assert.equal(tinyEngine.closedWith, 250);
      await assert.rejects(fetch(tinyServer.url + '/health'));
    });
  });
});
