// Every kind of bad checkpoint gets a clear Error naming the file and the problem, and the process survives.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadModel } from '../lib/index.js';
import { ensureFixtures } from './fixtures/make-fixtures.js';
import { loadNative } from './helpers/native.js';

interface SafetensorsParts {
  header: Record<string, any>;
  data: Buffer;
}

function readSafetensors(file: string): SafetensorsParts {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')), data: bytes.subarray(8 + length) };
}

function writeSafetensors(file: string, parts: SafetensorsParts): void {
  const json = Buffer.from(JSON.stringify(parts.header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([prefix, json, parts.data]));
}

describe('bad checkpoints', function () {
  let source: string;
  let shardedSource: string;
  let scratch: string;

  before(function () {
    const dirs = ensureFixtures(['tiny-gqa-bf16', 'tiny-sharded']);
    source = dirs['tiny-gqa-bf16'];
    shardedSource = dirs['tiny-sharded'];
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'layerskip-bad-'));
  });
  after(function () {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  // A fresh copy of a fixture to break.
  function copyOf(from: string, name: string): string {
    const dir = path.join(scratch, name);
    fs.cpSync(from, dir, { recursive: true });
    return dir;
  }

  async function expectLoadError(dir: string, pattern: RegExp): Promise<void> {
    await assert.rejects(loadNative(dir), (error: Error) => {
      assert.match(error.message, pattern);
      return true;
    });
  }

  function editConfig(dir: string, edit: (config: Record<string, unknown>) => void): void {
    const file = path.join(dir, 'config.json');
    const config = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(config);
    fs.writeFileSync(file, JSON.stringify(config));
  }

  function editWeights(dir: string, edit: (parts: SafetensorsParts) => void): void {
    const file = path.join(dir, 'model.safetensors');
    const parts = readSafetensors(file);
    edit(parts);
    writeSafetensors(file, parts);
  }

  it('missing folder and missing config.json', async function () {
    await assert.rejects(loadModel(path.join(scratch, 'nope')), /model folder not found/);
    const dir = copyOf(source, 'no-config');
    fs.rmSync(path.join(dir, 'config.json'));
    await expectLoadError(dir, /config\.json: missing file/);
  });

  it('missing weights file', async function () {
    const dir = copyOf(source, 'no-weights');
    fs.rmSync(path.join(dir, 'model.safetensors'));
    await expectLoadError(dir, /no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('unknown architecture', async function () {
    const dir = copyOf(source, 'arch');
    editConfig(dir, (config) => (config.architectures = ['MistralForCausalLM']));
    await expectLoadError(dir, /config\.json: unsupported architecture "MistralForCausalLM"/);
  });

  it('non-numeric and malformed config values', async function () {
    const dir = copyOf(source, 'config-values');
    editConfig(dir, (config) => (config.hidden_size = '64'));
    await expectLoadError(dir, /config\.json: field "hidden_size" must be a number, got string/);
    editConfig(dir, (config) => {
      config.hidden_size = 64;
      config.num_hidden_layers = 2.5;
    });
    await expectLoadError(dir, /"num_hidden_layers" must be an integer/);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"hidden_size": 64,');
    await expectLoadError(dir, /config\.json: invalid JSON at byte \d+/);
  });

  it('missing tensor', async function () {
    const dir = copyOf(source, 'missing-tensor');
    // Renamed, not deleted: its bytes would otherwise be a hole, which the format forbids (test/hardening.test.ts).
    editWeights(dir, (parts) => {
      parts.header['model.layers.2.mlp.up_proj.renamed'] = parts.header['model.layers.2.mlp.up_proj.weight'];
      delete parts.header['model.layers.2.mlp.up_proj.weight'];
    });
    await expectLoadError(dir, /missing tensor "model\.layers\.2\.mlp\.up_proj\.weight"/);
  });

  it('extra tensor (config and weights disagree)', async function () {
    const dir = copyOf(source, 'extra-tensor');
    editConfig(dir, (config) => (config.num_hidden_layers = 3));
    await expectLoadError(dir, /model\.safetensors: unexpected tensor "model\.layers\.3\./);
  });

  it('wrong shape', async function () {
    const dir = copyOf(source, 'wrong-shape');
    editConfig(dir, (config) => (config.intermediate_size = 128));
    await expectLoadError(dir, /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[160, 64\], expected \[128, 64\]/);
  });

  it('unsupported dtype', async function () {
    const dir = copyOf(source, 'dtype');
    editWeights(dir, (parts) => (parts.header['model.norm.weight'].dtype = 'I64'));
    await expectLoadError(dir, /tensor "model\.norm\.weight" has unsupported dtype I64/);
  });

  it('truncated file', async function () {
    const dir = copyOf(source, 'truncated');
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 1000));
    await expectLoadError(dir, /run past the end of the data .*truncated or corrupt/);
    fs.writeFileSync(file, bytes.subarray(0, 5));
    await expectLoadError(dir, /truncated safetensors file \(5 bytes\)/);
  });

  it('corrupt and oversized headers', async function () {
    const dir = copyOf(source, 'header');
    const file = path.join(dir, 'model.safetensors');
    const bytes = Buffer.from(fs.readFileSync(file));
    const corrupt = Buffer.from(bytes);
    corrupt[8] = 0x5b; // '[' where '{' was: not an object
    corrupt[9] = 0x7d;
    fs.writeFileSync(file, corrupt);
    await expectLoadError(dir, /model\.safetensors.*(invalid JSON|not a JSON object)/);
    const oversized = Buffer.from(bytes);
    oversized.writeBigUInt64LE(1n << 40n, 0);
    fs.writeFileSync(file, oversized);
    await expectLoadError(dir, /header of \d+ bytes is larger than the 100 MiB limit/);
    const pastEnd = Buffer.from(bytes);
    pastEnd.writeBigUInt64LE(BigInt(bytes.length), 0);
    fs.writeFileSync(file, pastEnd);
    await expectLoadError(dir, /header length \d+ runs past the end of the file/);
  });

  it('offsets out of range or inconsistent with the shape', async function () {
    const dir = copyOf(source, 'offsets');
    editWeights(dir, (parts) => {
      const entry = parts.header['model.norm.weight'];
      entry.data_offsets = [entry.data_offsets[0], entry.data_offsets[1] + 10 ** 9];
    });
    await expectLoadError(dir, /tensor "model\.norm\.weight" data_offsets .* run past the end of the data/);
    const dir2 = copyOf(source, 'offsets2');
    editWeights(dir2, (parts) => {
      const entry = parts.header['model.norm.weight'];
      entry.data_offsets = [entry.data_offsets[0], entry.data_offsets[1] - 2];
    });
    await expectLoadError(dir2, /tensor "model\.norm\.weight" occupies \d+ bytes but shape \[64\] of BF16 needs 128/);
  });

  it('index naming a missing shard', async function () {
    const dir = copyOf(shardedSource, 'shard');
    const shard = fs.readdirSync(dir).find((name) => /^model-0000\d-of-/.test(name))!;
    fs.rmSync(path.join(dir, shard));
    await expectLoadError(dir, new RegExp(`names shard "${shard}" but .* is missing`));
  });

  it('the process survives every failure and still loads a good model', async function () {
    const model = await loadNative(source);
    assert.equal(model.info().numLayers, 4);
    model.dispose();
  });
});
