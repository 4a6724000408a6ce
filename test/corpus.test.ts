// Training corpus utilities: file listing and filters, the hash-based held-out split, BOS/EOS framing.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fnv1a32, listCorpusFiles, splitHeldOut, tokenizeCorpus, type TokenizerLike } from '../lib/training/corpus.js';

/** One id per UTF-16 unit, so framing is easy to read. */
function charTokenizer(bos: number | null, eos: number[]): TokenizerLike & { calls: { addSpecialTokens?: boolean }[] } {
  const calls: { addSpecialTokens?: boolean }[] = [];
  return {
    calls,
    bosTokenId: bos,
    eosTokenIds: eos,
    encode(text, options = {}) {
      calls.push(options);
      return [...text].map((char) => char.charCodeAt(0));
    },
  };
}

describe('training corpus', function () {
  let scratch: string;

  before(function () {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-corpus-'));
    const write = (relative: string, content: string | Buffer) => {
      const file = path.join(scratch, relative);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
    };
    write('pkg/b.py', 'b = 2\n');
    write('pkg/a.py', 'a = 1\n');
    write('pkg/sub/c.py', 'c = 3\n');
    write('pkg/notes.txt', 'notes\n');
    write('pkg/__pycache__/a.cpython-311.pyc', Buffer.from([0, 1, 2]));
    write('pkg/.hidden/d.py', 'hidden\n');
    write('pkg/binary.py', Buffer.from([0x61, 0x00, 0x62]));
    write('pkg/latin1.py', Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    write('empty/readme.md', '# nothing to see\n');
    fs.symlinkSync(path.join(scratch, 'pkg/sub'), path.join(scratch, 'pkg/link'));
  });

  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('lists files recursively, sorted, skipping dot-dirs, __pycache__ and symlinks', function () {
    const files = listCorpusFiles([path.join(scratch, 'pkg')]);
    const relative = files.map((file) => path.relative(scratch, file));
    assert.deepEqual(relative, ['pkg/a.py', 'pkg/b.py', 'pkg/binary.py', 'pkg/latin1.py', 'pkg/notes.txt', 'pkg/sub/c.py']);
    assert.ok(files.every((file) => path.isAbsolute(file)));
  });

  it('filters by extension and de-duplicates overlapping paths', function () {
    const files = listCorpusFiles([path.join(scratch, 'pkg'), path.join(scratch, 'pkg/sub'), path.join(scratch, 'pkg/a.py')], { extensions: ['.py'] });
    assert.deepEqual(
      files.map((file) => path.relative(scratch, file)),
      ['pkg/a.py', 'pkg/b.py', 'pkg/binary.py', 'pkg/latin1.py', 'pkg/sub/c.py'],
    );
  });

  it('names a path that does not exist or yields no files', function () {
    const missing = path.join(scratch, 'nope');
    assert.throws(() => listCorpusFiles([missing]), (error: Error) => error.message.includes(missing));
    assert.throws(() => listCorpusFiles([path.join(scratch, 'empty')], { extensions: ['.py'] }), /empty yields no files matching \.py/);
  });

  it('splits held-out files by relative-path hash, deterministically', function () {
    const files = Array.from({ length: 2000 }, (_, i) => `/data/corpus/module_${i}.py`);
    const split = splitHeldOut(files, '/data/corpus', 0.1);
    assert.equal(split.train.length + split.heldOut.length, files.length);
    assert.ok(split.heldOut.length > 150 && split.heldOut.length < 250, `${split.heldOut.length} held out of 2000`);
    // Same relative paths under another root: the same split.
    const moved = splitHeldOut(files.map((file) => file.replace('/data/corpus', '/elsewhere')), '/elsewhere', 0.1);
    assert.deepEqual(moved.heldOut.map((file) => path.basename(file)), split.heldOut.map((file) => path.basename(file)));
    assert.equal(splitHeldOut(files, '/data/corpus', 0).heldOut.length, 0);
    assert.equal(splitHeldOut(files, '/data/corpus', 1).train.length, 0);
    assert.throws(() => splitHeldOut(files, '/data/corpus', 1.5), /heldOutFraction/);
  });

  it('hashes with 32-bit FNV-1a', function () {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  });

  it('frames documents as [bos, ...tokens, eos] and skips binary files', function () {
    const files = listCorpusFiles([path.join(scratch, 'pkg')], { extensions: ['.py'] });
    const tokenizer = charTokenizer(1, [2, 3]);
    const progress: number[] = [];
    const corpus = tokenizeCorpus(tokenizer, files, (done, total) => progress.push(done / total));
    assert.equal(corpus.documents, 3);
    assert.equal(corpus.skipped, 2);
    assert.equal(corpus.bytes, 18);
    const expected = ['a = 1\n', 'b = 2\n', 'c = 3\n'].flatMap((text) => [1, ...[...text].map((char) => char.charCodeAt(0)), 2]);
    assert.deepEqual([...corpus.tokens], expected);
    assert.ok(tokenizer.calls.every((options) => options.addSpecialTokens === false));
    assert.deepEqual(progress, [0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('leaves out BOS/EOS the tokenizer does not have', function () {
    const corpus = tokenizeCorpus(charTokenizer(null, []), [path.join(scratch, 'pkg/a.py')]);
    assert.deepEqual([...corpus.tokens], [...'a = 1\n'].map((char) => char.charCodeAt(0)));
  });
});
