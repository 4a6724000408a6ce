// Where a model argument points: a checkpoint folder, or a HuggingFace Hub id ("facebook/layerskip-llama3.2-1B")
// already downloaded into the HuggingFace cache. Nothing is downloaded (no network at run time); a Hub id that is
// not in the cache gets an error saying how to download it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/** The HuggingFace hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function huggingFaceHubCache(): string {
  return process.env.HF_HUB_CACHE ?? path.join(process.env.HF_HOME ?? path.join(os.homedir(), '.cache', 'huggingface'), 'hub');
}

// The snapshot folder of a cached model repo: the revision refs/main names, else the newest snapshot with a config.
function cachedSnapshot(id: string): string | undefined {
  const repo = path.join(huggingFaceHubCache(), `models--${id.replace('/', '--')}`);
  const hasConfig = (dir: string) => fs.existsSync(path.join(dir, 'config.json'));
  const mainRef = path.join(repo, 'refs', 'main');
  if (fs.existsSync(mainRef)) {
    const snapshot = path.join(repo, 'snapshots', fs.readFileSync(mainRef, 'utf8').trim());
    if (hasConfig(snapshot)) return snapshot;
  }
  const snapshots = path.join(repo, 'snapshots');
  if (!fs.existsSync(snapshots)) return undefined;
  const candidates = fs
    .readdirSync(snapshots)
    .map((name) => path.join(snapshots, name))
    .filter(hasConfig)
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return candidates[0];
}

/** The checkpoint folder `model` names, or an error saying what is wrong with it (and how to fix it). */
export function resolveModelDir(model: string): string {
  const resolved = path.resolve(model);
  if (fs.existsSync(resolved)) {
    if (!fs.statSync(resolved).isDirectory()) {
      throw new Error(`${resolved} is a file: give the checkpoint's folder (the one with config.json and the safetensors files)`);
    }
    return resolved;
  }
  if (HUB_ID.test(model)) {
    const cached = cachedSnapshot(model);
    if (cached) return cached;
    const name = model.split('/')[1];
    throw new Error(
      `${model}: no such folder, and not in the HuggingFace cache (${huggingFaceHubCache()}). It looks like a Hub id: ` +
        `layerskip does not download; get it first, e.g.\n  huggingface-cli download ${model} --local-dir ~/models/${name}\n` +
        `then pass --model ~/models/${name} (or keep it in the cache, where the id finds it)`,
    );
  }
  throw new Error(`${resolved}: model folder not found`);
}
