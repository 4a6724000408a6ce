// `layerskip chat`: talk to a chat checkpoint. Each turn renders the whole conversation with the checkpoint's chat
// template (as transformers.js's apply_chat_template does) and generates the reply; the model's cache keeps the
// conversation, so a turn evaluates only its new tokens (generate() reuses the cached common prefix). On a TTY:
// a prompt, streaming, Ctrl-C stops the current answer (at the prompt it exits), /reset, /stats, /exit. Piped
// stdin: one message per line. --message: one answer, then exit.
import readline from 'node:readline';

import type { GenerationResult } from '../generation/generate.js';
import type { GenerationOptions } from '../generation/options.js';
import type { LayerSkipModel } from '../model.js';
import { ChatTemplate, type ChatMessage } from '../server/chat-template.js';
import { formatHelp, parseArgs, unexpectedArgument, UsageError, type OptionSpecs } from './args.js';
import { defaultModelDir, ENGINE_OPTION_SPECS, commandLoadOptions } from './common.js';
import { formatStats, generateSpecs, generationOptionsFrom } from './generate-command.js';
import { loadModelWithProgress } from './load-progress.js';

const GENERATION_FLAGS = [
  'max-steps', 'sample', 'temperature', 'top-k', 'top-p', 'seed', 'stop', 'generation-strategy', 'exit-layer',
  'num-speculations', 'draft-confidence', 'repetition-penalty', 'no-repeat-ngram-size', 'min-p',
] as const;

export const chatSpecs: OptionSpecs = {
  model: { kind: 'string', placeholder: 'DIR', description: 'a chat checkpoint folder (its tokenizer_config.json has a chat_template)' },
  system: { kind: 'string', placeholder: 'TEXT', description: 'system message that starts the conversation' },
  message: { kind: 'string', placeholder: 'TEXT', description: 'answer this one message and exit' },
  'chat-template': { kind: 'string', placeholder: 'FILE', description: "Jinja chat template to use instead of the checkpoint's" },
  ...Object.fromEntries(GENERATION_FLAGS.map((flag) => [flag, generateSpecs[flag]])),
  device: generateSpecs.device,
  threads: generateSpecs.threads,
  ...ENGINE_OPTION_SPECS,
  'context-length': generateSpecs['context-length'],
  help: { kind: 'boolean', aliases: ['h'], description: 'show this help' },
};

export const chatHelp = formatHelp(
  'Usage: layerskip chat --model DIR [--system TEXT] [--message TEXT] [options]',
  'Chats with a checkpoint through its chat template. Commands: /reset (new conversation), /stats (last answer),\n' +
    '/exit. Ctrl-C stops the answer being written; at the prompt it exits.',
  chatSpecs,
);

export async function runChatCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, chatSpecs);
  if (options.help) {
    process.stdout.write(chatHelp);
    return 0;
  }
  if (positionals.length > 0) throw unexpectedArgument(positionals[0], chatSpecs, 'did you mean --message?');
  const modelDir = (options.model as string | undefined) ?? defaultModelDir();
  const override = options['chat-template'] === undefined ? undefined : await readTemplateFile(options['chat-template'] as string);
  const model = await loadModelWithProgress(modelDir, commandLoadOptions(options));
  try {
    const template = await ChatTemplate.fromDir(model.info.dir, override);
    if (!template || !model.tokenizer) {
      process.stderr.write(
        `layerskip: ${model.info.dir} has no chat template (tokenizer_config.json "chat_template"): it is not a chat ` +
          'model. Use `layerskip generate --prompt …`, or give a template with --chat-template FILE\n',
      );
      return 1;
    }
    const generation = generationOptionsFrom(options, model);
    const chat = new Conversation(model, template, generation, options.system as string | undefined);
    if (options.message !== undefined) {
      const result = await chat.answer(options.message as string, (piece) => process.stdout.write(piece));
      if (process.stdout.isTTY) process.stdout.write('\n');
      process.stderr.write(formatStats(result) + '\n');
      return 0;
    }
    return await repl(chat);
  } finally {
    await model.dispose();
  }
}

async function readTemplateFile(file: string): Promise<string> {
  const fs = await import('node:fs/promises');
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--chat-template ${file}: ${(error as Error).message}`);
  }
}

/** The messages so far and how to answer the next one. */
class Conversation {
  private messages: ChatMessage[] = [];
  lastResult: GenerationResult | undefined;

  constructor(
    private readonly model: LayerSkipModel,
    private readonly template: ChatTemplate,
    private readonly generation: GenerationOptions,
    private readonly system: string | undefined,
  ) {
    this.reset();
  }

  reset(): void {
    this.messages = this.system ? [{ role: 'system', content: this.system }] : [];
  }

  /** Generates the reply to `text`, streaming it to `onText`; the exchange joins the history. */
  async answer(text: string, onText: (piece: string) => void, signal?: AbortSignal): Promise<GenerationResult> {
    this.messages.push({ role: 'user', content: text });
    const prompt = this.fittedPrompt();
    const stream = this.model.stream(prompt, { ...this.generation, signal });
    for await (const piece of stream) onText(piece);
    const result = await stream.result;
    this.messages.push({ role: 'assistant', content: result.text });
    this.lastResult = result;
    return result;
  }

  // The rendered conversation as token ids, dropping the oldest exchanges (never the system message or the new
  // message) until it leaves room to answer.
  private fittedPrompt(): number[] {
    const room = Math.min(256, Math.floor(this.model.info.contextLength / 4));
    while (true) {
      const ids = this.model.encode(this.template.render(this.messages), { addSpecialTokens: false });
      if (ids.length + room <= this.model.info.contextLength) return ids;
      const first = this.messages.findIndex((message) => message.role !== 'system');
      if (first < 0 || first === this.messages.length - 1) {
        throw new Error(`the message is ${ids.length} tokens; the context holds ${this.model.info.contextLength}`);
      }
      this.messages.splice(first, 2);
    }
  }
}

// The interactive loop (or, piped, one message per line).
async function repl(chat: Conversation): Promise<number> {
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  let answering: AbortController | undefined;
  rl.on('SIGINT', () => {
    if (answering) answering.abort();
    else rl.close();
  });
  if (tty) process.stdout.write('Type a message; /reset starts over, /stats shows the last answer\'s numbers, /exit quits.\n');
  const prompt = () => {
    if (tty) rl.setPrompt('> ');
    if (tty) rl.prompt();
  };
  prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === '/exit' || text === '/quit') break;
    if (text === '/reset') {
      chat.reset();
      process.stdout.write('(new conversation)\n');
    } else if (text === '/stats') {
      process.stdout.write((chat.lastResult ? formatStats(chat.lastResult) : '(no answer yet)') + '\n');
    } else if (text.length > 0) {
      answering = new AbortController();
      try {
        await chat.answer(text, (piece) => process.stdout.write(piece), answering.signal);
      } finally {
        answering = undefined;
      }
      process.stdout.write('\n');
    }
    prompt();
  }
  rl.close();
  return 0;
}
