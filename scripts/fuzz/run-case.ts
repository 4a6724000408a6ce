// Runs one fuzz case in its own child process and gives it a verdict. The child runs under an address-space limit
// (prlimit --as; skipped under a sanitizer, whose shadow memory needs terabytes of address space), a wall-clock
// limit (a hang is killed) and an RSS watchdog that samples /proc/<pid>/status (over the limit is killed: a
// blow-up). The child is scripts/fuzz/child.ts bundled once per run with esbuild, so a case starts in ~0.1 s
// rather than the ~0.5 s of compiling lib/ again; without esbuild it runs through tsx.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { FuzzCase } from './cases.js';
import { materialize, type FixtureInfo } from './checkpoint-files.js';
import { encodeOptions, RESULT_PREFIX } from './values.js';

export const VERDICTS = ['clean-error', 'success', 'crash', 'hang', 'blow-up', 'silent-accept', 'wrong-refusal'] as const;
export type Verdict = (typeof VERDICTS)[number];
/** Verdicts that fail a run. */
export const FAILING_VERDICTS: readonly Verdict[] = ['crash', 'hang', 'blow-up', 'silent-accept', 'wrong-refusal'];

export interface Limits {
  timeoutMs: number; // a case running longer is a hang
  rssLimitBytes: number; // a case whose resident memory exceeds this is a blow-up
  addressSpaceBytes: number; // prlimit --as for the child (0: none)
}

export interface CaseResult {
  verdict: Verdict;
  stage?: string; // where a clean error or success came from: load or generate
  message: string; // the child's error or success line, or why it was judged a crash / hang / blow-up
  peakRssBytes: number;
  ms: number;
  stderrTail: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

// Markers of a native failure in stderr even when the process exits 0 (UBSan reports and continues).
const NATIVE_FAILURE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|terminate called|Assertion .* failed|Segmentation fault/;

export interface ChildCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** How to start a child: the bundled child.ts (esbuild) written into `workDir`, or tsx when bundling fails. */
export async function prepareChild(workDir: string): Promise<ChildCommand> {
  const env = { ...process.env };
  env.LAYERSKIP_ADDON_PATH ??= path.join(root, 'build', 'Release', 'layerskip.node');
  const source = path.join(here, 'child.ts');
  try {
    const esbuild = await import('esbuild');
    const outfile = path.join(workDir, 'child.mjs');
    await esbuild.build({
      entryPoints: [source], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent',
      // Bundled CommonJS dependencies call require(); the addon is required by its absolute path.
      banner: { js: "import { createRequire as __fuzzRequire } from 'node:module'; const require = __fuzzRequire(import.meta.url);" },
    });
    return { command: process.execPath, args: [outfile], env };
  } catch {
    return { command: process.execPath, args: ['--import', 'tsx', source], env };
  }
}

const underSanitizer = () => /asan|ubsan/.test(process.env.LD_PRELOAD ?? '');
const hasPrlimit = (() => {
  let known: boolean | undefined;
  return () => (known ??= !spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).error);
})();

function residentBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  killedFor?: 'hang' | 'blow-up';
  peakRssBytes: number;
  ms: number;
}

function runChild(child: ChildCommand, request: string, limits: Limits): Promise<ChildExit> {
  const useLimit = limits.addressSpaceBytes > 0 && !underSanitizer() && hasPrlimit();
  const [command, args] = useLimit
    ? ['prlimit', [`--as=${limits.addressSpaceBytes}`, child.command, ...child.args, request]]
    : [child.command, [...child.args, request]];
  const started = performance.now();
  return new Promise((resolve) => {
    const process_ = spawn(command, args, { cwd: root, env: child.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killedFor: ChildExit['killedFor'];
    let peakRssBytes = 0;
    process_.stdout.on('data', (chunk) => (stdout = (stdout + chunk).slice(-65536)));
    process_.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-16384)));
    const kill = (reason: 'hang' | 'blow-up') => {
      killedFor ??= reason;
      process_.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('hang'), limits.timeoutMs);
    const watchdog = setInterval(() => {
      const rss = residentBytes(process_.pid!);
      peakRssBytes = Math.max(peakRssBytes, rss);
      if (rss > limits.rssLimitBytes) kill('blow-up');
    }, 25);
    process_.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      resolve({ code, signal, stdout, stderr, killedFor, peakRssBytes, ms: performance.now() - started });
    });
  });
}

/** The verdict on one finished child, given what the case expects. */
function judge(fuzzCase: FuzzCase, exit: ChildExit, limits: Limits): CaseResult {
  const line = exit.stdout.split('\n').find((text) => text.startsWith(RESULT_PREFIX));
  const reported = line ? JSON.parse(line.slice(RESULT_PREFIX.length)) : undefined;
  const peakRssBytes = Math.max(exit.peakRssBytes, reported?.maxRssBytes ?? 0);
  const base = { peakRssBytes, ms: exit.ms, stderrTail: exit.stderr.slice(-4000) };
  if (exit.killedFor === 'hang') return { ...base, verdict: 'hang', message: `still running after ${limits.timeoutMs} ms` };
  if (exit.killedFor === 'blow-up' || peakRssBytes > limits.rssLimitBytes || /heap out of memory/.test(exit.stderr)) {
    return { ...base, verdict: 'blow-up', message: `resident memory reached ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB` };
  }
  const nativeFailure = NATIVE_FAILURE.exec(exit.stderr);
  if (exit.signal || exit.code !== 0 || !reported || nativeFailure) {
    const how = exit.signal ? `killed by ${exit.signal}` : exit.code !== 0 ? `exit code ${exit.code}` : nativeFailure ? `stderr: ${nativeFailure[0]}` : 'no result line';
    return { ...base, verdict: 'crash', message: `${how}: ${exit.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
  const stage = reported.stage as string;
  if (reported.ok) {
    return { ...base, stage, verdict: fuzzCase.expect === 'refuse' ? 'silent-accept' : 'success', message: reported.message };
  }
  return { ...base, stage, verdict: fuzzCase.expect === 'accept' ? 'wrong-refusal' : 'clean-error', message: reported.message };
}

/** Writes the case's folder under `caseRoot` (removed afterwards unless `keep`), runs it and judges it. */
export async function runCase(
  fuzzCase: FuzzCase, fixture: FixtureInfo, child: ChildCommand, limits: Limits, caseRoot: string, keep = false,
): Promise<CaseResult & { dir: string }> {
  const dir = path.join(caseRoot, 'model');
  materialize(fixture, dir);
  for (const mutation of fuzzCase.mutations) mutation.apply?.(dir);
  const request = encodeOptions({ dir, load: fuzzCase.load, generate: fuzzCase.generate, prompt: fuzzCase.prompt });
  const exit = await runChild(child, request, limits);
  if (!keep) fs.rmSync(caseRoot, { recursive: true, force: true });
  return { ...judge(fuzzCase, exit, limits), dir };
}
