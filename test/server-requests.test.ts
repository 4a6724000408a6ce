// Requests to `layerskip serve` that are not what the engine can run: every field's validation (status, OpenAI
// error type and `param`), unknown models and bodies that are not JSON objects; chat template rendering; the
// Prometheus text format of the metrics registry.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { ChatTemplate } from '../lib/server/chat-template.js';
import { MetricsRegistry } from '../lib/server/metrics.js';
import { CONTEXT_LENGTH, LLAMA3_TWO_MESSAGES, useProtocolServer } from './helpers/protocol-server.js';

describe('server requests (validation, chat templates, metrics format)', function () {
  const fixture = useProtocolServer();
  const post = (path: string, body: unknown) => fixture.post(path, body);

  describe('chat template', function () {
    it('renders a two-message conversation as Llama 3 does', async function () {
      const template = await ChatTemplate.fromDir(fixture.dirs['tok-llama3']);
      const messages = [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'Hi there! ' },
      ];
      assert.equal(template?.render(messages), LLAMA3_TWO_MESSAGES);
    });

    it('takes special tokens as strings or {content}; a folder without a template has none; failures are 400s', async function () {
      const template = new ChatTemplate('{{ bos_token }}{{ messages[0].content }}{{ eos_token }}', { bos_token: { content: '<s>' }, eos_token: '</s>' });
      assert.equal(template.render([{ role: 'user', content: 'x' }]), '<s>x</s>');
      assert.equal(await ChatTemplate.fromDir(fixture.dirs['tiny-gqa-bf16']), undefined);
      const raising = new ChatTemplate("{{ raise_exception('roles must alternate') }}");
      assert.throws(() => raising.render([]), (error: Error & { status?: number }) => error.status === 400 && /roles must alternate/.test(error.message));
      assert.throws(() => new ChatTemplate('{% if %}').render([]), (error: Error & { status?: number }) => error.status === 400 && /does not parse/.test(error.message));
    });
  });

  describe('validation', function () {
    const completionCases: Array<[string, Record<string, unknown>, string]> = [
      ['temperature above 2', { temperature: 3 }, 'temperature'],
      ['top_p 0', { top_p: 0 }, 'top_p'],
      ['negative top_k', { top_k: -1 }, 'top_k'],
      ['fractional top_k', { top_k: 1.5 }, 'top_k'],
      ['max_tokens 0', { max_tokens: 0 }, 'max_tokens'],
      ['fractional seed', { seed: 1.5 }, 'seed'],
      ['five stop strings', { stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      ['an empty stop string', { stop: ['a', ''] }, 'stop[1]'],
      ['stream not a boolean', { stream: 'yes' }, 'stream'],
      ['include_usage not a boolean', { stream: true, stream_options: { include_usage: 'y' } }, 'stream_options.include_usage'],
      ['n 2', { n: 2 }, 'n'],
      ['logprobs above 20', { logprobs: 21 }, 'logprobs'],
      ['fractional logprobs', { logprobs: 1.5 }, 'logprobs'],
      ['echo', { echo: true }, 'echo'],
      ['best_of 2', { best_of: 2 }, 'best_of'],
      ['suffix', { suffix: 'tail' }, 'suffix'],
      ['a frequency penalty', { frequency_penalty: 0.5 }, 'frequency_penalty'],
      ['two prompts', { prompt: ['a', 'b'] }, 'prompt'],
      ['a negative token id', { prompt: [1, -1] }, 'prompt[1]'],
      ['a token id past the vocabulary', { prompt: [[1, 128256]] }, 'prompt[0][1]'],
      ['no prompt', { prompt: undefined }, 'prompt'],
      ['an object prompt', { prompt: { text: 'x' } }, 'prompt'],
      ['a prompt that fills the context', { prompt: new Array(CONTEXT_LENGTH).fill(1) }, 'prompt'],
      ['an unknown strategy', { layerskip: { generation_strategy: 'fast' } }, 'layerskip.generation_strategy'],
      ['exit_layer past the model', { layerskip: { exit_layer: 3 } }, 'layerskip.exit_layer'],
      // The fixture has no assistant_early_exit: drafting with every layer is never chosen silently.
      ['self_speculative without exit_layer', { layerskip: { generation_strategy: 'self_speculative' } }, 'layerskip.exit_layer'],
      ['17 speculations', { layerskip: { num_speculations: 17 } }, 'layerskip.num_speculations'],
      ['draft_confidence above 1', { layerskip: { draft_confidence: 2 } }, 'layerskip.draft_confidence'],
    ];
    for (const [name, fields, param] of completionCases) {
      it(`completions: ${name} → 400 naming ${param}`, async function () {
        const response = await post('/v1/completions', { prompt: 'Hi', ...fields });
        assert.equal(response.status, 400);
        const body = (await response.json()) as { error: { message: string; type: string; param: string } };
        assert.equal(body.error.type, 'invalid_request_error');
        assert.equal(body.error.param, param);
        assert.ok(body.error.message.length > 10, body.error.message);
      });
    }

    const chatCases: Array<[string, Record<string, unknown>, string]> = [
      ['no messages', { messages: undefined }, 'messages'],
      ['empty messages', { messages: [] }, 'messages'],
      ['an unknown role', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
      ['numeric content', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
      ['an image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].type'],
      ['tools', { tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
      ['logprobs not a boolean', { logprobs: 2 }, 'logprobs'],
      ['top_logprobs without logprobs', { top_logprobs: 2 }, 'top_logprobs'],
      ['top_logprobs above 20', { logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      ['a JSON response format', { response_format: { type: 'json_object' } }, 'response_format'],
      ['max_completion_tokens 0', { max_completion_tokens: 0 }, 'max_completion_tokens'],
    ];
    for (const [name, fields, param] of chatCases) {
      it(`chat: ${name} → 400 naming ${param}`, async function () {
        const response = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], ...fields });
        assert.equal(response.status, 400);
        assert.equal(((await response.json()) as { error: { param: string } }).error.param, param);
      });
    }

    it('an unknown model is 404 model_not_found; a body that is not a JSON object is 400', async function () {
      await assert.rejects(fixture.client.completions.create({ model: 'gpt-4', prompt: 'Hi' }), (error: InstanceType<typeof OpenAI.NotFoundError>) => {
        return error instanceof OpenAI.NotFoundError && error.code === 'model_not_found' && error.param === 'model';
      });
      for (const body of ['{"prompt": ', '[1, 2]', '']) {
        const response = await post('/v1/completions', body);
        assert.equal(response.status, 400, body);
        assert.equal(((await response.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
      }
      await assert.rejects(fixture.client.completions.create({ model: 'tok-llama3', prompt: 'Hi', temperature: 5 }), OpenAI.BadRequestError);
      assert.equal(fixture.engine.requests.length, 0, 'nothing invalid reaches the engine');
    });
  });

  it('the metrics registry writes the text format', function () {
    const registry = new MetricsRegistry();
    registry.counter('demo_total', 'A counter.\nTwo lines.', { labelled: true }).inc(2, { path: 'a"b\\c' });
    const histogram = registry.histogram('demo_seconds', 'A histogram.', [0.1, 1]);
    histogram.observe(0.05);
    histogram.observe(0.5);
    histogram.observe(5);
    assert.equal(
      registry.render(),
      [
        '# HELP demo_total A counter.\\nTwo lines.',
        '# TYPE demo_total counter',
        'demo_total{path="a\\"b\\\\c"} 2',
        '# HELP demo_seconds A histogram.',
        '# TYPE demo_seconds histogram',
        'demo_seconds_bucket{le="0.1"} 1',
        'demo_seconds_bucket{le="1"} 2',
        'demo_seconds_bucket{le="+Inf"} 3',
        'demo_seconds_sum 5.55',
        'demo_seconds_count 3',
        '',
      ].join('\n'),
    );
  });
});
