// A checkpoint's own self-speculative settings, kept in its generation_config.json under HF transformers' names:
// `assistant_early_exit` (E, the draft depth: the first E layers) and `num_assistant_tokens` (k, drafts per step).
// `layerskip sweep --write-defaults` writes them; generation reads them when no exit layer / k is given.
import fs from 'node:fs';
import path from 'node:path';

import { MAX_JSON_FILE_BYTES } from '../limits.js';
import { readJsonFile } from '../tokenizer.js';

export interface SpeculationDefaults {
  /** assistant_early_exit; undefined when the file does not say. */
  exitLayer?: number;
  /** num_assistant_tokens; undefined when the file does not say. */
  numSpeculations?: number;
}

export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** The speculation settings of a checkpoint folder's generation_config.json; a value that cannot be right is an error. */
export async function readSpeculationDefaults(dir: string, numLayers: number): Promise<SpeculationDefaults> {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  const config = await readJsonFile(file, false, MAX_JSON_FILE_BYTES);
  if (!config) return {};
  const integer = (key: string, max: number): number | undefined => {
    const value = config[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw new Error(`${file}: ${key} must be an integer in [1, ${max}], got ${JSON.stringify(value)}`);
    }
    return value;
  };
  return { exitLayer: integer('assistant_early_exit', numLayers - 1), numSpeculations: integer('num_assistant_tokens', 64) };
}

/**
 * Stores E and k in `dir`'s generation_config.json, keeping every other key (a missing file is created). Written
 * to a temporary file and renamed, so an interrupted write leaves the old file whole.
 */
export async function writeSpeculationDefaults(dir: string, defaults: Required<SpeculationDefaults>): Promise<string> {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  const config = (await readJsonFile(file, false, MAX_JSON_FILE_BYTES)) ?? {};
  config.assistant_early_exit = defaults.exitLayer;
  config.num_assistant_tokens = defaults.numSpeculations;
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(config, null, 2) + '\n');
  fs.renameSync(temporary, file);
  return file;
}
