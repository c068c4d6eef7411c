#!/usr/bin/env node
/**
 * The `bucketbridge` binary (package.json "bin"). Commands live in src/cli/;
 * this file only binds the dispatcher to the real process.
 */
import { runCli } from './cli/dispatch.js';

/** Resolve once `stream` has flushed what was written so far, so exiting cannot cut output short. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

const result = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
if (result !== 'running') {
  // Exit explicitly: a finished command must not linger on an idle keep-alive
  // socket or pool timer, and `serve` failing to start must not hang.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(result);
}
