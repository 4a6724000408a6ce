// Documented Python functions, found without Python: a small lexer splits the source into physical lines (blank,
// comment, code, continuation) and logical lines (brackets, backslash continuations and strings joined, as Python's
// tokenizer does), then every `def` / `async def` whose first statement is a docstring is cut into
//   prompt   — the source from the `def` line through the docstring's closing line (decorators left out), and
//   response — the body lines after the docstring (indented past the `def`, blank lines inside kept, trailing ones
//              dropped),
// both kept exactly as in the file (methods keep their indentation) and ending with "\n". Nested functions are
// entries of their own and stay in their parent's body. Anything ambiguous is skipped with a reason, never guessed;
// a source the lexer cannot read (unterminated string, unbalanced bracket, stray character) throws.

export interface PythonFunction {
  /** Qualified name as Python's __qualname__: `Class.method`, `outer.<locals>.inner`. */
  name: string;
  /** 1-based line of the `def`. */
  line: number;
  prompt: string;
  response: string;
}

export type SkipReason =
  | 'no docstring'
  | 'docstring only'
  | 'body on the def line'
  | 'docstring shares its line'
  | 'comment on the docstring'
  | 'parenthesized docstring'
  | 'comment left of the body'
  | 'body line not indented past the def';

export interface SkippedFunction {
  name: string;
  line: number;
  reason: SkipReason;
}

export interface PythonFunctionScan {
  functions: PythonFunction[];
  skipped: SkippedFunction[];
}

type LineKind = 'blank' | 'comment' | 'code' | 'continuation';

interface PhysicalLine {
  kind: LineKind;
  /** Column of the first non-blank character, tabs to multiples of 8 and form feeds reset, as Python counts. */
  indent: number;
}

interface Token {
  kind: 'name' | 'string' | 'number' | 'op';
  text: string;
  /** String prefix, lower-cased ('', 'r', 'rb', ...); '' for other tokens. */
  prefix: string;
}

interface LogicalLine {
  /** 0-based physical lines it spans. */
  first: number;
  last: number;
  indent: number;
  tokens: Token[];
  hasComment: boolean;
}

interface LexedSource {
  lines: string[];
  physical: PhysicalLine[];
  logical: LogicalLine[];
}

const STRING_PREFIXES = new Set(['', 'r', 'u', 'b', 'f', 'br', 'rb', 'fr', 'rf']);
const IDENTIFIER = /[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*/uy;
const OPEN_BRACKETS = '([{';
const CLOSE_BRACKETS = ')]}';
const OPERATOR_CHARS = '+-*/%@&|^~<>=!.,:;';

/** The documented functions of a Python source, in line order; throws when the source cannot be lexed. */
export function extractDocumentedFunctions(source: string): PythonFunction[] {
  return scanPythonFunctions(source).functions;
}

/** Every `def` of a Python source: the documented ones cut into prompt/response, the others with a skip reason. */
export function scanPythonFunctions(source: string): PythonFunctionScan {
  const lexed = lexPython(source);
  const scopes: { indent: number; name: string; kind: 'def' | 'class' }[] = [];
  const result: PythonFunctionScan = { functions: [], skipped: [] };
  lexed.logical.forEach((statement, index) => {
    while (scopes.length > 0 && scopes[scopes.length - 1].indent >= statement.indent) scopes.pop();
    const header = parseHeader(statement.tokens);
    if (!header) return;
    const parent = scopes[scopes.length - 1];
    const name = !parent ? header.name : parent.kind === 'def' ? `${parent.name}.<locals>.${header.name}` : `${parent.name}.${header.name}`;
    scopes.push({ indent: statement.indent, name, kind: header.kind });
    if (header.kind !== 'def') return;
    const cut = cutFunction(lexed, index);
    if (typeof cut === 'string') result.skipped.push({ name, line: statement.first + 1, reason: cut });
    else result.functions.push({ name, line: statement.first + 1, ...cut });
  });
  return result;
}

/** `def NAME`, `async def NAME` or `class NAME` at the start of a logical line. */
function parseHeader(tokens: Token[]): { kind: 'def' | 'class'; name: string } | null {
  const start = tokens[0]?.kind === 'name' && tokens[0].text === 'async' ? 1 : 0;
  const keyword = tokens[start];
  if (keyword?.kind !== 'name' || (keyword.text !== 'def' && !(start === 0 && keyword.text === 'class'))) return null;
  const name = tokens[start + 1];
  if (name?.kind !== 'name') throw new SyntaxError(`'${keyword.text}' without a name`);
  return { kind: keyword.text as 'def' | 'class', name: name.text };
}

/** Prompt and response of the function whose header is logical line `index`, or why it is skipped. */
function cutFunction({ lines, physical, logical }: LexedSource, index: number): { prompt: string; response: string } | SkipReason {
  const header = logical[index];
  const last = header.tokens[header.tokens.length - 1];
  if (last.kind !== 'op' || last.text !== ':') return 'body on the def line';
  const first = logical[index + 1];
  if (!first || first.indent <= header.indent) throw new SyntaxError(`line ${header.first + 1}: def without an indented body`);

  // The first statement must be string literals only (implicit concatenation allowed); bytes and f-strings are not docstrings.
  const tokens = first.tokens;
  if (tokens[0].kind === 'op' && tokens[0].text === '(' && tokens.every((t) => t.kind === 'string' || '()'.includes(t.text))) {
    return 'parenthesized docstring';
  }
  if (tokens[0].kind !== 'string') return 'no docstring';
  const stringCount = tokens.findIndex((t) => t.kind !== 'string');
  if (stringCount !== -1) return tokens[stringCount].text === ';' ? 'docstring shares its line' : 'no docstring';
  if (tokens.some((t) => /[bf]/.test(t.prefix))) return 'no docstring';
  if (first.hasComment) return 'comment on the docstring';

  // Body: lines after the docstring up to the first code or comment line at or left of the def's column.
  let end = first.last + 1;
  while (end < lines.length) {
    const { kind, indent } = physical[end];
    if ((kind === 'code' || kind === 'comment') && indent <= header.indent) break;
    end++;
  }
  if (end < lines.length && physical[end].kind === 'comment') {
    const next = physical.findIndex((line, i) => i > end && line.kind === 'code');
    if (next !== -1 && physical[next].indent > header.indent) return 'comment left of the body';
  }
  while (end > first.last + 1 && physical[end - 1].kind === 'blank') end--;
  const body = lines.slice(first.last + 1, end);
  if (body.length === 0) return 'docstring only';
  if (body.some((text, i) => text.trim() !== '' && physical[first.last + 1 + i].indent <= header.indent)) {
    return 'body line not indented past the def';
  }
  return {
    prompt: lines.slice(header.first, first.last + 1).join('\n') + '\n',
    response: body.join('\n') + '\n',
  };
}

/** Column of the first non-blank character and its offset. */
function measureIndent(text: string): { indent: number; offset: number } {
  let indent = 0;
  let offset = 0;
  for (; offset < text.length; offset++) {
    const ch = text[offset];
    if (ch === ' ') indent++;
    else if (ch === '\t') indent = (Math.floor(indent / 8) + 1) * 8;
    else if (ch === '\f') indent = 0;
    else break;
  }
  return { indent, offset };
}

/**
 * Where the string closes on this line (the offset after its closing quotes), or how it goes on:
 * 'newline' (the line ends inside it) or 'escaped-newline' (a backslash just before the line's end).
 */
function findStringEnd(text: string, from: number, quote: string, triple: boolean): number | 'newline' | 'escaped-newline' {
  const closing = triple ? quote.repeat(3) : quote;
  for (let pos = from; pos < text.length; pos++) {
    if (text[pos] === '\\') {
      if (pos + 1 === text.length) return 'escaped-newline';
      pos++;
    } else if (text.startsWith(closing, pos)) {
      return pos + closing.length;
    }
  }
  return 'newline';
}

/** Physical and logical lines of a Python source; throws SyntaxError naming the line when it cannot be lexed. */
function lexPython(source: string): LexedSource {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const physical: PhysicalLine[] = [];
  const logical: LogicalLine[] = [];
  let current: LogicalLine | null = null;
  let depth = 0;
  let openString: { quote: string; triple: boolean } | null = null;

  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const text = lines[lineIndex];
    const fail = (message: string): never => {
      throw new SyntaxError(`line ${lineIndex + 1}: ${message}`);
    };
    const { indent, offset } = measureIndent(text);
    let pos = offset;
    if (current) {
      physical.push({ kind: 'continuation', indent });
    } else if (offset === text.length) {
      physical.push({ kind: 'blank', indent });
      continue;
    } else if (text[offset] === '#') {
      physical.push({ kind: 'comment', indent });
      continue;
    } else {
      physical.push({ kind: 'code', indent });
      current = { first: lineIndex, last: lineIndex, indent, tokens: [], hasComment: false };
    }
    const statement: LogicalLine = current;
    let continued = false;

    while (pos < text.length) {
      if (openString) {
        const end = findStringEnd(text, pos, openString.quote, openString.triple);
        if (end === 'newline' && !openString.triple) fail('unterminated string');
        if (typeof end !== 'number') break;
        openString = null;
        pos = end;
        continue;
      }
      const ch = text[pos];
      if (ch === ' ' || ch === '\t' || ch === '\f') {
        pos++;
      } else if (ch === '#') {
        statement.hasComment = true;
        break;
      } else if (ch === '\\') {
        if (pos !== text.length - 1) fail('backslash not at the end of the line');
        continued = true;
        pos++;
      } else if (ch === '"' || ch === "'" || isIdentifierStart(text, pos)) {
        IDENTIFIER.lastIndex = pos;
        const word = ch === '"' || ch === "'" ? '' : IDENTIFIER.exec(text)![0];
        const quote = text[pos + word.length];
        if ((quote === '"' || quote === "'") && STRING_PREFIXES.has(word.toLowerCase())) {
          const triple = text.startsWith(quote.repeat(3), pos + word.length);
          statement.tokens.push({ kind: 'string', text: word + quote, prefix: word.toLowerCase() });
          openString = { quote, triple };
          pos += word.length + (triple ? 3 : 1);
        } else {
          statement.tokens.push({ kind: 'name', text: word, prefix: '' });
          pos += word.length;
        }
      } else if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(text[pos + 1] ?? ''))) {
        const number = /(?:[0-9.][0-9a-zA-Z_.]*(?:(?<=[eE])[+-][0-9a-zA-Z_.]+)*)/y;
        number.lastIndex = pos;
        const match = number.exec(text)![0];
        statement.tokens.push({ kind: 'number', text: match, prefix: '' });
        pos += match.length;
      } else if (OPEN_BRACKETS.includes(ch) || CLOSE_BRACKETS.includes(ch)) {
        depth += OPEN_BRACKETS.includes(ch) ? 1 : -1;
        if (depth < 0) fail(`unmatched '${ch}'`);
        statement.tokens.push({ kind: 'op', text: ch, prefix: '' });
        pos++;
      } else if (OPERATOR_CHARS.includes(ch)) {
        statement.tokens.push({ kind: 'op', text: ch, prefix: '' });
        pos++;
      } else {
        fail(`unexpected character ${JSON.stringify(ch)}`);
      }
    }

    if (!openString && depth === 0 && !continued) {
      statement.last = lineIndex;
      logical.push(statement);
      current = null;
    }
  }
  if (current) throw new SyntaxError(`line ${current.first + 1}: statement not closed at the end of the source`);
  return { lines, physical, logical };
}

function isIdentifierStart(text: string, pos: number): boolean {
  IDENTIFIER.lastIndex = pos;
  return IDENTIFIER.test(text);
}
