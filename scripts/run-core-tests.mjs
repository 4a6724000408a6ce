#!/usr/bin/env node
// Runs the C++ test executable that the CMake build produces next to the addon (build/layerskip_core_tests).
// Builds made by the node-gyp fallback have no such executable; then this says so and exits 0.
// LAYERSKIP_BUILD_DIR=DIR (as for scripts/install.mjs) looks in DIR instead of build/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.resolve(root, process.env.LAYERSKIP_BUILD_DIR ?? 'build');
const candidates = ['layerskip_core_tests', 'Release/layerskip_core_tests'].map((p) => path.join(buildDir, p));
const executable = candidates.find((candidate) => existsSync(candidate));
if (!executable) {
  process.stderr.write('layerskip: no C++ test executable (the addon was built by node-gyp); skipping the core tests\n');
  process.exit(0);
}
const result = spawnSync(executable, process.argv.slice(2), { stdio: 'inherit' });
process.exit(result.status ?? 1);
