// One fuzz case's process: loads the mutated checkpoint folder with the case's load options and, when it loads,
// generates with its generation options, then prints one result line. Whatever the engine throws is caught and
// reported; a crash, abort, hang or memory blow-up shows up in how this process ends (scripts/fuzz/run-case.ts).
//   node child.mjs '<encoded request>'   (scripts/fuzz/run-case.ts bundles this file and runs it)
import { loadModel } from '../../lib/index.js';
import { decodeOptions, RESULT_PREFIX } from './values.js';

interface ChildRequest {
  dir: string;
  load: Record<string, unknown>;
  generate: Record<string, unknown>;
  prompt: unknown;
}

const request = decodeOptions(process.argv[2]) as ChildRequest;
// Functions and signals cannot travel as JSON: the request names them.
const generate = { ...request.generate };
if (generate.onSpeculation === 'throw' || generate.onSpeculation === 'async-reject') {
  const rejects = generate.onSpeculation === 'async-reject';
  generate.onSpeculation = rejects ? async () => Promise.reject(new Error('listener failed')) : () => {
    throw new Error('listener failed');
  };
}
if (generate.signal === 'aborted') generate.signal = AbortSignal.abort();
else if (generate.signal === 'abort-soon') generate.signal = AbortSignal.timeout(1);
let stage = 'load';
let outcome: { ok: boolean; stage: string; message: string };
try {
  const model = await loadModel(request.dir, request.load as never);
  try {
    stage = 'generate';
    const result = await model.generate(request.prompt as never, generate as never);
    outcome = { ok: true, stage, message: `${result.tokenIds.length} tokens, ${result.finishReason}` };
  } finally {
    await model.dispose();
  }
} catch (error) {
  outcome = { ok: false, stage, message: error instanceof Error ? error.message : `non-Error thrown: ${String(error)}` };
}
const maxRssBytes = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ ...outcome, maxRssBytes })}\n`);
