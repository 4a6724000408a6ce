#!/usr/bin/env node
// The `layerskip` command. Runs the compiled CLI (dist/), or the TypeScript sources through tsx in a checkout
// that has not been compiled yet (or when LAYERSKIP_FROM_SOURCE=1, as the tests do).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'lib', 'cli', 'main.js');
let main;
if (existsSync(compiled) && process.env.LAYERSKIP_FROM_SOURCE !== '1') {
  ({ main } = await import(pathToFileURL(compiled).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(pathToFileURL(join(root, 'lib', 'cli', 'main.ts')).href));
}
process.exitCode = await main(process.argv.slice(2));
