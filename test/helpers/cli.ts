// The `layerskip` command run as a child process from the package root, the way a user runs it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `layerskip ...args` (from source), with `input` on stdin when given; 60 s at most. */
export function runLayerskip(args: string[], input?: string): CliRun {
  const result = spawnSync(process.execPath, [path.join(packageRoot, 'bin', 'layerskip.js'), ...args], {
    cwd: packageRoot,
    input,
    encoding: 'utf8',
    env: { ...process.env, LAYERSKIP_FROM_SOURCE: '1' },
    timeout: 60000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
