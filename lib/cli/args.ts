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

export function parseArgs(argv: string[], specs: OptionSpecs): { options: ParsedOptions; positionals: string[] } {
  const options: ParsedOptions = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const rawName = arg.slice(2, equals >= 0 ? equals : undefined);
    const name = canonicalKey(rawName, specs);
    if (!name) throw new UsageError(`unknown option --${rawName} (see --help)`);
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

export function formatHelp(usage: string, summary: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const value = spec.kind === 'boolean' ? '' : ` ${spec.placeholder ?? spec.kind.toUpperCase()}`;
    return [`  --${name}${value}`, spec.description];
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return `${usage}\n\n${summary}\n\nOptions:\n${rows.map(([left, right]) => left.padEnd(width) + right).join('\n')}\n`;
}
