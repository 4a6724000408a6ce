// Load test for `layerskip serve` (loopback only, bounded in time and requests). Starts a server in this process on
// the demo model (or targets --url), first asks every prompt of the mix alone to get its single-request greedy
// text, then runs N concurrent streaming clients for --duration seconds with mixed prompt lengths and strategies
// (autoregressive, early exit, self-speculative). Every streamed answer must equal its single-request text (no
// garbled or interleaved streams). Reports requests, throughput, p50/p95 time to first token and inter-token
// latency, and errors; exits 1 on any failure or mismatch.
//
//   npx tsx scripts/load-test.ts [--clients 8] [--duration 60] [--max-requests 100000] [--max-tokens 48]
//                                [--parallel 8] [--url http://127.0.0.1:8080] [--json]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { cpuInfo, loadModel } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { BatchEngine } from '../lib/server/batch-engine.js';
import { startServer } from '../lib/server/http-server.js';
import { ServerMetrics } from '../lib/server/metrics.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '8' },
    duration: { type: 'string', default: '60' },
    'max-requests': { type: 'string', default: '100000' },
    'max-tokens': { type: 'string', default: '48' },
    parallel: { type: 'string', default: '8' },
    url: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const clients = Number(args.clients);
const durationMs = Number(args.duration) * 1000;
const maxRequests = Number(args['max-requests']);
const maxTokens = Number(args['max-tokens']);

// Prompts of different lengths (5 to ~150 tokens: the demo model holds 256 positions) and the strategies requests ask for.
const BASE = ['def fibonacci(n):', 'import os\nimport sys\n\n', 'class Stack:\n    def __init__(self):', '# Copyright (c) 2001 Python Software Foundation\n'];
const PROMPTS = [...BASE, ...BASE.map((text) => (text + '\n').repeat(6)), BASE.join('\n').repeat(2)];
const STRATEGIES = [
  undefined,
  { generation_strategy: 'self_speculative', exit_layer: 2, num_speculations: 3 },
  { generation_strategy: 'self_speculative', exit_layer: 3, num_speculations: 4, draft_confidence: 0.4 },
  { generation_strategy: 'autoregressive', exit_layer: 3 },
];

interface Outcome {
  ok: boolean;
  error?: string;
  ttftMs: number;
  interTokenMs: number[];
  tokens: number;
  text: string;
}

// One streaming completion over raw SSE (chunks are parsed as OpenAI frames them).
async function complete(url: string, prompt: string, layerskip: unknown): Promise<Outcome> {
  const started = performance.now();
  const outcome: Outcome = { ok: false, ttftMs: NaN, interTokenMs: [], tokens: 0, text: '' };
  try {
    const response = await fetch(url + '/v1/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true }, layerskip }),
    });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    let last = started;
    let done = false;
    for await (const bytes of response.body) {
      buffer += decoder.decode(bytes as Uint8Array, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith('data: ')) throw new Error(`malformed event ${JSON.stringify(event)}`);
        const data = event.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) outcome.tokens = chunk.usage.completion_tokens;
        const text = chunk.choices?.[0]?.text ?? '';
        if (text.length === 0) continue;
        const now = performance.now();
        if (outcome.text.length === 0) outcome.ttftMs = now - started;
        else outcome.interTokenMs.push(now - last);
        last = now;
        outcome.text += text;
      }
    }
    if (!done) throw new Error('the stream ended without [DONE]');
    outcome.ok = true;
  } catch (error) {
    outcome.error = (error as Error).message;
  }
  return outcome;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

let url = args.url;
let stopServer: (() => Promise<void>) | undefined;
let setup = `server at ${url}`;
if (!url) {
  const model = await loadModel(path.join(packageRoot(), 'models', 'default'));
  const metrics = new ServerMetrics();
  const engine = await BatchEngine.create(model, { parallel: Number(args.parallel), queueLimit: 256, requestTimeoutMs: 0, observer: metrics });
  const defaults = { generationStrategy: 'autoregressive' as const, exitLayer: model.info.numLayers, numSpeculations: 4, draftConfidence: 0 };
  const server = await startServer({ engine, model, modelId: 'demo', host: '127.0.0.1', port: 0, defaults, metrics });
  url = server.url;
  stopServer = async () => {
    await server.close(5000);
    await model.dispose();
  };
  setup = `demo model in process, --parallel ${args.parallel}, ${model.info.backend}, ${cpuInfo().model}, ${os.cpus().length} CPUs`;
}

// Single-request texts, one request at a time, for every prompt and strategy of the mix.
const expected = new Map<string, string>();
const key = (prompt: string, strategy: unknown) => JSON.stringify([prompt, strategy]);
for (const prompt of PROMPTS) {
  for (const strategy of STRATEGIES) {
    const alone = await complete(url, prompt, strategy);
    if (!alone.ok) throw new Error(`single request failed: ${alone.error}`);
    expected.set(key(prompt, strategy), alone.text);
  }
}

const outcomes: Outcome[] = [];
const mismatches: string[] = [];
let issued = 0;
const deadline = performance.now() + durationMs;
const started = performance.now();
await Promise.all(
  Array.from({ length: clients }, async (_, client) => {
    for (let i = client; performance.now() < deadline && issued < maxRequests; i += clients) {
      issued++;
      const prompt = PROMPTS[(i * 7) % PROMPTS.length];
      const strategy = STRATEGIES[(i * 3 + client) % STRATEGIES.length];
      const outcome = await complete(url!, prompt, strategy);
      outcomes.push(outcome);
      if (outcome.ok && outcome.text !== expected.get(key(prompt, strategy))) {
        mismatches.push(`${JSON.stringify(prompt.slice(0, 30))} ${JSON.stringify(strategy)}: ${JSON.stringify(outcome.text.slice(0, 60))}`);
      }
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
await stopServer?.();

const ok = outcomes.filter((o) => o.ok);
const failures = outcomes.filter((o) => !o.ok);
const tokens = ok.reduce((sum, o) => sum + o.tokens, 0);
const report = {
  setup,
  clients,
  seconds: elapsed,
  requests: outcomes.length,
  failed: failures.length,
  mismatched: mismatches.length,
  tokensPerSecond: tokens / elapsed,
  requestsPerSecond: ok.length / elapsed,
  ttftMsP50: percentile(ok.map((o) => o.ttftMs), 50),
  ttftMsP95: percentile(ok.map((o) => o.ttftMs), 95),
  interTokenMsP50: percentile(ok.flatMap((o) => o.interTokenMs), 50),
  interTokenMsP95: percentile(ok.flatMap((o) => o.interTokenMs), 95),
  errors: [...new Set(failures.map((o) => o.error))].slice(0, 5),
  mismatches: mismatches.slice(0, 5),
};
if (args.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`${report.setup}; ${clients} clients for ${elapsed.toFixed(0)} s`);
  console.log(
    `requests ${report.requests} (failed ${report.failed}, mismatched ${report.mismatched}); ${report.tokensPerSecond.toFixed(1)} tok/s, ` +
      `${report.requestsPerSecond.toFixed(2)} req/s; TTFT p50 ${report.ttftMsP50.toFixed(0)} ms, p95 ${report.ttftMsP95.toFixed(0)} ms; ` +
      `inter-token p50 ${report.interTokenMsP50.toFixed(1)} ms, p95 ${report.interTokenMsP95.toFixed(1)} ms`,
  );
  for (const error of report.errors) console.log(`error: ${error}`);
  for (const mismatch of report.mismatches) console.log(`mismatch: ${mismatch}`);
}
process.exitCode = failures.length > 0 || mismatches.length > 0 ? 1 : 0;
