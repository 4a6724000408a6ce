// The `layerskip` command: dispatches to subcommands; usage errors print one line and exit 2, other failures
// print the error message and exit 1.
import fs from 'node:fs';
import path from 'node:path';

import { packageRoot } from '../native.js';
import { closest, UsageError } from './args.js';
import { runBenchmarkCommand } from './benchmark-command.js';
import { runChatCommand } from './chat-command.js';
import { runCorrectnessCommand } from './correctness-command.js';
import { runEvalCommand } from './eval-command.js';
import { runGenerateCommand } from './generate-command.js';
import { runQuantizeCommand } from './quantize-command.js';
import { runServeCommand } from './serve-command.js';
import { runSweepCommand } from './sweep-command.js';
import { runTrainCommand } from './train-command.js';

const commands: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  generate: { summary: 'generate text from a prompt', run: runGenerateCommand },
  chat: { summary: 'chat with a checkpoint through its chat template', run: runChatCommand },
  correctness: { summary: 'check greedy self-speculative output against autoregressive', run: runCorrectnessCommand },
  train: { summary: 'train a model with the LayerSkip recipe (layer dropout + early-exit loss)', run: runTrainCommand },
  eval: { summary: 'per-exit-layer accuracy, perplexity and agreement; recommends an exit layer', run: runEvalCommand },
  benchmark: { summary: "tok/s on this machine; self-speculative speedup; LayerSkip's task benchmarks (--dataset)", run: runBenchmarkCommand },
  sweep: { summary: 'exit layer × draft length grid on a task: tokens/s and acceptance, heatmaps, the best setting', run: runSweepCommand },
  quantize: { summary: 'write a q8 / q4 quantized copy of a checkpoint', run: runQuantizeCommand },
  serve: { summary: 'OpenAI-compatible HTTP server with continuous batching', run: runServeCommand },
};

function mainHelp(): string {
  const rows = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(14)}${command.summary}`);
  return `Usage: layerskip <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun \`layerskip <command> --help\` for a command's options, \`layerskip --version\` for the version.\n`;
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  // Output piped into a reader that stopped (`| head`): end quietly, as Unix tools do.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`layerskip ${packageVersion()}\n`);
    return 0;
  }
  const command = commands[name];
  try {
    if (!command) {
      const suggestion = closest(name, Object.keys(commands));
      throw new UsageError(`unknown command "${name}" (${suggestion ? `did you mean ${suggestion}? ` : ''}commands: ${Object.keys(commands).join(', ')})`);
    }
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`layerskip: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`layerskip: ${(error as Error).message}\n`);
    return 1;
  }
}
