// ChatTemplate: renders chat messages to prompt text with the checkpoint's Jinja chat template, as transformers'
// apply_chat_template does: the template sees `messages`, `add_generation_prompt: true` and the special tokens
// (bos_token, eos_token, …) from tokenizer_config.json. The rendered text already holds BOS when the template
// writes it, so the caller encodes it with addSpecialTokens false.
//
// Where the template comes from, as transformers looks for it: chat_template.jinja, then chat_template.json's
// "chat_template", then tokenizer_config.json's "chat_template" (a string, or a list of {name, template} of which
// "default" is used).
import fs from 'node:fs/promises';
import path from 'node:path';
import { Template } from '@huggingface/jinja';

import { ApiError } from './api-error.js';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** tokenizer_config.json keys transformers passes to the template as special_tokens_map. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A special-token entry is a string or an AddedToken object {content}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

/** The template source in a tokenizer_config.json / chat_template.json value: a string or named templates. */
function templateSource(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((entry) => isObject(entry) && entry.name === 'default') ?? value[0];
    if (isObject(named) && typeof named.template === 'string') return named.template;
  }
  return undefined;
}

export class ChatTemplate {
  private readonly specialTokens: Record<string, string> = {};
  private template: Template | undefined;
  private parseError: string | undefined;

  /** `tokenizerConfig`: the parsed tokenizer_config.json, for the special tokens. */
  constructor(
    readonly source: string,
    tokenizerConfig: JsonObject = {},
  ) {
    for (const key of SPECIAL_TOKEN_KEYS) {
      const content = tokenContent(tokenizerConfig[key]);
      if (content !== undefined) this.specialTokens[key] = content;
    }
    // A template that does not parse fails chat requests with the parser's message, not the whole server.
    try {
      this.template = new Template(source);
    } catch (error) {
      this.parseError = (error as Error).message;
    }
  }

  /**
   * The template of a model folder (see the header for where it looks), or undefined when it has none.
   * `sourceOverride` replaces the folder's template; the special tokens still come from the folder.
   */
  static async fromDir(dir: string, sourceOverride?: string): Promise<ChatTemplate | undefined> {
    const tokenizerConfig = (await readJson(path.join(dir, 'tokenizer_config.json'))) ?? {};
    if (sourceOverride !== undefined) return new ChatTemplate(sourceOverride, tokenizerConfig);
    const jinjaFile = path.join(dir, 'chat_template.jinja');
    const jinja = await fs.readFile(jinjaFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new Error(`cannot read ${jinjaFile}: ${error.message}`, { cause: error });
    });
    const source =
      jinja ?? templateSource((await readJson(path.join(dir, 'chat_template.json')))?.chat_template) ?? templateSource(tokenizerConfig.chat_template);
    return source === undefined ? undefined : new ChatTemplate(source, tokenizerConfig);
  }

  /** The prompt text for `messages`, ending with the assistant's turn header. Any failure is a 400. */
  render(messages: ChatMessage[]): string {
    if (!this.template) throw new ApiError(400, `the model's chat template does not parse: ${this.parseError}`, { param: 'messages' });
    try {
      return this.template.render({ ...this.specialTokens, messages, add_generation_prompt: true });
    } catch (error) {
      throw new ApiError(400, `the model's chat template failed on these messages: ${(error as Error).message}`, { param: 'messages' });
    }
  }
}

/** The 400 for a chat request to a model without a template. */
export function noChatTemplateError(): ApiError {
  return new ApiError(400, 'this model has no chat template (tokenizer_config.json has no chat_template): use /v1/completions with a prompt', {
    param: 'messages',
  });
}

/** A JSON object file, or null when the file does not exist; malformed JSON throws naming the file. */
async function readJson(file: string): Promise<JsonObject | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (!isObject(value)) throw new Error('expected a JSON object');
    return value;
  } catch (error) {
    throw new Error(`malformed JSON in ${file}: ${(error as Error).message}`, { cause: error });
  }
}
