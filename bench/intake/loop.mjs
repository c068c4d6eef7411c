/**
 * A closed-loop load runner shared by the HTTP and the INSERT phases:
 * `concurrency` loops each issue one operation, wait for it, and issue the next.
 * Operations completing during the warm-up are not counted; the measurement
 * window is the `durationMs` after it. Loops stop issuing at the end of the
 * window, or earlier when `maxOps` operations have been issued (the pre-signed
 * pool ran out), so every run is bounded in time and in count.
 */

/** Percentile of an ascending-sorted Float64Array (nearest-rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * @param {object} o
 * @param {number} o.concurrency
 * @param {number} o.warmupMs
 * @param {number} o.durationMs
 * @param {number} o.maxOps            upper bound on operations issued (warm-up included)
 * @param {(i: number) => Promise<string>} o.op   resolves to an outcome label ("202", "error:ECONNRESET", ...)
 * @param {() => void} [o.onWindowStart]
 * @param {() => void} [o.onWindowEnd]
 * @param {number} [o.drainTimeoutMs]
 */
export async function runClosedLoop(o) {
  const { concurrency, warmupMs, durationMs, maxOps, op } = o;
  const start = performance.now();
  const t0 = start + warmupMs;
  const t1 = t0 + durationMs;
  let issued = 0;
  let exhaustedAt;
  let windowStarted = false;
  let windowEnded = false;
  const outcomes = new Map();
  // One latency sample per operation completed in the window; grows as needed.
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let lastEnd = t0;
  const windowTimers = [
    setTimeout(() => {
      windowStarted = true;
      o.onWindowStart?.();
    }, Math.max(0, t0 - performance.now())),
    setTimeout(() => {
      windowEnded = true;
      o.onWindowEnd?.();
    }, Math.max(0, t1 - performance.now())),
  ];

  async function loop() {
    for (;;) {
      const now = performance.now();
      if (now >= t1) return;
      if (issued >= maxOps) {
        exhaustedAt ??= now;
        return;
      }
      const i = issued++;
      const s = performance.now();
      let label;
      try {
        label = await op(i);
      } catch (err) {
        label = `error:${err?.code ?? err?.message ?? String(err)}`;
      }
      const e = performance.now();
      if (e >= t0 && e < t1) {
        outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
        if (n === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[n++] = e - s;
        if (e > lastEnd) lastEnd = e;
      }
    }
  }

  const loops = [];
  for (let k = 0; k < concurrency; k++) loops.push(loop());
  let drainTimer;
  const drained = await Promise.race([
    Promise.all(loops).then(() => true),
    new Promise((res) => {
      drainTimer = setTimeout(() => res(false), warmupMs + durationMs + (o.drainTimeoutMs ?? 30_000));
    }),
  ]);
  clearTimeout(drainTimer);
  for (const t of windowTimers) clearTimeout(t);
  if (!windowStarted) o.onWindowStart?.();
  if (!windowEnded) o.onWindowEnd?.();

  // The window actually measured: shorter when the pool of operations ran out.
  const exhausted = exhaustedAt !== undefined && exhaustedAt < t1;
  const windowEnd = exhausted ? lastEnd : t1;
  const windowMs = Math.max(1, windowEnd - t0);
  const sorted = lat.subarray(0, n).sort();
  const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    concurrency,
    windowMs: Math.round(windowMs),
    issued,
    completedInWindow: n,
    outcomes: Object.fromEntries([...outcomes.entries()].sort()),
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(n ? sorted[n - 1] : null),
    exhausted,
    drained,
  };
}

/** Operations per second of one outcome label (e.g. "202") in the window. */
export function rateOf(result, label) {
  return ((result.outcomes[label] ?? 0) * 1000) / result.windowMs;
}
