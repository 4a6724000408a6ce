// The batching engine on the demo model: requests run side by side (plain, early-exit and self-speculative,
// joining at different times, prompts sharing prefixes) give exactly the greedy text each gives alone through
// model.generate(); sampled requests are reproducible by seed; abort frees the slot; the queue limit and close()
// behave as documented.
import assert from 'node:assert/strict';
import path from 'node:path';

import { loadModel, type LayerSkipModel } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import type { EngineRequest, EngineStrategy } from '../lib/server/engine-api.js';
import { QueueFullError } from '../lib/server/engine-api.js';
import { BatchEngine } from '../lib/server/batch-engine.js';

const PROMPTS = [
  'def fibonacci(n):',
  'import os\nimport sys\n\n',
  'class Stack:\n    def __init__(self):',
  'def fibonacci(n):\n    """Return',
  'for i in range(10):',
  '# Copyright',
  'def parse_args(argv):',
  'import os\nimport json\n',
];

function strategies(numLayers: number): EngineStrategy[] {
  return [
    { generationStrategy: 'autoregressive', exitLayer: numLayers, numSpeculations: 1, draftConfidence: 0 },
    { generationStrategy: 'self_speculative', exitLayer: 2, numSpeculations: 3, draftConfidence: 0 },
    { generationStrategy: 'autoregressive', exitLayer: Math.max(1, numLayers - 1), numSpeculations: 1, draftConfidence: 0 },
    { generationStrategy: 'self_speculative', exitLayer: 3, numSpeculations: 5, draftConfidence: 0.3 },
  ];
}

describe('batching engine (continuous batching over the demo model)', function () {
  let model: LayerSkipModel;
  before(async function () {
    model = await loadModel(path.join(packageRoot(), 'models', 'default'), { threads: 2 });
  });
  after(async function () {
    await model?.dispose();
  });

  function request(prompt: string, strategy: EngineStrategy, extra: Partial<EngineRequest> = {}): EngineRequest {
    return {
      promptIds: model.encode(prompt),
      maxTokens: 40,
      sampling: { temperature: 0, topK: 0, topP: 1 },
      seed: 1,
      stopStrings: [],
      strategy,
      ...extra,
    };
  }

  it('gives every concurrent greedy request exactly its single-request text, whatever the strategy mix', async function () {
    const all = strategies(model.info.numLayers);
    const cases = PROMPTS.map((prompt, i) => ({ prompt, strategy: all[i % all.length] }));
    const expected: number[][] = [];
    for (const { prompt, strategy } of cases) {
      const single = await model.generate(prompt, { maxSteps: 40, ...strategy });
      expected.push(single.tokenIds);
    }
    for (const speculation of ['always', 'adaptive'] as const) {
      const engine = await BatchEngine.create(model, { parallel: 4, queueLimit: 16, requestTimeoutMs: 0, speculation });
      try {
        const pieces: string[][] = cases.map(() => []);
        // Half start together, half join while the first ones decode.
        const first = cases.slice(0, 4).map((c, i) => engine.submit(request(c.prompt, c.strategy, { onText: (p) => pieces[i].push(p) })));
        await new Promise((resolve) => setTimeout(resolve, 20));
        const later = cases.slice(4).map((c, i) => engine.submit(request(c.prompt, c.strategy, { onText: (p) => pieces[i + 4].push(p) })));
        const results = await Promise.all([...first, ...later]);
        results.forEach((result, i) => {
          assert.deepEqual(result.tokenIds, expected[i], `${speculation}: request ${i} (${cases[i].strategy.generationStrategy})`);
          assert.equal(pieces[i].join(''), result.text);
          assert.equal(result.promptTokens, model.encode(cases[i].prompt).length);
        });
        if (speculation === 'always') {
          const speculative = results.filter((_, i) => cases[i].strategy.generationStrategy === 'self_speculative');
          assert.ok(speculative.every((r) => r.timings.draftN > 0), 'speculative requests drafted');
        }
      } finally {
        await engine.close(1000);
      }
    }
  });

  it('reproduces a sampled request from its seed, alone or beside others, under either speculation policy', async function () {
    for (const speculation of ['always', 'adaptive'] as const) {
      const engine = await BatchEngine.create(model, { parallel: 3, queueLimit: 8, requestTimeoutMs: 0, speculation });
      try {
        for (const strategy of strategies(model.info.numLayers)) {
          const sampled = (seed: number) =>
            request('def fibonacci(n):', strategy, { sampling: { temperature: 0.9, topK: 0, topP: 0.95 }, seed, maxTokens: 60 });
          const alone = await engine.submit(sampled(7));
          const [beside, other] = await Promise.all([engine.submit(sampled(7)), engine.submit(sampled(8)), engine.submit(sampled(9))]);
          assert.deepEqual(beside.tokenIds, alone.tokenIds, `${speculation}, ${strategy.generationStrategy} E ${strategy.exitLayer}`);
          assert.ok(other.tokenIds.length > 0);
        }
      } finally {
        await engine.close(1000);
      }
    }
  });

  it('frees an aborted request\'s slot within a step and refuses work beyond the queue limit', async function () {
    const engine = await BatchEngine.create(model, { parallel: 1, queueLimit: 1, requestTimeoutMs: 0 });
    try {
      const strategy = strategies(model.info.numLayers)[0];
      const controller = new AbortController();
      let pieces = 0;
      const running = engine.submit(
        request(PROMPTS[0], strategy, {
          maxTokens: 200,
          signal: controller.signal,
          onText: () => {
            if (++pieces === 3) controller.abort();
          },
        }),
      );
      const queued = engine.submit(request(PROMPTS[1], strategy, { maxTokens: 5 }));
      await assert.rejects(engine.submit(request(PROMPTS[2], strategy)), QueueFullError);
      const aborted = await running;
      assert.equal(aborted.finishReason, 'abort');
      assert.ok(aborted.tokenIds.length < 20, `stopped soon after the abort (${aborted.tokenIds.length} tokens)`);
      assert.equal((await queued).tokenIds.length, 5);
      assert.equal(engine.state().running, 0);
    } finally {
      await engine.close(1000);
    }
  });

  it('ends requests past the timeout and aborts in-flight work when close() reaches its deadline', async function () {
    const engine = await BatchEngine.create(model, { parallel: 2, queueLimit: 4, requestTimeoutMs: 30 });
    const strategy = strategies(model.info.numLayers)[0];
    const timedOut = await engine.submit(request(PROMPTS[0], strategy, { maxTokens: 100000 % model.info.contextLength }));
    assert.equal(timedOut.finishReason, 'timeout');
    await engine.close(1000);
    await assert.rejects(engine.submit(request(PROMPTS[0], strategy)), /shutting down/);

    const second = await BatchEngine.create(model, { parallel: 1, queueLimit: 4, requestTimeoutMs: 0 });
    const long = second.submit(request(PROMPTS[0], strategy, { maxTokens: 200 }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    await second.close(20);
    assert.equal((await long).finishReason, 'abort');
  });
});
