// The demo model's benchmark task (models/default/held_out_functions.jsonl, written by scripts/make-demo-task.ts):
// its lines are well-formed custom_jsonl within the token limits, and the Python function parser behind it
// (lib/tasks/python-functions.ts) on a hand-written source with the cases that trip naive parsers.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { extractDocumentedFunctions, scanPythonFunctions } from '../lib/tasks/python-functions.js';
import { LlamaTokenizer } from '../lib/tokenizer.js';

const MODEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../models/default');
const TASK_FILE = path.join(MODEL_DIR, 'held_out_functions.jsonl');
// The limits scripts/make-demo-task.ts keeps functions within.
const MAX_PROMPT_TOKENS = 120; // BOS included
const MAX_RESPONSE_TOKENS = 120;
const MIN_RESPONSE_TOKENS = 8;
const MAX_FUNCTIONS = 64;

const indentOf = (line: string) => line.length - line.trimStart().length;

describe('demo task: held-out functions', function () {
  interface Entry { id: string; prompt: string; response: string }
  let entries: Entry[];

  before(function () {
    const lines = fs.readFileSync(TASK_FILE, 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'the file ends with a newline');
    entries = lines.map((line, i) => {
      const entry = JSON.parse(line);
      for (const field of ['id', 'prompt', 'response']) {
        assert.equal(typeof entry[field], 'string', `line ${i + 1}: ${field}`);
        assert.notEqual(entry[field], '', `line ${i + 1}: ${field} is empty`);
      }
      return entry as Entry;
    });
  });

  it('has between 1 and 64 entries with unique ids naming a held-out file', function () {
    assert.ok(entries.length > 0 && entries.length <= MAX_FUNCTIONS, `${entries.length} entries`);
    assert.equal(new Set(entries.map((e) => e.id)).size, entries.length);
    const heldOut = new Set(fs.readFileSync(path.join(MODEL_DIR, 'held_out_files.txt'), 'utf8').split('\n'));
    for (const { id } of entries) {
      const match = /^(.+\.py):(\d+):([\w.<>]+)$/.exec(id);
      assert.ok(match && heldOut.has(match[1]), id);
    }
  });

  it('prompts run from a def line to a docstring-closing line; responses are indented past the def', function () {
    for (const { id, prompt, response } of entries) {
      assert.match(prompt, /^[ \t]*(async[ \t]+)?def /, id);
      // The line break after the docstring starts the response (see scripts/make-demo-task.ts).
      assert.ok(!prompt.endsWith('\n') && response.startsWith('\n') && response.endsWith('\n'), id);
      const promptLines = prompt.split('\n');
      assert.match(promptLines[promptLines.length - 1], /("""|'''|"|')$/, `${id}: prompt ends with a docstring's closing quote`);
      const defIndent = indentOf(promptLines[0]);
      const responseLines = response.slice(1, -1).split('\n');
      for (const line of responseLines) {
        assert.ok(line.trim() === '' || indentOf(line) > defIndent, `${id}: ${JSON.stringify(line)}`);
      }
      assert.notEqual(responseLines[responseLines.length - 1].trim(), '', `${id}: trailing blank line`);
    }
  });

  it('prompt and response token counts are within the limits', async function () {
    const tokenizer = await LlamaTokenizer.fromDir(MODEL_DIR);
    for (const { id, prompt, response } of entries) {
      const promptTokens = tokenizer.encode(prompt).length;
      const responseTokens = tokenizer.encode(response, { addSpecialTokens: false }).length;
      assert.ok(promptTokens <= MAX_PROMPT_TOKENS, `${id}: prompt ${promptTokens} tokens`);
      assert.ok(responseTokens >= MIN_RESPONSE_TOKENS && responseTokens <= MAX_RESPONSE_TOKENS, `${id}: response ${responseTokens} tokens`);
    }
  });
});

describe('extractDocumentedFunctions', function () {
  const source = [
    /*  1 */ 'EXAMPLE = """',
    /*  2 */ 'def not_a_function(x):',
    /*  3 */ '    """Looks like one, inside a string."""',
    /*  4 */ '    return x',
    /*  5 */ '"""',
    /*  6 */ '',
    /*  7 */ '',
    /*  8 */ 'def spread(first,',
    /*  9 */ '           second=(1, 2),',
    /* 10 */ '           *rest) -> dict[str,',
    /* 11 */ '                        int]:',
    /* 12 */ "    r'''Multi-line signature,",
    /* 13 */ "    raw docstring with a \\' and a def inside.'''",
    /* 14 */ '    total = first + \\',
    /* 15 */ '        sum(second)',
    /* 16 */ '',
    /* 17 */ '    return {"total": total}',
    /* 18 */ '',
    /* 19 */ '',
    /* 20 */ 'class Box:',
    /* 21 */ '    @property',
    /* 22 */ '    def size(self):',
    /* 23 */ '        "One-line docstring."',
    /* 24 */ '        return len(self.items)',
    /* 25 */ '',
    /* 26 */ '    async def fetch(self, url):',
    /* 27 */ '        """Fetch url, with a nested helper."""',
    /* 28 */ '        def helper(part):',
    /* 29 */ "            u'''Nested docstring.'''",
    /* 30 */ '            return part.strip()',
    /* 31 */ '        return helper(url)',
    /* 32 */ '',
    /* 33 */ 'def undocumented(x):',
    /* 34 */ '    # a comment is not a docstring',
    /* 35 */ '    return x',
    /* 36 */ '',
    /* 37 */ 'def docstring_only():',
    /* 38 */ '    """Nothing after me."""',
    /* 39 */ '',
    /* 40 */ 'def bytes_first():',
    /* 41 */ '    b"""Bytes are not a docstring."""',
    /* 42 */ '    return 1',
    /* 43 */ '',
    /* 44 */ 'def one_liner(): return "no docstring"',
    '',
  ].join('\n');

  it('finds exactly the documented functions, with qualified names and def lines', function () {
    const found = extractDocumentedFunctions(source).map(({ name, line }) => `${line}:${name}`);
    assert.deepEqual(found, ['8:spread', '22:Box.size', '26:Box.fetch', '28:Box.fetch.<locals>.helper']);
  });

  it('cuts a multi-line signature through its docstring, and the body after it', function () {
    const [spread] = extractDocumentedFunctions(source);
    assert.equal(spread.prompt, [
      'def spread(first,',
      '           second=(1, 2),',
      '           *rest) -> dict[str,',
      '                        int]:',
      "    r'''Multi-line signature,",
      "    raw docstring with a \\' and a def inside.'''",
      '',
    ].join('\n'));
    assert.equal(spread.response, '    total = first + \\\n        sum(second)\n\n    return {"total": total}\n');
  });

  it('keeps a method as indented in the file and leaves its decorator out', function () {
    const size = extractDocumentedFunctions(source)[1];
    assert.equal(size.prompt, '    def size(self):\n        "One-line docstring."\n');
    assert.equal(size.response, '        return len(self.items)\n');
  });

  it('gives a nested function its own entry and leaves its lines in the parent body', function () {
    const [, , fetch, helper] = extractDocumentedFunctions(source);
    assert.equal(fetch.prompt, '    async def fetch(self, url):\n        """Fetch url, with a nested helper."""\n');
    assert.equal(fetch.response, [
      '        def helper(part):',
      "            u'''Nested docstring.'''",
      '            return part.strip()',
      '        return helper(url)',
      '',
    ].join('\n'));
    assert.equal(helper.prompt, "        def helper(part):\n            u'''Nested docstring.'''\n");
    assert.equal(helper.response, '            return part.strip()\n');
  });

  it('says why every other def is skipped', function () {
    const skipped = scanPythonFunctions(source).skipped.map(({ name, reason }) => `${name}: ${reason}`);
    assert.deepEqual(skipped, [
      'undocumented: no docstring',
      'docstring_only: docstring only',
      'bytes_first: no docstring',
      'one_liner: body on the def line',
    ]);
  });

  it('skips a body with a comment left of its indentation; throws on a source it cannot lex', function () {
    const dedentedComment = 'def f():\n    """Doc."""\n    x = 1\n# aside\n    return x\n';
    assert.deepEqual(scanPythonFunctions(dedentedComment).skipped.map((s) => s.reason), ['comment left of the body']);
    assert.throws(() => extractDocumentedFunctions('def f():\n    """never closed\n'), /line 2: statement not closed/);
    assert.throws(() => extractDocumentedFunctions('x = (1,\n'), /line 1: statement not closed/);
    assert.throws(() => extractDocumentedFunctions('s = "open\n'), /line 1: unterminated string/);
  });
});
