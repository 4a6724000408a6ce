// Parses and validates the JSON bodies of POST /v1/completions and /v1/chat/completions into what the engine runs
// (an EngineRequest without its signal and callback) and how to answer (stream, include_usage). Every bad field is
// an ApiError 400 naming it in `param`, as OpenAI does; fields OpenAI has and this server does not implement are a
// 400 saying so (never silently ignored); fields nobody here knows (`user`, `metadata`, …) are ignored.
//
// Defaults follow OpenAI: temperature 1, top_p 1, max_tokens 16 for completions; chat generates until the context
// is full. A max_tokens beyond the context is clamped to what fits (the engine ends there with "length"), as
// llama-server does, rather than refused. Extensions: top_k and ignore_eos (llama.cpp / vLLM), and a `layerskip`
// object choosing the generation strategy per request.
import type { SpeculationDefaults } from '../generation/checkpoint-defaults.js';
import { MAX_NUM_SPECULATIONS, type EngineRequest, type EngineStrategy } from './engine-api.js';
import { ApiError, invalidField, unsupportedField } from './api-error.js';
import { noChatTemplateError, type ChatMessage, type ChatTemplate } from './chat-template.js';

export { ApiError } from './api-error.js';

/** What parsing needs to know about the served model. */
export interface RequestContext {
  modelId: string;
  vocabSize: number;
  /** Positions one request may use (prompt + generated). */
  contextLength: number;
  numLayers: number;
  /** The server's strategy, for fields the `layerskip` object leaves out. */
  defaults: EngineStrategy;
  /** The checkpoint's own E and k, for a self_speculative request to an autoregressive server. */
  checkpointSpeculation?: SpeculationDefaults;
  /** Token ids of prompt text; undefined when the model has no tokenizer. */
  encode?: (text: string, addSpecialTokens: boolean) => number[];
  /** The checkpoint's chat template; undefined when it has none. */
  chatTemplate?: ChatTemplate;
}

export interface ParsedRequest extends Omit<EngineRequest, 'signal' | 'onText' | 'onLogprobs'> {
  stream: boolean;
  /** Streaming: end with a chunk carrying `usage` (stream_options.include_usage). */
  includeUsage: boolean;
}

export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;
const MAX_STOP_STRINGS = 4;

type Body = Record<string, unknown>;

/** The most alternatives a logprobs request may ask for per token (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

export function parseCompletionRequest(body: unknown, context: RequestContext): ParsedRequest {
  const request = requireObject(body);
  const settings = parseSettings(request, context, COMPLETION_UNSUPPORTED);
  // Completions: `logprobs: N` asks for each token's log-probability and its N most likely alternatives.
  const logprobs = optionalInteger(request, 'logprobs', 0, MAX_TOP_LOGPROBS);
  const promptIds = parsePrompt(field(request, 'prompt'), context);
  return withLength({ ...settings, logprobs }, request, promptIds, 'prompt', context, COMPLETIONS_DEFAULT_MAX_TOKENS);
}

// Chat: `logprobs: true` asks for each token's log-probability, `top_logprobs: N` (needs it) for N alternatives.
function parseChatLogprobs(request: Body): number | undefined {
  const wanted = field(request, 'logprobs');
  if (wanted !== undefined && typeof wanted !== 'boolean') throw invalidField('logprobs', `logprobs must be true or false, got ${show(wanted)}`);
  const top = optionalInteger(request, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && wanted !== true) throw invalidField('top_logprobs', 'top_logprobs needs logprobs: true');
  return wanted === true ? (top ?? 0) : undefined;
}

export function parseChatRequest(body: unknown, context: RequestContext): ParsedRequest {
  const request = requireObject(body);
  const settings = { ...parseSettings(request, context, CHAT_UNSUPPORTED), logprobs: parseChatLogprobs(request) };
  const messages = parseMessages(field(request, 'messages'));
  if (!context.encode) throw noTokenizerError('messages', '/v1/chat/completions needs one');
  if (!context.chatTemplate) throw noChatTemplateError();
  const promptIds = context.encode(context.chatTemplate.render(messages), false);
  return withLength(settings, request, promptIds, 'messages', context, undefined);
}

/** POST /tokenize: {content, add_special?} (llama-server's; add_special defaults to false as there). */
export function parseTokenizeRequest(body: unknown): { content: string; addSpecial: boolean } {
  const request = requireObject(body);
  const content = field(request, 'content');
  if (typeof content !== 'string') throw invalidField('content', `content must be a string, got ${show(content)}`);
  return { content, addSpecial: optionalBoolean(request, 'add_special') ?? false };
}

/** POST /detokenize: {tokens}. */
export function parseDetokenizeRequest(body: unknown, vocabSize: number): number[] {
  const tokens = field(requireObject(body), 'tokens');
  if (!Array.isArray(tokens)) throw invalidField('tokens', `tokens must be an array of token ids, got ${show(tokens)}`);
  return tokenIds(tokens, 'tokens', vocabSize);
}

export function noTokenizerError(param: string, need: string): ApiError {
  return invalidField(param, `this model has no tokenizer (no tokenizer.json in its folder): ${need}; give /v1/completions a prompt of token ids`);
}

// --- Settings shared by both endpoints ---

type Settings = Omit<ParsedRequest, 'promptIds' | 'maxTokens'>;

function parseSettings(request: Body, context: RequestContext, unsupported: UnsupportedRule[]): Settings {
  const model = field(request, 'model');
  if (model !== undefined && model !== context.modelId) {
    throw new ApiError(404, `the model ${show(model)} does not exist: this server serves ${JSON.stringify(context.modelId)}`, {
      param: 'model',
      code: 'model_not_found',
    });
  }
  for (const rule of unsupported) {
    const value = field(request, rule.key);
    if (value !== undefined && rule.inUse(value)) throw unsupportedField(rule.key, `${rule.key}: ${rule.message}`);
  }
  const temperature = optionalNumber(request, 'temperature', 0, 2) ?? 1;
  const topP = optionalNumber(request, 'top_p', 0, 1, { exclusiveMin: true }) ?? 1;
  const topK = optionalInteger(request, 'top_k', 0, context.vocabSize) ?? 0;
  const seed = optionalInteger(request, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? Math.floor(Math.random() * 2 ** 32);
  const stream = optionalBoolean(request, 'stream') ?? false;
  const streamOptions = field(request, 'stream_options');
  if (streamOptions !== undefined && !isObject(streamOptions)) {
    throw invalidField('stream_options', `stream_options must be an object, got ${show(streamOptions)}`);
  }
  // include_usage only changes a stream; a non-streaming answer always has usage.
  const includeUsage = stream && (streamOptions ? optionalBoolean(streamOptions, 'include_usage', 'stream_options.') : undefined) === true;
  const ignoreEos = optionalBoolean(request, 'ignore_eos') ?? false;
  return {
    sampling: { temperature, topK, topP },
    seed,
    stopStrings: parseStop(field(request, 'stop')),
    ...(ignoreEos ? { stopTokenIds: [] } : {}),
    strategy: parseStrategy(field(request, 'layerskip'), context),
    stream,
    includeUsage,
  };
}

/** Adds the prompt and max_tokens (max_completion_tokens), clamped to the room the context leaves. */
function withLength(
  settings: Settings,
  request: Body,
  promptIds: number[],
  promptParam: string,
  context: RequestContext,
  defaultMaxTokens: number | undefined,
): ParsedRequest {
  const maxTokens = optionalInteger(request, 'max_tokens', 1);
  const maxCompletionTokens = optionalInteger(request, 'max_completion_tokens', 1);
  if (maxTokens !== undefined && maxCompletionTokens !== undefined && maxTokens !== maxCompletionTokens) {
    throw invalidField('max_completion_tokens', 'max_tokens and max_completion_tokens are the same limit; give one of them');
  }
  const room = context.contextLength - promptIds.length;
  if (room < 1) {
    throw new ApiError(400, `the prompt is ${promptIds.length} tokens and the context holds ${context.contextLength}: no room left to generate`, {
      param: promptParam,
      code: 'context_length_exceeded',
    });
  }
  const requested = maxCompletionTokens ?? maxTokens ?? defaultMaxTokens ?? room;
  return { ...settings, promptIds, maxTokens: Math.min(requested, room) };
}

function parseStop(value: unknown): string[] {
  if (value === undefined) return [];
  const strings = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(strings) || strings.length > MAX_STOP_STRINGS) {
    throw invalidField('stop', `stop must be a string or an array of at most ${MAX_STOP_STRINGS} strings, got ${show(value)}`);
  }
  strings.forEach((entry, index) => {
    if (typeof entry !== 'string' || entry.length === 0) {
      throw invalidField(typeof value === 'string' ? 'stop' : `stop[${index}]`, `stop strings must be non-empty strings, got ${show(entry)}`);
    }
  });
  return strings as string[];
}

/**
 * The `layerskip` object; absent fields take the server's defaults. Two exceptions, both about what the server's
 * exit layer means: a request that switches a self_speculative server to autoregressive without an exit_layer runs
 * the full model (the server's exit layer is a draft depth, not an exit meant for the answer); one that switches an
 * autoregressive server to self_speculative drafts at the checkpoint's assistant_early_exit, and without one must
 * give exit_layer (drafting with every layer would gain nothing).
 */
function parseStrategy(value: unknown, context: RequestContext): EngineStrategy {
  const defaults = context.defaults;
  if (value === undefined) return { ...defaults };
  if (!isObject(value)) throw invalidField('layerskip', `layerskip must be an object, got ${show(value)}`);
  const strategy = field(value, 'generation_strategy') ?? defaults.generationStrategy;
  if (strategy !== 'autoregressive' && strategy !== 'self_speculative') {
    throw invalidField('layerskip.generation_strategy', `layerskip.generation_strategy must be "autoregressive" or "self_speculative", got ${show(strategy)}`);
  }
  const switchedToFull = strategy === 'autoregressive' && defaults.generationStrategy === 'self_speculative';
  const switchedToSpeculative = strategy === 'self_speculative' && defaults.generationStrategy !== 'self_speculative';
  const checkpoint = switchedToSpeculative ? (context.checkpointSpeculation ?? {}) : {};
  const defaultExit = switchedToFull ? context.numLayers : switchedToSpeculative ? checkpoint.exitLayer : defaults.exitLayer;
  const exitLayer = optionalInteger(value, 'exit_layer', 1, context.numLayers, 'layerskip.') ?? defaultExit;
  if (exitLayer === undefined) {
    throw invalidField(
      'layerskip.exit_layer',
      'layerskip.generation_strategy "self_speculative" needs layerskip.exit_layer (the draft depth): this model has no assistant_early_exit default',
    );
  }
  return {
    generationStrategy: strategy,
    exitLayer,
    numSpeculations:
      optionalInteger(value, 'num_speculations', 1, MAX_NUM_SPECULATIONS, 'layerskip.') ??
      Math.min(checkpoint.numSpeculations ?? defaults.numSpeculations, MAX_NUM_SPECULATIONS),
    draftConfidence: optionalNumber(value, 'draft_confidence', 0, 1, { prefix: 'layerskip.' }) ?? defaults.draftConfidence,
  };
}

// --- Prompts ---

/** A completions prompt: a string, token ids, or an array holding exactly one of those. */
function parsePrompt(value: unknown, context: RequestContext): number[] {
  if (value === undefined) throw invalidField('prompt', 'prompt is required');
  const expectation = 'prompt must be a string, an array of token ids, or an array holding one string or one array of token ids';
  let prompt = value;
  let param = 'prompt';
  if (Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'string' || Array.isArray(entry))) {
    if (value.length > 1) {
      throw invalidField('prompt', `prompt holds ${value.length} prompts; this server completes one prompt per request (n = 1)`);
    }
    prompt = value[0];
    param = 'prompt[0]';
  }
  if (typeof prompt === 'string') {
    if (!context.encode) throw noTokenizerError(param, 'text prompts need one');
    const ids = context.encode(prompt, true);
    if (ids.length === 0) throw invalidField(param, 'prompt is empty');
    return ids;
  }
  if (!Array.isArray(prompt)) throw invalidField(param, `${expectation}, got ${show(value)}`);
  if (prompt.length === 0) throw invalidField(param, 'prompt is empty');
  return tokenIds(prompt, param, context.vocabSize);
}

function tokenIds(values: unknown[], param: string, vocabSize: number): number[] {
  values.forEach((id, index) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw invalidField(`${param}[${index}]`, `${param}[${index}] must be a token id, an integer in [0, ${vocabSize}), got ${show(id)}`);
    }
  });
  return values as number[];
}

const ROLES: Record<string, ChatMessage['role']> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

/** Chat messages with text content; content parts are joined with newlines (as vLLM does). */
function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidField('messages', `messages must be a non-empty array of {role, content}, got ${show(value)}`);
  }
  return value.map((message, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) throw invalidField(param, `${param} must be an object {role, content}, got ${show(message)}`);
    const role = message.role;
    if (role === 'tool' || role === 'function') throw unsupportedField(`${param}.role`, `${param}.role: tool messages are not supported`);
    if (typeof role !== 'string' || !Object.hasOwn(ROLES, role)) {
      throw invalidField(`${param}.role`, `${param}.role must be "system", "user" or "assistant" ("developer" reads as "system"), got ${show(role)}`);
    }
    if (Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
      throw unsupportedField(`${param}.tool_calls`, `${param}.tool_calls: tool calls are not supported`);
    }
    const content = field(message, 'content');
    if (content === undefined && role === 'assistant') return { role: 'assistant', content: '' };
    return { role: ROLES[role], content: messageText(content, `${param}.content`) };
  });
}

function messageText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalidField(param, `${param} must be a string or an array of text parts, got ${show(content)}`);
  return content
    .map((part, index) => {
      const partParam = `${param}[${index}]`;
      if (!isObject(part)) throw invalidField(partParam, `${partParam} must be an object {type: "text", text}, got ${show(part)}`);
      if (part.type !== 'text') {
        throw unsupportedField(`${partParam}.type`, `${partParam}.type: only text content parts are supported, got ${show(part.type)}`);
      }
      if (typeof part.text !== 'string') throw invalidField(`${partParam}.text`, `${partParam}.text must be a string, got ${show(part.text)}`);
      return part.text;
    })
    .join('\n');
}

// --- Fields OpenAI has and this server does not implement: a 400 when they ask for anything ---

interface UnsupportedRule {
  key: string;
  inUse: (value: unknown) => boolean;
  message: string;
}

const notOne = (value: unknown) => value !== 1;
const notZero = (value: unknown) => value !== 0;
const nonEmpty = (value: unknown) => !(Array.isArray(value) || isObject(value)) || Object.keys(value).length > 0;

const SHARED_UNSUPPORTED: UnsupportedRule[] = [
  { key: 'n', inUse: notOne, message: 'only n = 1 is supported (one choice per request)' },
  { key: 'frequency_penalty', inUse: notZero, message: 'penalties are not supported (only 0)' },
  { key: 'presence_penalty', inUse: notZero, message: 'penalties are not supported (only 0)' },
  { key: 'logit_bias', inUse: nonEmpty, message: 'logit_bias is not supported' },
];

const COMPLETION_UNSUPPORTED: UnsupportedRule[] = [
  ...SHARED_UNSUPPORTED,
  { key: 'echo', inUse: (value) => value !== false, message: 'echo is not supported' },
  { key: 'best_of', inUse: notOne, message: 'only best_of = 1 is supported' },
  { key: 'suffix', inUse: (value) => value !== '', message: 'suffix (insertion) is not supported' },
];

const CHAT_UNSUPPORTED: UnsupportedRule[] = [
  ...SHARED_UNSUPPORTED,
  { key: 'tools', inUse: nonEmpty, message: 'tools (function calling) are not supported' },
  { key: 'tool_choice', inUse: (value) => value !== 'none', message: 'tools (function calling) are not supported' },
  { key: 'functions', inUse: nonEmpty, message: 'functions (function calling) are not supported' },
  { key: 'function_call', inUse: (value) => value !== 'none', message: 'functions (function calling) are not supported' },
  { key: 'response_format', inUse: (value) => !isObject(value) || value.type !== 'text', message: 'only {"type": "text"} is supported' },
  { key: 'audio', inUse: () => true, message: 'audio output is not supported' },
  { key: 'modalities', inUse: (value) => !Array.isArray(value) || value.some((m) => m !== 'text'), message: 'only ["text"] is supported' },
];

// --- Field readers: null reads as absent (clients send null for "the default") ---

function requireObject(body: unknown): Body {
  if (!isObject(body)) throw new ApiError(400, `the request body must be a JSON object, got ${show(body)}`);
  return body;
}

function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(body: Body, key: string): unknown {
  const value = body[key];
  return value === null ? undefined : value;
}

function optionalInteger(body: Body, key: string, min: number, max = Number.MAX_SAFE_INTEGER, prefix = ''): number | undefined {
  const value = field(body, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = min === Number.MIN_SAFE_INTEGER ? '' : max === Number.MAX_SAFE_INTEGER ? ` ≥ ${min}` : ` in [${min}, ${max}]`;
    throw invalidField(prefix + key, `${prefix}${key} must be an integer${range}, got ${show(value)}`);
  }
  return value;
}

function optionalNumber(
  body: Body,
  key: string,
  min: number,
  max: number,
  { exclusiveMin = false, prefix = '' } = {},
): number | undefined {
  const value = field(body, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || value < min || (exclusiveMin && value === min)) {
    throw invalidField(prefix + key, `${prefix}${key} must be a number in ${exclusiveMin ? '(' : '['}${min}, ${max}], got ${show(value)}`);
  }
  return value;
}

function optionalBoolean(body: Body, key: string, prefix = ''): boolean | undefined {
  const value = field(body, key);
  if (value !== undefined && typeof value !== 'boolean') throw invalidField(prefix + key, `${prefix}${key} must be true or false, got ${show(value)}`);
  return value;
}

/** A value as JSON for an error message, cut to a readable length. */
function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
