// Loads a checkpoint folder in this process and prints {ok, message} as one JSON line: run by
// test/hardening.test.ts as a child, so an input that could crash or hang the process fails only the child.
//   tsx test/helpers/load-child.ts '{"dir": "...", "options": {...}, "generate": [1, 2]}'
import { loadModel, type LoadOptions } from '../../lib/index.js';

const request = JSON.parse(process.argv[2]) as { dir: string; options?: LoadOptions; generate?: number[] };
try {
  const model = await loadModel(request.dir, request.options ?? {});
  if (request.generate) await model.generate(request.generate, { maxSteps: 2 });
  const backend = model.info.backend;
  await model.dispose();
  console.log(JSON.stringify({ ok: true, message: backend }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, message: (error as Error).message }));
}
