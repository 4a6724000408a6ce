// Stop strings over streamed text: text that could still be the start of a stop string is held back, so a stop
// string never reaches the caller, even when it arrives split across tokens.

export interface StopCheck {
  /** Text safe to emit now. */
  emit: string;
  /** True when a stop string was found; `emit` then ends right before it. */
  stopped: boolean;
}

export class StopStringMatcher {
  private pending = '';

  constructor(private readonly stopStrings: readonly string[]) {}

  push(text: string): StopCheck {
    this.pending += text;
    let earliest = -1;
    for (const stop of this.stopStrings) {
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (earliest < 0 || at < earliest)) earliest = at;
    }
    if (earliest >= 0) {
      const emit = this.pending.slice(0, earliest);
      this.pending = '';
      return { emit, stopped: true };
    }
    const hold = this.longestHeldSuffix();
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** Whatever was held back, at the end of generation. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }

  // Length of the longest suffix of `pending` that is a proper prefix of some stop string.
  private longestHeldSuffix(): number {
    let best = 0;
    for (const stop of this.stopStrings) {
      const limit = Math.min(stop.length - 1, this.pending.length);
      for (let length = limit; length > best; length--) {
        if (this.pending.endsWith(stop.slice(0, length))) {
          best = length;
          break;
        }
      }
    }
    return best;
  }
}
