#!/usr/bin/env node
// Runs the CUDA tests without a GPU: builds the engine with its CUDA backend on the CPU emulator (cuda/emulator/,
// CMake option LAYERSKIP_CUDA_EMULATOR) into build-cuda-emulator/ — the C++ tests and, through cmake-js, an addon —
// then runs every cuda_* C++ test (each kernel against its CPU twin, whole-model logits, batch invariance, greedy
// self-speculative == autoregressive), one test per process and as many at once as there are cores, and the mocha
// CUDA suite (test/cuda.test.ts) against that addon. The emulated addon is for these tests only.
// Needs cmake and the CUDA toolkit's headers (not a GPU or driver); without them it says so and exits 0.
// LAYERSKIP_EMULATOR_BUILD_DIR=DIR builds elsewhere; arguments narrow the C++ tests by name (substring) and skip mocha.
// LAYERSKIP_EMULATOR_ASAN=1 builds the C++ tests with AddressSanitizer instead (build-cuda-emulator-asan/, no addon):
// device allocations are exact-size heap blocks, so a kernel reading or writing past a buffer is reported with its
// kernel, file and line. About 2–3× slower.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const asan = process.env.LAYERSKIP_EMULATOR_ASAN === '1';
const buildDir = path.resolve(
  root,
  process.env.LAYERSKIP_EMULATOR_BUILD_DIR ?? (asan ? 'build-cuda-emulator-asan' : 'build-cuda-emulator'),
);
const asanFlags = '-fsanitize=address -fno-omit-frame-pointer';
const filters = process.argv.slice(2);
const jobs = Math.max(1, availableParallelism());

function run(command, args) {
  return spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
}

function skip(reason) {
  process.stderr.write(`layerskip: skipping the CUDA emulator tests: ${reason}\n`);
  process.exit(0);
}

if (run('cmake', ['--version']).error) skip('cmake is not installed');
// cmake-js configures the same tree plus the addon target; plain cmake (no addon, no mocha suite) without it, or
// under AddressSanitizer (an instrumented addon cannot load into an uninstrumented node).
let cmakeJs;
try {
  cmakeJs = asan ? undefined : path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
} catch {
  cmakeJs = undefined;
}
const configureOnce = () =>
  cmakeJs
    ? run(process.execPath, [cmakeJs, 'configure', '--log-level', 'warn', '--out', buildDir, '--CDLAYERSKIP_CUDA_EMULATOR=ON'])
    : run('cmake', [
        '-S', root, '-B', buildDir, '-DLAYERSKIP_CUDA_EMULATOR=ON',
        ...(asan
          ? ['-DCMAKE_BUILD_TYPE=RelWithDebInfo', `-DCMAKE_CXX_FLAGS=${asanFlags}`, `-DCMAKE_EXE_LINKER_FLAGS=${asanFlags}`]
          : ['-DCMAKE_BUILD_TYPE=Release']),
      ]);
let configure = configureOnce();
if (configure.status !== 0 && `${configure.stdout}${configure.stderr}`.toLowerCase().includes('does not match the generator')) {
  rmSync(buildDir, { recursive: true, force: true });  // configured earlier with another generator: start over
  configure = configureOnce();
}
if (configure.status !== 0) {
  const output = `${configure.stdout}${configure.stderr}`;
  if (output.includes("needs the CUDA toolkit's headers")) skip('no CUDA toolkit headers (cuda_runtime.h) found');
  process.stderr.write(output);
  process.exit(1);
}
process.stdout.write(`layerskip: building the CUDA emulator tests in ${path.relative(root, buildDir)} …\n`);
const build = run('cmake', ['--build', buildDir, '-j', String(jobs), ...(cmakeJs ? [] : ['--target', 'layerskip_core_tests'])]);
if (build.status !== 0) {
  process.stderr.write(`${build.stdout}${build.stderr}`);
  process.exit(1);
}

const executable = path.join(buildDir, 'layerskip_core_tests');
const listed = run(executable, ['--list', 'cuda_']);
const names = listed.stdout.split('\n').filter((name) => name && (filters.length === 0 || filters.some((f) => name.includes(f))));
if (names.length === 0) {
  process.stderr.write('layerskip: no CUDA tests matched\n');
  process.exit(1);
}

// One process per test (the emulator is single-threaded), `jobs` at a time.
const started = Date.now();
const totals = { passed: 0, failed: 0, skipped: 0 };
const queue = [...names];
async function worker() {
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const { code, output } = await new Promise((resolve) => {
      // Through sh so stderr (the emulator's launch-failure reasons) interleaves with stdout in order.
      const env = asan ? { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } : process.env;
      const child = spawn('sh', ['-c', '"$0" "$1" 2>&1', executable, name], { cwd: root, env });
      let text = '';
      child.stdout.on('data', (chunk) => { text += chunk; });
      child.on('close', (status) => resolve({ code: status, output: text }));
    });
    const summary = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;
    const lines = output.split('\n').filter((line) => line.length > 0);
    const counts = lines.map((line) => summary.exec(line)).findLast((match) => match !== null);
    process.stdout.write(`${lines.filter((line) => !summary.test(line)).join('\n')}\n`);
    if (counts) {
      totals.passed += Number(counts[1]);
      totals.failed += Number(counts[2]);
      totals.skipped += Number(counts[3]);
    }
    if (!counts || (code !== 0 && Number(counts[2]) === 0)) totals.failed += 1;  // crashed or died mid-test
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, names.length) }, worker));
const seconds = ((Date.now() - started) / 1000).toFixed(0);
process.stdout.write(`CUDA emulator${asan ? ' (AddressSanitizer)' : ''}, C++: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped (${seconds}s, ${jobs} at a time)\n`);

// The JavaScript side of the CUDA backend (device selection, upload progress, memory info, generation).
const addon = path.join(buildDir, 'Release', 'layerskip.node');
let mochaFailed = false;
if (filters.length === 0 && existsSync(addon)) {
  const mocha = path.join(path.dirname(require.resolve('mocha/package.json')), 'bin', 'mocha.js');
  const suite = spawnSync(
    process.execPath,
    [mocha, '--no-config', '--node-option', 'import=tsx', '--extension', 'ts', '--timeout', '600000', 'test/cuda.test.ts'],
    { cwd: root, stdio: 'inherit', env: { ...process.env, LAYERSKIP_ADDON_PATH: addon } },
  );
  mochaFailed = suite.status !== 0;
}
process.exit(totals.failed === 0 && !mochaFailed ? 0 : 1);
