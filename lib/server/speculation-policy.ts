// When self-speculation pays inside a batch. A round of speculation costs k draft steps (layers [0, E) + the draft
// head, for the speculating sequences only) plus one verify step (everyone's rows through the model); plain
// decoding costs one step per token. Batching already shares each weight read among the sequences, so with many
// sequences, or with low acceptance, a round yields fewer tokens per millisecond than plain steps — then the
// greedy speculative requests decode autoregressively for that round (their output is identical either way;
// sampled ones always speculate, to keep seeds reproducible). Step costs are measured as the engine runs.

/** Exponential averages of measured step times, by rows in the step. */
export class StepCosts {
  private readonly full = new Map<number, number>();
  private readonly draft = new Map<number, number>();

  record(kind: 'full' | 'draft', rows: number, ms: number): void {
    const table = kind === 'full' ? this.full : this.draft;
    const previous = table.get(rows);
    table.set(rows, previous === undefined ? ms : 0.8 * previous + 0.2 * ms);
  }

  /** The measured cost at the nearest row count (scaled linearly when beyond it), or undefined before any. */
  estimate(kind: 'full' | 'draft', rows: number): number | undefined {
    const table = kind === 'full' ? this.full : this.draft;
    let best: number | undefined;
    let bestRows = 0;
    for (const [known, ms] of table) {
      if (best === undefined || Math.abs(known - rows) < Math.abs(bestRows - rows)) {
        best = ms;
        bestRows = known;
      }
    }
    if (best === undefined) return undefined;
    // Costs grow with rows (slowly while memory-bound); never assume more rows are cheaper than fewer.
    return rows > bestRows ? best * Math.max(1, rows / bestRows) ** 0.5 : best;
  }
}

/** Tokens a round of k drafts yields on average when each draft is accepted with probability α (1 + α + … + α^k). */
export function expectedTokensPerRound(acceptance: number, drafts: number): number {
  if (acceptance >= 1) return drafts + 1;
  return (1 - acceptance ** (drafts + 1)) / (1 - acceptance);
}

export interface RoundCandidate {
  drafts: number;
  acceptance: number;
}

/**
 * Whether a round where `candidates` speculate (the other `plain` sequences decode one token in its verify step)
 * yields more tokens per millisecond than one plain step for everyone. Unknown costs: speculate (and measure).
 */
export function speculationPays(costs: StepCosts, candidates: RoundCandidate[], plain: number): boolean {
  if (candidates.length === 0) return false;
  const sequences = candidates.length + plain;
  const verifyRows = plain + candidates.reduce((sum, c) => sum + c.drafts + 1, 0);
  const plainStep = costs.estimate('full', sequences);
  const verifyStep = costs.estimate('full', verifyRows);
  const draftStep = costs.estimate('draft', candidates.length);
  if (plainStep === undefined || verifyStep === undefined || draftStep === undefined) return true;
  const draftSteps = Math.max(...candidates.map((c) => c.drafts));
  const tokens = plain + candidates.reduce((sum, c) => sum + expectedTokensPerRound(c.acceptance, c.drafts), 0);
  return tokens / (draftSteps * draftStep + verifyStep) > sequences / plainStep;
}
