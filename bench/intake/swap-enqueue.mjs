/**
 * `node --import ./bench/intake/swap-enqueue.mjs dist/main.js` runs the real,
 * unchanged service with `dist/queue/enqueue.js` replaced by the module named
 * in BENCH_ENQUEUE (a file URL): how bench/intake measures an alternative
 * enqueue end to end without editing src/. Prototypes only; never in production.
 */
import { register } from 'node:module';

const target = process.env.BENCH_ENQUEUE;
if (!target) throw new Error('swap-enqueue: BENCH_ENQUEUE is not set');
register('./swap-enqueue-hooks.mjs', import.meta.url, { data: { target } });
