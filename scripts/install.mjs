#!/usr/bin/env node
// Builds the native addon on `npm install`: cmake-js (CPU backend + CUDA when nvcc is found) when CMake is
// available, otherwise node-gyp with binding.gyp (CPU backend only). Never downloads anything.
//   LAYERSKIP_CUDA=ON|OFF|AUTO   force the CUDA backend on or off (default AUTO)
//   LAYERSKIP_CUDA_ARCHS=80;90   CUDA architectures to compile for
//   LAYERSKIP_SKIP_BUILD=1       skip the native build (packaging only)
//   LAYERSKIP_BUILD_DIR=DIR      CMake build folder (default build/); load that addon with
//                                LAYERSKIP_ADDON_PATH=/absolute/DIR/Release/layerskip.node
//   LAYERSKIP_SANITIZE=1         ASan + UBSan build, for tests only (README "Fuzzing and sanitizers"); use with
//                                LAYERSKIP_BUILD_DIR, and preload libasan into node to load it
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function log(message) {
  process.stderr.write(`layerskip: ${message}\n`);
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.error) return { ok: false, reason: result.error.message };
  return { ok: result.status === 0, reason: `${command} exited with code ${result.status}` };
}

function hasCommand(command) {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !probe.error && probe.status === 0;
}

function buildWithCmake() {
  const cuda = (process.env.LAYERSKIP_CUDA ?? 'AUTO').toUpperCase();
  if (!['ON', 'OFF', 'AUTO'].includes(cuda)) {
    return { ok: false, reason: `LAYERSKIP_CUDA must be ON, OFF or AUTO, got "${process.env.LAYERSKIP_CUDA}"` };
  }
  const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  // Configure every time (cheap when nothing changed) so a changed LAYERSKIP_CUDA takes effect, then build.
  const out = process.env.LAYERSKIP_BUILD_DIR ? ['--out', path.resolve(root, process.env.LAYERSKIP_BUILD_DIR)] : [];
  const configure = [cmakeJs, 'configure', '--log-level', 'warn', ...out, `--CDLAYERSKIP_CUDA=${cuda}`];
  if (process.env.LAYERSKIP_CUDA_ARCHS) configure.push(`--CDLAYERSKIP_CUDA_ARCHS=${process.env.LAYERSKIP_CUDA_ARCHS}`);
  configure.push(`--CDLAYERSKIP_SANITIZE=${process.env.LAYERSKIP_SANITIZE === '1' ? 'ON' : 'OFF'}`);
  process.env.CMAKE_BUILD_PARALLEL_LEVEL ??= String(Math.max(1, availableParallelism()));
  const configured = run(process.execPath, configure);
  if (!configured.ok) return configured;
  return run(process.execPath, [cmakeJs, 'build', '--log-level', 'warn', ...out]);
}

function buildWithNodeGyp() {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled) return run(process.execPath, [bundled, 'rebuild']);
  return run('node-gyp', ['rebuild']);
}

if (process.env.LAYERSKIP_SKIP_BUILD === '1') {
  log('LAYERSKIP_SKIP_BUILD=1: skipping the native build');
  process.exit(0);
}

if (hasCommand('cmake')) {
  log('building the native engine with cmake-js');
  const result = buildWithCmake();
  if (result.ok) process.exit(0);
  if (process.env.LAYERSKIP_BUILD_DIR) {
    log(`cmake-js build failed (${result.reason}); no node-gyp fallback with LAYERSKIP_BUILD_DIR (it writes build/)`);
    process.exit(1);
  }
  log(`cmake-js build failed (${result.reason}); trying node-gyp for the CPU backend`);
} else {
  log('CMake was not found on PATH: building the CPU backend with node-gyp (binding.gyp). ' +
      'Install CMake to also build the CUDA backend.');
}
const fallback = buildWithNodeGyp();
if (!fallback.ok) {
  log(`node-gyp build failed too (${fallback.reason}). layerskip needs a C++17 compiler; see README.md.`);
  process.exit(1);
}
