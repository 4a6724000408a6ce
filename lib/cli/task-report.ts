// Text of a task benchmark's results: one column per strategy, LayerSkip's metrics as rows, then the speedup with
// its spread and whether greedy outputs matched.
import { formatSpeedup } from '../benchmark.js';
import type { StrategyMetrics, TaskBenchmarkResult } from '../tasks/task-benchmark.js';

/** A strategy's column title: "autoregressive", "early exit (E 4)" or "self-speculative (E 4, k 6)". */
export function strategyTitle(metrics: StrategyMetrics, numLayers: number): string {
  if (metrics.strategy === 'self_speculative') return `self-speculative (E ${metrics.exitLayer}, k ${metrics.numSpeculations})`;
  return metrics.exitLayer < numLayers ? `early exit (E ${metrics.exitLayer})` : 'autoregressive';
}

export function formatTaskResult(result: TaskBenchmarkResult, numLayers: number): string {
  const columns = result.strategies;
  const row = (name: string, cell: (m: StrategyMetrics) => string) => `| ${name} | ${columns.map(cell).join(' | ')} |`;
  const score = (value: number) => value.toFixed(4);
  const header = columns.map((m) => strategyTitle(m, numLayers));
  const lines = [
    `| metric | ${header.join(' | ')} |`,
    `|---|${columns.map(() => '---|').join('')}`,
    row('examples scored', (m) => `${m.text.count}${m.emptyGenerations ? ` (+${m.emptyGenerations} empty)` : ''}`),
    row('ROUGE-1', (m) => score(m.text.rouge1)),
    row('ROUGE-2', (m) => score(m.text.rouge2)),
    row('ROUGE-3', (m) => score(m.text.rouge3)),
    row('ROUGE-L', (m) => score(m.text.rougeL)),
    row('BLEU-4', (m) => score(m.text.bleu4)),
    row('edit distance (chars)', (m) => m.text.editDistance.toFixed(1)),
    row('acceptance rate', (m) => (m.strategy === 'self_speculative' ? `${(m.acceptanceRate * 100).toFixed(1)}%` : '—')),
    row('tokens/s (mean)', (m) => m.tokensPerSecond.toFixed(1)),
    row('time per token (ms, mean)', (m) => m.timePerTokenMs.toFixed(3)),
    row('time per example (ms, mean)', (m) => m.totalTimeMs.toFixed(1)),
    row('tokens generated', (m) => String(m.generatedTokens)),
  ];
  const notes: string[] = [];
  const comparison = result.comparison;
  if (comparison) {
    const { speedup } = comparison;
    const spread = formatSpeedup(speedup, comparison.examplesCompared, 'example', 'more --num-samples or a quieter machine');
    notes.push(
      speedup.verdict === 'too noisy to conclude' ? spread : `${spread}; ${comparison.meanSpeedup.toFixed(2)}× in mean tokens/s`,
      `outputs identical in ${comparison.identicalOutputs} of ${comparison.examplesCompared} examples` +
        (comparison.identicalOutputs === comparison.examplesCompared ? '' : ' (expected with sampling; greedy decoding must match everywhere)'),
    );
  }
  if (result.skippedTooLong > 0) notes.push(`${result.skippedTooLong} examples skipped: prompt longer than the context`);
  if (result.interrupted) notes.push(`interrupted: metrics over the ${result.completed} examples completed of ${result.examples}`);
  notes.push('ROUGE: F-measure, lowercased and split on whitespace, no stemming (as LayerSkip\'s torchmetrics setup); BLEU-4 on whitespace words; tokens/s and time per token include prefill, exclude tokenization');
  return [...lines, '', ...notes].join('\n');
}
