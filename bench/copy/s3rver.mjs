#!/usr/bin/env node
/**
 * One plain s3rver instance in its own process (so its CPU and memory are not
 * counted as the copier's): `node bench/copy/s3rver.mjs <directory>` prints
 * `{"port":N}` on stdout once listening and runs until killed.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');

const directory = process.argv[2];
if (!directory) {
  process.stderr.write('usage: s3rver.mjs <directory>\n');
  process.exit(2);
}
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
