// Helpers shared by the CLI subcommands.
import fs from 'node:fs';
import path from 'node:path';

import { packageRoot } from '../native.js';
import { UsageError } from './args.js';

/** The demo model bundled with the package, used when --model is not given. */
export function defaultModelDir(): string {
  const dir = path.join(packageRoot(), 'models', 'default');
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    throw new UsageError('no bundled default model in this build of layerskip; pass --model DIR (a HuggingFace Llama folder)');
  }
  return dir;
}

/** All of stdin when it is piped; undefined on a TTY. */
export async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
