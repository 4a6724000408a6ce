// The HTTP side of `layerskip serve`: an OpenAI-compatible API on node:http in front of an Engine.
//   POST /v1/completions, POST /v1/chat/completions   (JSON, or SSE with "stream": true)
//   GET  /v1/models, GET /v1/models/{id}, GET /health, GET /metrics (Prometheus), POST /tokenize, POST /detokenize
// Every error is OpenAI's JSON shape (api-error.ts). With an API key, every route but /health wants
// `Authorization: Bearer KEY`. A client that goes away aborts its request, which frees its engine slot.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { TokenLogprob } from '../generation/logits-processing.js';
import type { LayerSkipModel } from '../model.js';
import { ApiError } from './api-error.js';
import { ChatTemplate } from './chat-template.js';
import { QueueFullError, type Engine, type EngineRequest, type EngineResult, type EngineStrategy } from './engine-api.js';
import { errorBody, readJsonBody, sendError, sendJson } from './http-json.js';
import { PROMETHEUS_CONTENT_TYPE, type ServerMetrics } from './metrics.js';
import {
  noTokenizerError,
  parseChatRequest,
  parseCompletionRequest,
  parseDetokenizeRequest,
  parseTokenizeRequest,
  type RequestContext,
} from './openai-request.js';
import { ResponseBuilder, type CompletionKind } from './openai-response.js';
import { SseWriter } from './sse.js';

export interface ServerOptions {
  engine: Engine;
  /** The loaded checkpoint: its tokenizer (may be absent: then only token-id prompts work), info and folder. */
  model: LayerSkipModel;
  /** The name clients pass as `model` and /v1/models lists. */
  modelId: string;
  host: string;
  /** 0 = any free port (see RunningServer.port). */
  port: number;
  /** When set, every route but /health wants `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Larger request bodies are answered 413. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** The generation strategy for requests without a `layerskip` object. */
  defaults: EngineStrategy;
  metrics: ServerMetrics;
  /** Receives one access-log line per request. */
  log?: (line: string) => void;
  /** Jinja source used instead of the checkpoint's chat template. */
  chatTemplate?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  /** What it serves (the engine, the model, the defaults). */
  options: ServerOptions;
  /** Stops accepting requests, lets the engine finish (aborting what runs past `deadlineMs`), closes the sockets. */
  close(deadlineMs: number): Promise<void>;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1 << 20;
// Receiving a request (not answering it) must not take longer than this; answers may stream for as long as needed.
const REQUEST_TIMEOUT_MS = 60_000;
const HEADERS_TIMEOUT_MS = 30_000;
// Longer than the usual 60 s idle timeout of load balancers, so they never reuse a socket this side has closed.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
// After the engine has closed, how long written answers get to reach their clients before sockets are cut.
const CLOSE_GRACE_MS = 1_000;

/** What one request did, for its access-log line and the http_requests_total metric. */
interface Exchange {
  endpoint: string;
  promptTokens?: number;
  completionTokens?: number;
}

type Handler = (request: http.IncomingMessage, response: http.ServerResponse, exchange: Exchange) => Promise<void> | void;

/** Listens, then serves the model (the model is loaded already). */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  return serve(await Listener.open(options.host, options.port), options);
}

/** A server that listens while the model loads: `ready` settles once it serves (or the load failed). */
export interface LoadingServer {
  url: string;
  port: number;
  ready: Promise<RunningServer>;
  /** Stops listening before the model has loaded. */
  abandon(): Promise<void>;
}

/**
 * Listens, then calls `load` and answers every request 503 until it resolves with the server's options (GET /health:
 * {"status":"loading"}; the others an OpenAI error with Retry-After), as llama-server does, so orchestrators see a
 * live but not ready server. A failed load stops the listener and rejects `ready`.
 */
export async function startServerWhileLoading(host: string, port: number, load: () => Promise<ServerOptions>): Promise<LoadingServer> {
  const listener = await Listener.open(host, port);
  listener.handler = answerLoading;
  const ready = load().then(
    (options) => serve(listener, options),
    async (error: unknown) => {
      await listener.shutdown(async () => {});
      throw error;
    },
  );
  ready.catch(() => {}); // surfaced to whoever awaits `ready`
  return { url: listener.url, port: listener.port, ready, abandon: () => listener.shutdown(async () => {}) };
}

function answerLoading(request: http.IncomingMessage, response: http.ServerResponse): void {
  if (pathOf(request) === '/health') {
    sendJson(response, 503, { status: 'loading' }, { 'Retry-After': '5' });
    return;
  }
  sendError(response, new ApiError(503, 'the model is still loading; retry shortly', { code: 'model_loading', retryAfterSeconds: 5 }));
}

async function serve(listener: Listener, options: ServerOptions): Promise<RunningServer> {
  const chatTemplate = await ChatTemplate.fromDir(options.model.info.dir, options.chatTemplate);
  const api = new OpenAiApi(options, chatTemplate);
  listener.handler = (request, response) => {
    api.handle(request, response).catch(() => response.destroy());
  };
  let closing: Promise<void> | undefined;
  return {
    url: listener.url,
    port: listener.port,
    options,
    close(deadlineMs: number) {
      closing ??= listener.shutdown(async () => {
        api.ready = false;
        await options.engine.close(deadlineMs);
      });
      return closing;
    },
  };
}

/** The node:http server, its address, and the handler requests go to (swapped when loading ends). */
class Listener {
  handler: (request: http.IncomingMessage, response: http.ServerResponse) => void = () => {};

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    readonly port: number,
  ) {}

  static async open(host: string, port: number): Promise<Listener> {
    let listener: Listener | undefined;
    const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, (request, response) =>
      listener!.handler(request, response),
    );
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = (server.address() as AddressInfo).port;
    const shownHost = host.includes(':') ? `[${host}]` : host;
    listener = new Listener(server, `http://${shownHost}:${bound}`, bound);
    return listener;
  }

  /** Stops accepting, runs `drain` (the engine finishing its work), then gives answers a grace period and closes. */
  async shutdown(drain: () => Promise<void>): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await drain();
    this.server.closeIdleConnections();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
    await Promise.race([closed, grace]);
    this.server.closeAllConnections();
    await closed;
  }
}

class OpenAiApi {
  /** False once closing: requests are then answered 503 and /health reports it. */
  ready = true;
  private readonly context: RequestContext;
  private readonly apiKeyDigest: Buffer | undefined;
  private readonly routes: Record<string, Partial<Record<string, Handler>>> = {
    '/v1/completions': { POST: (request, response, exchange) => this.complete(request, response, exchange, 'completion') },
    '/v1/chat/completions': { POST: (request, response, exchange) => this.complete(request, response, exchange, 'chat') },
    '/v1/models': { GET: (_, response) => sendJson(response, 200, { object: 'list', data: [this.modelCard()] }) },
    '/v1/models/{id}': { GET: (request, response) => this.retrieveModel(request, response) },
    '/health': { GET: (_, response) => sendJson(response, this.ready ? 200 : 503, { status: this.ready ? 'ok' : 'shutting_down' }) },
    '/metrics': { GET: (_, response) => this.sendMetrics(response) },
    '/tokenize': { POST: (request, response) => this.tokenize(request, response) },
    '/detokenize': { POST: (request, response) => this.detokenize(request, response) },
  };
  private readonly startedAt = Math.floor(Date.now() / 1000);

  constructor(
    private readonly options: ServerOptions,
    chatTemplate: ChatTemplate | undefined,
  ) {
    const { model, engine } = options;
    this.context = {
      modelId: options.modelId,
      vocabSize: model.info.vocabSize,
      contextLength: engine.contextLength,
      numLayers: engine.numLayers,
      defaults: options.defaults,
      checkpointSpeculation: model.info.speculationDefaults,
      encode: model.tokenizer ? (text, addSpecialTokens) => model.encode(text, { addSpecialTokens }) : undefined,
      chatTemplate,
    };
    this.apiKeyDigest = options.apiKey === undefined ? undefined : sha256(options.apiKey);
  }

  /** Routes one request; every failure becomes an OpenAI-shaped error answer, never an exception. */
  async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const path = pathOf(request);
    const endpoint = path.startsWith('/v1/models/') ? '/v1/models/{id}' : path;
    const exchange: Exchange = { endpoint: Object.hasOwn(this.routes, endpoint) ? endpoint : 'other' };
    response.on('error', () => {}); // a client that reset its socket is handled by 'close'
    response.once('close', () => this.record(request, path, response, exchange, performance.now() - started));
    try {
      if (!this.ready && path !== '/health') {
        response.setHeader('Connection', 'close');
        throw new ApiError(503, 'the server is shutting down', { code: 'shutting_down' });
      }
      if (path !== '/health') this.authenticate(request);
      const methods = this.routes[exchange.endpoint];
      if (!methods) throw new ApiError(404, `no route ${path}`, { code: 'not_found' });
      const handler = methods[request.method ?? ''];
      if (!handler) {
        response.setHeader('Allow', Object.keys(methods).join(', '));
        throw new ApiError(405, `${path} does not accept ${request.method}; use ${Object.keys(methods).join(', ')}`, { code: 'method_not_allowed' });
      }
      await handler(request, response, exchange);
    } catch (error) {
      if (!(error instanceof ApiError)) this.options.log?.(`error in ${request.method} ${path}: ${(error as Error)?.stack ?? String(error)}`);
      sendError(response, error);
    }
  }

  private authenticate(request: http.IncomingMessage): void {
    if (!this.apiKeyDigest) return;
    const given = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim() ?? '';
    // Equal-length digests let the comparison take the same time whatever the key given.
    if (!crypto.timingSafeEqual(sha256(given), this.apiKeyDigest)) {
      throw new ApiError(401, 'invalid or missing API key: send the header "Authorization: Bearer <key>"', { code: 'invalid_api_key' });
    }
  }

  /** POST /v1/completions and /v1/chat/completions. */
  private async complete(request: http.IncomingMessage, response: http.ServerResponse, exchange: Exchange, kind: CompletionKind): Promise<void> {
    const body = await readJsonBody(request, this.options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES);
    const parsed = kind === 'chat' ? parseChatRequest(body, this.context) : parseCompletionRequest(body, this.context);
    exchange.promptTokens = parsed.promptIds.length;
    const { stream, includeUsage, ...fields } = parsed;
    // Abort when the client goes away before its answer is complete: the engine frees the slot within a step.
    const controller = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) controller.abort();
    });
    if (response.destroyed || request.socket.destroyed) controller.abort();
    const engineRequest: EngineRequest = { ...fields, signal: controller.signal };
    const model = this.options.model;
    const tokenText = (id: number) => (model.tokenizer ? model.decode([id]) : String(id));
    const builder = new ResponseBuilder(kind, this.options.modelId, includeUsage, tokenText);
    if (stream) return this.stream(response, builder, engineRequest, includeUsage, exchange);
    const result = await this.submit(engineRequest);
    exchange.completionTokens = result.tokenIds.length;
    sendJson(response, 200, builder.full(result));
  }

  /**
   * Streams a completion as SSE. The stream opens with the first text (or the end), so a full queue or a failed
   * start is still an ordinary JSON error. Text arriving while the socket is backed up is merged into one chunk
   * sent when it drains: the engine never waits for a slow client.
   */
  private async stream(
    response: http.ServerResponse,
    builder: ResponseBuilder,
    engineRequest: EngineRequest,
    includeUsage: boolean,
    exchange: Exchange,
  ): Promise<void> {
    let writer: SseWriter | undefined;
    let pending = '';
    // With logprobs, the entries of the tokens whose text is pending go out with it.
    const wantsLogprobs = engineRequest.logprobs !== undefined;
    let pendingLogprobs: TokenLogprob[] = [];
    let waitingForDrain = false;
    const open = (): SseWriter => {
      if (writer) return writer;
      writer = new SseWriter(response);
      if (builder.kind === 'chat') writer.send(builder.roleChunk());
      return writer;
    };
    const flush = (): void => {
      const sse = open();
      if (pending === '' || waitingForDrain) return;
      if (sse.backedUp) {
        waitingForDrain = true;
        void sse.drained().then(() => {
          waitingForDrain = false;
          flush();
        });
        return;
      }
      sse.send(builder.textChunk(pending, wantsLogprobs ? pendingLogprobs : undefined));
      pending = '';
      pendingLogprobs = [];
    };

    let result: EngineResult;
    try {
      const onText = (piece: string) => {
        pending += piece;
        flush();
      };
      const onLogprobs = (entries: TokenLogprob[]) => pendingLogprobs.push(...entries);
      result = await this.submit({ ...engineRequest, onText, ...(wantsLogprobs ? { onLogprobs } : {}) });
    } catch (error) {
      if (!writer) throw error;
      if (!(error instanceof ApiError)) this.options.log?.(`error while streaming: ${(error as Error)?.stack ?? String(error)}`);
      writer.send(errorBody(error));
      writer.end();
      return;
    }
    exchange.completionTokens = result.tokenIds.length;
    const sse = open();
    if (pending !== '' || pendingLogprobs.length > 0) sse.send(builder.textChunk(pending, wantsLogprobs ? pendingLogprobs : undefined));
    pending = '';
    sse.send(builder.finishChunk(result));
    if (includeUsage) sse.send(builder.usageChunk(result));
    sse.done();
  }

  /** engine.submit, with a full queue as a 503 that tells the client when to retry. */
  private async submit(request: EngineRequest): Promise<EngineResult> {
    try {
      return await this.options.engine.submit(request);
    } catch (error) {
      if (error instanceof QueueFullError) {
        throw new ApiError(503, error.message, { code: 'server_busy', retryAfterSeconds: error.retryAfterSeconds });
      }
      throw error;
    }
  }

  private modelCard() {
    return { id: this.options.modelId, object: 'model', created: this.startedAt, owned_by: 'layerskip', max_model_len: this.context.contextLength };
  }

  private retrieveModel(request: http.IncomingMessage, response: http.ServerResponse): void {
    const raw = pathOf(request).slice('/v1/models/'.length);
    let id = raw;
    try {
      id = decodeURIComponent(raw);
    } catch {
      // a malformed escape is just an id that does not exist
    }
    if (id !== this.options.modelId) {
      throw new ApiError(404, `the model ${JSON.stringify(id)} does not exist: this server serves ${JSON.stringify(this.options.modelId)}`, {
        param: 'model',
        code: 'model_not_found',
      });
    }
    sendJson(response, 200, this.modelCard());
  }

  private sendMetrics(response: http.ServerResponse): void {
    const text = this.options.metrics.render(this.options.engine.state());
    response.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    response.end(text);
  }

  private async tokenize(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const { content, addSpecial } = parseTokenizeRequest(await readJsonBody(request, this.options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES));
    if (!this.options.model.tokenizer) throw noTokenizerError('content', '/tokenize needs one');
    sendJson(response, 200, { tokens: this.options.model.encode(content, { addSpecialTokens: addSpecial }) });
  }

  private async detokenize(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const body = await readJsonBody(request, this.options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES);
    const tokenizer = this.options.model.tokenizer;
    if (!tokenizer) throw noTokenizerError('tokens', '/detokenize needs one');
    sendJson(response, 200, { content: tokenizer.decode(parseDetokenizeRequest(body, tokenizer.vocabSize)) });
  }

  /** One access-log line and one metric count per request, when its response is over (complete or cut). */
  private record(request: http.IncomingMessage, path: string, response: http.ServerResponse, exchange: Exchange, ms: number): void {
    this.options.metrics.recordHttpRequest(exchange.endpoint, response.statusCode);
    if (!this.options.log) return;
    const tokens =
      exchange.promptTokens === undefined ? '' : ` prompt=${exchange.promptTokens} completion=${exchange.completionTokens ?? 0}`;
    const cut = response.writableFinished ? '' : ' (client closed)';
    this.options.log(`${request.method} ${path} ${response.statusCode} ${ms.toFixed(0)}ms${tokens}${cut}`);
  }
}

/** The URL's path, without the query string. */
function pathOf(request: http.IncomingMessage): string {
  return (request.url ?? '/').split('?')[0];
}

function sha256(text: string): Buffer {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}
