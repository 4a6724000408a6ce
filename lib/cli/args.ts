// Command-line parsing shared by every subcommand: `--name value`, `--name=value`, boolean flags that also take
// LayerSkip's `True|False`, and snake_case spellings of every option (`--max_steps`). Usage errors are thrown as
// UsageError and printed as one line.

export class UsageError extends Error {}

export type OptionKind = 'string' | 'integer' | 'number' | 'boolean' | 'list';

export interface OptionSpec {
  kind: OptionKind;
  /** Other accepted spellings, without the leading dashes. */
  aliases?: string[];
  description: string;
  /** Shown in --help as the value placeholder. */
  placeholder?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type ParsedOptions = Record<string, string | number | boolean | string[] | undefined>;

function canonicalKey(raw: string, specs: OptionSpecs): string | undefined {
  const kebab = raw.replace(/_/g, '-');
  for (const [name, spec] of Object.entries(specs)) {
    if (name === kebab || spec.aliases?.includes(raw) || spec.aliases?.includes(kebab)) return name;
  }
  return undefined;
}

function parseBoolean(name: string, text: string): boolean {
  if (/^(true|1|yes)$/i.test(text)) return true;
  if (/^(false|0|no)$/i.test(text)) return false;
  throw new UsageError(`--${name} takes True or False, got "${text}"`);
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The closest of `candidates` to `word` when it is close enough to be a typo, else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function unknownOption(rawName: string, specs: OptionSpecs): UsageError {
  const suggestion = closest(rawName.replace(/_/g, '-'), Object.keys(specs));
  return new UsageError(`unknown option --${rawName}${suggestion ? ` (did you mean --${suggestion}?)` : ' (see --help)'}`);
}

export function parseArgs(argv: string[], specs: OptionSpecs): { options: ParsedOptions; positionals: string[] } {
  const options: ParsedOptions = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    // A single-dash short alias (-h) reads as its long option.
    if (/^-[a-zA-Z]$/.test(arg)) {
      const long = canonicalKey(arg.slice(1), specs);
      if (!long) throw new UsageError(`unknown option ${arg} (see --help)`);
      arg = `--${long}`;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const rawName = arg.slice(2, equals >= 0 ? equals : undefined);
    const name = canonicalKey(rawName, specs);
    if (!name) throw unknownOption(rawName, specs);
    const spec = specs[name];
    let value: string | undefined = equals >= 0 ? arg.slice(equals + 1) : undefined;
    if (spec.kind === 'boolean') {
      if (value === undefined && i + 1 < argv.length && /^(true|false)$/i.test(argv[i + 1])) value = argv[++i];
      options[name] = value === undefined ? true : parseBoolean(name, value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    switch (spec.kind) {
      case 'string':
        options[name] = value;
        break;
      case 'list':
        options[name] = [...((options[name] as string[] | undefined) ?? []), value];
        break;
      case 'integer': {
        const number = Number(value);
        if (!Number.isInteger(number)) throw new UsageError(`--${name} must be an integer, got "${value}"`);
        options[name] = number;
        break;
      }
      case 'number': {
        const number = Number(value);
        if (value.trim() === '' || !Number.isFinite(number)) throw new UsageError(`--${name} must be a number, got "${value}"`);
        options[name] = number;
        break;
      }
    }
  }
  return { options, positionals };
}

/** A positional argument where an option was meant: "did you mean --prompt?" when it looks like one. */
export function unexpectedArgument(arg: string, specs: OptionSpecs, fallbackHint?: string): UsageError {
  const suggestion = arg.startsWith('-') ? closest(arg.replace(/^-+/, ''), Object.keys(specs)) : undefined;
  const hint = suggestion ? `did you mean --${suggestion}?` : fallbackHint;
  return new UsageError(`unexpected argument "${arg}"${hint ? ` (${hint})` : ''}`);
}

export function formatHelp(usage: string, summary: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const value = spec.kind === 'boolean' ? '' : ` ${spec.placeholder ?? spec.kind.toUpperCase()}`;
    return [`  --${name}${value}`, spec.description];
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return `${usage}\n\n${summary}\n\nOptions:\n${rows.map(([left, right]) => left.padEnd(width) + right).join('\n')}\n`;
}
