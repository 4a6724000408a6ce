// Byte-level BPE trainer: merge order on a hand-checked corpus, exact round trips through the project's
// LlamaTokenizer (files written and loaded back), special-token ids and BOS, vocabulary size, determinism.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LlamaTokenizer, StreamingDetokenizer } from '../lib/tokenizer.js';
import {
  BEGIN_OF_TEXT,
  END_OF_TEXT,
  countWords,
  tokenizerConfigFor,
  trainBpeTokenizer,
  writeTokenizerFiles,
  type TokenizerJson,
} from '../lib/training/bpe-trainer.js';

const PYTHON_SNIPPET = `import os
import sys


class Counter:
    """Counts things."""

    def __init__(self, start=0):
        self.value = start

    def increment(self, step=1):
        if step < 0:
            raise ValueError("step must be non-negative")
        self.value += step
        return self.value


def main(argv):
    counter = Counter()
    for arg in argv:
        counter.increment(len(arg))
    print(f"total: {counter.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;

const PROSE = 'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox returns the next day and the day after.\n';

const TRICKY_TEXTS = [
  '',
  ' ',
  '\n',
  'def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n    else:\n        return -x\n',
  'line one\r\nline two\r\n\r\n  indented\r\n',
  ' '.repeat(300) + 'x' + ' '.repeat(77),
  '\t\t\t\tdeep\ttabs\t \t',
  'naïve café, résumé — Ångström; 日本語のテキスト, 中文, 한국어, Привет',
  'emoji: 🦙🔥👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷',
  'zero\u200bwidth and\u00a0nbsp, combining e\u0301, BOM \ufeff inside',
  "don't won't it's they're I'm we'll you'd",
  'numbers 1234567890 3.14159 1e-10 0xDEADBEEF',
  '\u0000\u0001\u007f control bytes',
  'never seen: ⅀⅁⅂ ꙮ 𓀀𓀁',
];

/** A few real stdlib files when this machine has them; the tests hold without them. */
function stdlibTexts(): string[] {
  const candidates = ['/usr/lib/python3', path.join(os.homedir(), '.pyenv/versions/3.11.7/lib/python3.11')];
  for (const dir of candidates) {
    const files = ['textwrap.py', 'shlex.py', 'fnmatch.py'].map((name) => path.join(dir, name));
    if (files.every((file) => fs.existsSync(file))) return files.map((file) => fs.readFileSync(file, 'utf8'));
  }
  return [];
}

function trainingTexts(): string[] {
  return [...Array.from({ length: 20 }, () => PYTHON_SNIPPET), ...Array.from({ length: 20 }, () => PROSE), ...TRICKY_TEXTS, ...stdlibTexts()];
}

describe('BPE trainer', function () {
  let scratch: string;
  let trained: TokenizerJson;
  let tokenizer: LlamaTokenizer;
  const vocabSize = 600;

  before(async function () {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-bpe-'));
    trained = trainBpeTokenizer(trainingTexts(), { vocabSize });
    await writeTokenizerFiles(scratch, trained, tokenizerConfigFor(trained, { modelMaxLength: 1024 }));
    tokenizer = await LlamaTokenizer.fromDir(scratch);
  });

  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('merges the most frequent pair first, ties to the smallest (left, right) bytes', function () {
    // Words: "ab", " ab" x2, " cd" x2. (a,b)=3 first; then (Ġ,ab), (Ġ,c), (c,d) all 2: Ġ (0x20) sorts first, "ab" < "c".
    const json = trainBpeTokenizer(['ab ab ab cd cd'], { vocabSize: 2 + 256 + 4 });
    assert.deepEqual(json.model.merges, ['a b', 'Ġ ab', 'Ġ c', 'Ġc d']);
    assert.equal(json.model.vocab['Ġcd'], 2 + 256 + 3);
  });

  it('gives special tokens ids 0.., then bytes in byte order, then merges', function () {
    assert.equal(trained.model.vocab[BEGIN_OF_TEXT], 0);
    assert.equal(trained.model.vocab[END_OF_TEXT], 1);
    assert.equal(trained.model.vocab['!'], 2 + 0x21);
    assert.equal(trained.model.vocab['Ġ'], 2 + 0x20);
    assert.equal(trained.model.vocab['Ċ'], 2 + 0x0a);
    const [left, right] = trained.model.merges[0].split(' ');
    assert.equal(trained.model.vocab[left + right], 2 + 256);
    assert.equal(tokenizer.bosTokenId, 0);
    assert.deepEqual(tokenizer.eosTokenIds, [1]);
    assert.ok(tokenizer.isSpecialToken(0) && tokenizer.isSpecialToken(1) && !tokenizer.isSpecialToken(2));
  });

  it('has exactly the vocabulary size asked for', function () {
    assert.equal(Object.keys(trained.model.vocab).length, vocabSize);
    assert.equal(tokenizer.vocabSize, vocabSize);
    const ids = new Set(Object.values(trained.model.vocab));
    assert.equal(ids.size, vocabSize);
    assert.equal(Math.max(...ids), vocabSize - 1);
  });

  it('round-trips any text exactly', function () {
    for (const text of [...TRICKY_TEXTS, PYTHON_SNIPPET, PROSE]) {
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      assert.equal(tokenizer.decode(ids), text, JSON.stringify(text));
      const withBos = tokenizer.encode(text);
      assert.equal(tokenizer.decode(withBos, { skipSpecialTokens: true }), text);
    }
  });

  it('round-trips through the streaming detokenizer', function () {
    const text = TRICKY_TEXTS.join('\n');
    const detokenizer = new StreamingDetokenizer(tokenizer);
    const pieces = tokenizer.encode(text, { addSpecialTokens: false }).map((id) => detokenizer.push(id));
    pieces.push(detokenizer.flush());
    assert.equal(pieces.join(''), text);
  });

  it('adds BOS once when encoding with special tokens', function () {
    assert.deepEqual(tokenizer.encode(''), [0]);
    const plain = tokenizer.encode('return self.value', { addSpecialTokens: false });
    assert.deepEqual(tokenizer.encode('return self.value'), [0, ...plain]);
    assert.equal(tokenizer.decode(tokenizer.encode('x = 1')), `${BEGIN_OF_TEXT}x = 1`);
  });

  it('makes frequent words single tokens', function () {
    for (const word of ['Ġself', 'Ġreturn', 'Ġthe', 'Ġcounter', 'def']) {
      assert.ok(tokenizer.tokenToId(word) !== undefined, `${word} is not a token`);
    }
    assert.deepEqual(
      tokenizer.encode(' self', { addSpecialTokens: false }),
      [tokenizer.tokenToId('Ġself')],
    );
    const code = tokenizer.encode(PYTHON_SNIPPET, { addSpecialTokens: false });
    assert.ok(code.length < Buffer.byteLength(PYTHON_SNIPPET) / 3, `${code.length} tokens for ${Buffer.byteLength(PYTHON_SNIPPET)} bytes`);
  });

  it('is deterministic', function () {
    const again = trainBpeTokenizer(trainingTexts(), { vocabSize });
    assert.equal(JSON.stringify(again), JSON.stringify(trained));
  });

  it('writes tokenizer_config.json that names BOS and EOS', function () {
    const config = JSON.parse(fs.readFileSync(path.join(scratch, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.bos_token, BEGIN_OF_TEXT);
    assert.equal(config.eos_token, END_OF_TEXT);
    assert.equal(config.add_bos_token, true);
    assert.equal(config.model_max_length, 1024);
    assert.equal(config.tokenizer_class, 'PreTrainedTokenizerFast');
  });

  it('stops early when the corpus has no pair left at minFrequency', function () {
    const json = trainBpeTokenizer(['abc abc'], { vocabSize: 1000 });
    assert.ok(Object.keys(json.model.vocab).length < 1000);
    const small = new LlamaTokenizer(json, tokenizerConfigFor(json));
    assert.equal(small.decode(small.encode('abc xyz 🦙', { addSpecialTokens: false })), 'abc xyz 🦙');
  });

  it('takes custom special tokens and never merges into one', function () {
    const json = trainBpeTokenizer(Array.from({ length: 10 }, () => 'pad pad padding'), { vocabSize: 300, specialTokens: ['<s>', '</s>', 'pad'] });
    assert.deepEqual(json.added_tokens.map((token) => [token.id, token.content]), [[0, '<s>'], [1, '</s>'], [2, 'pad']]);
    assert.equal(json.model.vocab['pad'], 2);
    assert.ok(!json.model.merges.some((merge) => merge.replace(' ', '') === 'pad'));
    const config = tokenizerConfigFor(json);
    assert.equal(config.bos_token, '<s>');
    assert.equal(config.eos_token, '</s>');
  });

  it('rejects bad options', function () {
    assert.throws(() => trainBpeTokenizer(['x'], { vocabSize: 100 }), /vocabSize must be an integer in \[258,/);
    assert.throws(() => trainBpeTokenizer(['x'], { vocabSize: 300, specialTokens: ['<s>'] }), /at least BOS and EOS/);
    assert.throws(() => trainBpeTokenizer(['x'], { vocabSize: 300, specialTokens: ['<s>', '<s>'] }), /distinct/);
    assert.throws(() => trainBpeTokenizer(['x'], { vocabSize: 300, specialTokens: ['<s>', 'Ġ'] }), /collides with a byte symbol/);
    assert.throws(() => trainBpeTokenizer(['x'], { vocabSize: 300, minFrequency: 0 }), /minFrequency/);
  });

  it('counts GPT-2 regex words', function () {
    const counts = countWords(['    return x\n', 'return  x']);
    assert.deepEqual([...counts], [['   ', 1], [' return', 1], [' x', 2], ['\n', 1], ['return', 1], [' ', 1]]);
  });
});
