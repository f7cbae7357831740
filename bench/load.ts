/**
 * A bounded closed-loop load generator: `concurrency` callers, each issuing its next call
 * when the previous one answers, until `count` calls were issued or `durationMs` passed.
 * Call k (0, 1, 2, …) is handed its index so callers can spread calls over connections.
 */

export interface LoopOptions {
  concurrency: number;
  /** Stop issuing after this many calls. */
  count?: number;
  /** Stop issuing after this long. */
  durationMs?: number;
}

export interface LoopResult {
  /** Per successful call, ms. */
  latencies: number[];
  errors: number;
  firstError: string | null;
  elapsedMs: number;
}

/** Hard bound whatever the options say. */
const MAX_CALLS = 1_000_000;

export async function runLoop(call: (k: number) => Promise<unknown>, options: LoopOptions): Promise<LoopResult> {
  const limit = Math.min(options.count ?? MAX_CALLS, MAX_CALLS);
  const durationMs = options.durationMs ?? Number.POSITIVE_INFINITY;
  if (!Number.isFinite(durationMs) && options.count === undefined)
    throw new Error("runLoop needs a count or a duration");
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let issued = 0;
  const t0 = performance.now();
  const caller = async () => {
    while (issued < limit && performance.now() - t0 < durationMs) {
      const k = issued++;
      const start = performance.now();
      try {
        await call(k);
        latencies.push(performance.now() - start);
      } catch (err) {
        errors++;
        firstError ??= (err as Error)?.message ?? String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, caller));
  return { latencies, errors, firstError, elapsedMs: performance.now() - t0 };
}
