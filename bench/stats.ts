/** Small statistics helpers for the benchmarks: every reported figure is a median with min and max. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many runs the figure summarises. */
  runs: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error("spread() of no values");
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    runs: values.length,
  };
}

/** Linear-interpolated quantile of an ascending array (q in [0, 1]). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** "12.3 [11.9–13.0]" */
export function formatSpread(s: Spread, digits = 1): string {
  if (s.runs === 1 || s.min === s.max) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
}
