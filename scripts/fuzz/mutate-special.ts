// Special files in place of a checkpoint or tokenizer file: a FIFO, a folder, symlinks to devices, a dangling or
// looping symlink, a sparse file past the size limit. Each must be refused by name without blocking or reading it
// whole (README "Limits and trust model": only regular files are opened); removing an optional file must load.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import type { FixtureInfo } from './checkpoint-files.js';
import { replaceWithSymlink } from './checkpoint-files.js';
import type { Expectation, Mutation, MutationFamily } from './mutation.js';
import type { Rng } from './values.js';

const OPTIONAL_FILES = ['generation_config.json', 'tokenizer_config.json'];

function special(rng: Rng, fixture: FixtureInfo): Mutation {
  const file = rng.pick(fixture.files);
  const kinds = ['fifo', 'folder', '/dev/zero', '/dev/urandom', '/dev/null', 'dangling', 'loop', 'sparse', 'removed'];
  const kind = rng.pick(kinds);
  let expect: Expectation = 'refuse';
  if (kind === 'removed') expect = OPTIONAL_FILES.includes(file) ? 'accept' : file === 'tokenizer.json' ? undefined : 'refuse';
  // A missing (dangling) or looping optional file: either "absent" or "unreadable" is a fair reading.
  if ((kind === 'dangling' || kind === 'loop') && OPTIONAL_FILES.includes(file)) expect = undefined;
  if ((kind === 'dangling' || kind === 'loop') && file === 'tokenizer.json') expect = undefined;
  return {
    kind: 'special-file', target: file, expect, description: `${file}: ${kind === 'removed' ? 'removed' : `replaced by ${kind}`}`,
    apply: (dir) => {
      const target = path.join(dir, file);
      fs.rmSync(target, { recursive: true, force: true });
      if (kind === 'fifo') execFileSync('mkfifo', [target]);
      else if (kind === 'folder') fs.mkdirSync(target);
      else if (kind.startsWith('/dev/')) replaceWithSymlink(dir, file, kind);
      else if (kind === 'dangling') replaceWithSymlink(dir, file, 'no-such-file');
      else if (kind === 'loop') replaceWithSymlink(dir, file, file);
      else if (kind === 'sparse') {
        const handle = fs.openSync(target, 'w');
        fs.ftruncateSync(handle, file.endsWith('.safetensors') ? 2 ** 40 : 200 << 20); // no disk used
        fs.closeSync(handle);
      }
    },
  };
}

export const SPECIAL_FAMILIES: MutationFamily[] = [{ kind: 'special-file', weight: 3, generate: special }];
