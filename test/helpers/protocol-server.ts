// Mocha setup for the server protocol suites: tok-llama3 (Llama 3 tokenizer and chat template) served by
// startServer over a FakeEngine with an API key, an `openai` client and fetch helpers for it, and tiny-gqa-bf16 (no
// tokenizer) for suites that start their own server. The returned record is filled in place by the `before` hook;
// each test starts with the fake engine reset.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { loadModel, type LayerSkipModel } from '../../lib/index.js';
import type { EngineStrategy } from '../../lib/server/engine-api.js';
import { startServer, type RunningServer } from '../../lib/server/http-server.js';
import { ServerMetrics } from '../../lib/server/metrics.js';
import { ensureFixtures } from '../fixtures/make-fixtures.js';
import { FakeEngine } from './fake-engine.js';

export const API_KEY = 'test-key-123';
/** The fake engine's positions per request. */
export const CONTEXT_LENGTH = 256;
export const DEFAULTS: EngineStrategy = { generationStrategy: 'autoregressive', exitLayer: 2, numSpeculations: 4, draftConfidence: 0 };

/** tok-llama3's chat template applied to [system "Be brief.", user "Hi there! "] (the template trims content). */
export const LLAMA3_TWO_MESSAGES =
  '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
  '<|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';

export interface ProtocolServer {
  dirs: Record<string, string>;
  /** tok-llama3, served. */
  model: LayerSkipModel;
  /** tiny-gqa-bf16: no tokenizer. */
  tiny: LayerSkipModel;
  engine: FakeEngine;
  metrics: ServerMetrics;
  server: RunningServer;
  client: OpenAI;
  logLines: string[];
  /** POST with the API key; a string body is sent as is. */
  post(path: string, body: unknown): Promise<Response>;
  /** GET with the API key unless `headers` replace it. */
  get(path: string, headers?: Record<string, string>): Promise<Response>;
}

export function useProtocolServer(): ProtocolServer {
  const fixture = { logLines: [] as string[] } as unknown as ProtocolServer;
  fixture.post = (path, body) =>
    fetch(fixture.server.url + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  fixture.get = (path, headers = { Authorization: `Bearer ${API_KEY}` }) => fetch(fixture.server.url + path, { headers });

  before(async function () {
    fixture.dirs = ensureFixtures(['tok-llama3', 'tiny-gqa-bf16']);
    fixture.model = await loadModel(fixture.dirs['tok-llama3'], { threads: 1, contextLength: 64 });
    fixture.tiny = await loadModel(fixture.dirs['tiny-gqa-bf16'], { threads: 1, contextLength: 64 });
    fixture.metrics = new ServerMetrics();
    fixture.engine = new FakeEngine(CONTEXT_LENGTH, fixture.metrics);
    fixture.server = await startServer({
      engine: fixture.engine,
      model: fixture.model,
      modelId: 'tok-llama3',
      host: '127.0.0.1',
      port: 0,
      apiKey: API_KEY,
      defaults: DEFAULTS,
      metrics: fixture.metrics,
      log: (line) => fixture.logLines.push(line),
    });
    fixture.client = new OpenAI({ baseURL: fixture.server.url + '/v1', apiKey: API_KEY, maxRetries: 0 });
  });
  after(async function () {
    await fixture.server?.close(1000);
    await fixture.model?.dispose();
    await fixture.tiny?.dispose();
  });
  beforeEach(function () {
    fixture.engine.reset();
  });
  return fixture;
}

/** Raw SSE body → the parsed `data:` payloads ([DONE] as the string). */
export function sseEvents(body: string): unknown[] {
  assert.ok(body.endsWith('\n\n'), 'every event ends with a blank line');
  return body
    .split('\n\n')
    .filter(Boolean)
    .map((event) => {
      assert.match(event, /^data: /);
      const data = event.slice('data: '.length);
      return data === '[DONE]' ? data : JSON.parse(data);
    });
}
