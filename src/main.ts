/**
 * Process entry (`npm start`, `node dist/main.js`, the Docker CMD): the same
 * start-up and graceful stop as `bucketbridge serve`, which owns the logic.
 * Start-up failures print one line naming the problem and exit non-zero
 * (2: invalid configuration, 1: anything else), embedded database stopped.
 */
import { serve } from './cli/serve.js';

const result = await serve();
if (result !== 'running') process.exit(result);
