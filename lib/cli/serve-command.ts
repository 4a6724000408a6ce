// `layerskip serve`: an OpenAI-compatible HTTP server (lib/server) over one model with continuous batching.
// Loads the model, starts the batching engine and the server, logs one line per request to stderr, and on
// SIGINT / SIGTERM stops accepting, lets in-flight requests finish until --shutdown-timeout, then exits 0.
import fs from 'node:fs';
import path from 'node:path';

import { DEFAULT_NUM_SPECULATIONS, type GenerationStrategy } from '../generation/options.js';
import type { LayerSkipModel, ModelInfo } from '../model.js';
import { BatchEngine } from '../server/batch-engine.js';
import { MAX_NUM_SPECULATIONS, type EngineStrategy } from '../server/engine-api.js';
import { startServerWhileLoading, type RunningServer, type ServerOptions } from '../server/http-server.js';
import { ServerMetrics } from '../server/metrics.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs } from './args.js';
import { defaultModelDir, ENGINE_OPTION_SPECS, commandLoadOptions } from './common.js';
import { loadModelWithProgress } from './load-progress.js';

export const serveSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'HuggingFace Llama checkpoint folder (default: the bundled demo model)' },
  host: { kind: 'string', placeholder: 'ADDR', description: 'address to bind (default 127.0.0.1: this machine only)' },
  port: { kind: 'integer', placeholder: 'N', description: 'TCP port (default 8080; 0 = any free port)' },
  parallel: { kind: 'integer', aliases: ['np'], placeholder: 'N', description: 'requests decoded together, each with its own KV cache (default 4)' },
  'queue-limit': { kind: 'integer', placeholder: 'N', description: 'requests waiting for a slot before new ones get 503 (default 64)' },
  'api-key': { kind: 'string', placeholder: 'KEY', description: 'require Authorization: Bearer KEY (default: $LAYERSKIP_API_KEY, else none)' },
  'model-id': { kind: 'string', placeholder: 'NAME', description: 'the model name clients see (default: the folder name)' },
  'generation-strategy': { kind: 'string', placeholder: 'NAME', description: 'default for requests: autoregressive (default) or self_speculative' },
  'exit-layer': { kind: 'integer', placeholder: 'E', description: "default early-exit / draft layer (self_speculative: the checkpoint's assistant_early_exit)" },
  'num-speculations': { kind: 'integer', placeholder: 'K', description: `default drafts per self-speculative round (default ${DEFAULT_NUM_SPECULATIONS}, at most ${MAX_NUM_SPECULATIONS})` },
  'draft-confidence': { kind: 'number', placeholder: 'P', description: 'default: stop drafting below this draft top probability (0 = off)' },
  speculation: { kind: 'string', placeholder: 'POLICY', description: 'adaptive (default: speculate when it raises throughput) or always' },
  'context-length': { kind: 'integer', placeholder: 'N', description: 'KV cache positions per slot (default min(model max, 4096))' },
  'request-timeout': { kind: 'number', placeholder: 'S', description: 'end a request running longer than S seconds (default 600; 0 = never)' },
  'shutdown-timeout': { kind: 'number', placeholder: 'S', description: 'on SIGTERM, let requests finish for S seconds (default 10)' },
  'chat-template': { kind: 'string', placeholder: 'FILE', description: 'Jinja chat template to use instead of the checkpoint\'s' },
  device: { kind: 'string', placeholder: 'NAME', description: 'cpu (default), cuda or auto' },
  threads: { kind: 'integer', placeholder: 'N', description: 'CPU threads (default: one per core)' },
  ...ENGINE_OPTION_SPECS,
  quiet: { kind: 'boolean', description: 'no access log' },
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const serveHelp = formatHelp(
  'Usage: layerskip serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--parallel N] [options]',
  'Serves the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health,\n' +
    '/metrics, /tokenize, /detokenize), decoding concurrent requests together. See README "Serving".',
  serveSpecs,
);

function positive(name: string, value: unknown, fallback: number, { min = 1, max = Infinity } = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw new UsageError(`--${name} must be in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

// The strategy requests get when they do not say; checked against the model once it is loaded. A self_speculative
// server without --exit-layer / --num-speculations drafts with the checkpoint's own settings.
function defaultStrategy(options: Record<string, unknown>, info: ModelInfo): EngineStrategy {
  const generationStrategy = (options['generation-strategy'] as string | undefined) ?? 'autoregressive';
  if (generationStrategy !== 'autoregressive' && generationStrategy !== 'self_speculative') {
    throw new UsageError(`--generation-strategy must be autoregressive or self_speculative, got "${generationStrategy}"`);
  }
  const speculative = generationStrategy === 'self_speculative';
  const checkpoint = speculative ? info.speculationDefaults : {};
  if (speculative && options['exit-layer'] === undefined && checkpoint.exitLayer === undefined) {
    throw new UsageError(
      "--generation-strategy self_speculative needs --exit-layer E, the draft depth: the checkpoint's generation_config.json " +
        'has no assistant_early_exit (`layerskip sweep --write-defaults` measures and stores one)',
    );
  }
  const exitLayer = positive('exit-layer', options['exit-layer'], checkpoint.exitLayer ?? info.numLayers, { max: info.numLayers });
  if (!Number.isInteger(exitLayer)) throw new UsageError('--exit-layer must be an integer');
  const numSpeculations = Math.min(checkpoint.numSpeculations ?? DEFAULT_NUM_SPECULATIONS, MAX_NUM_SPECULATIONS);
  return {
    generationStrategy: generationStrategy as GenerationStrategy,
    exitLayer,
    numSpeculations: positive('num-speculations', options['num-speculations'], numSpeculations, { max: MAX_NUM_SPECULATIONS }),
    draftConfidence: positive('draft-confidence', options['draft-confidence'], 0, { min: 0, max: 1 }),
  };
}

export async function runServeCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, serveSpecs);
  if (options.help) {
    process.stdout.write(serveHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], serveSpecs);
  const host = (options.host as string | undefined) ?? '127.0.0.1';
  const port = positive('port', options.port, 8080, { min: 0, max: 65535 });
  const parallel = positive('parallel', options.parallel, 4, { max: 256 });
  const queueLimit = positive('queue-limit', options['queue-limit'], 64, { min: 0 });
  const requestTimeoutMs = positive('request-timeout', options['request-timeout'], 600, { min: 0 }) * 1000;
  const shutdownMs = positive('shutdown-timeout', options['shutdown-timeout'], 10, { min: 0 }) * 1000;
  const speculation = (options.speculation as string | undefined) ?? 'adaptive';
  if (speculation !== 'adaptive' && speculation !== 'always') throw new UsageError(`--speculation must be adaptive or always, got "${speculation}"`);
  const apiKey = (options['api-key'] as string | undefined) ?? process.env.LAYERSKIP_API_KEY;
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError('--api-key must not be empty');
  const chatTemplateFile = options['chat-template'] as string | undefined;
  const chatTemplate = chatTemplateFile === undefined ? undefined : fs.readFileSync(chatTemplateFile, 'utf8');
  const modelDir = (options.model as string | undefined) ?? defaultModelDir();

  const modelId = (options['model-id'] as string | undefined) ?? path.basename(path.resolve(modelDir));
  const metrics = new ServerMetrics();
  let model: LayerSkipModel | undefined; // set once loaded, so a failed start still frees it
  // Listen first (health answers "loading"), then load the model and start the engine.
  const listening = await startServerWhileLoading(host, port, async (): Promise<ServerOptions> => {
    model = await loadModelWithProgress(modelDir, commandLoadOptions(options));
    const defaults = defaultStrategy(options, model.info);
    const engine = await BatchEngine.create(model, { parallel, queueLimit, requestTimeoutMs, speculation, observer: metrics });
    const log = options.quiet ? undefined : (line: string) => process.stderr.write(line + '\n');
    return { engine, model, modelId, host, port, apiKey, defaults, metrics, chatTemplate, log };
  });
  process.stderr.write(`layerskip serve: listening on ${listening.url}; loading ${modelDir}\n`);
  let server: RunningServer;
  try {
    server = await listening.ready;
  } catch (error) {
    await model?.dispose();
    throw error;
  }
  const { engine, defaults } = server.options;
  const loaded = server.options.model;
  process.stderr.write(
    `layerskip serve: ${modelId} on ${server.url} — ${parallel} slots × ${engine.contextLength} positions, ` +
      `${loaded.info.backend}; default ${defaults.generationStrategy}` +
      (defaults.generationStrategy === 'self_speculative' ? ` (exit ${defaults.exitLayer}, k ${defaults.numSpeculations})` : '') +
      `${apiKey ? '; API key required' : ''}\n`,
  );

  // Runs until a signal: stop accepting, finish or cancel in-flight work, free the model, exit 0. A second signal
  // while shutting down exits at once.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`layerskip serve: ${signal}; finishing in-flight requests (up to ${shutdownMs / 1000} s)\n`);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await server.close(shutdownMs);
  await loaded.dispose();
  process.stderr.write('layerskip serve: stopped\n');
  return 0;
}
