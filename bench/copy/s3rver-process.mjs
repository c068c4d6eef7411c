/**
 * A plain s3rver in a process of its own (bench/copy/s3rver.mjs) on a fresh
 * temporary directory, for the single-server bench scripts (read-paths,
 * complete-cost, store-requests): its endpoint, the CPU seconds it has used
 * (so only the client's CPU is the script's own), and a stop that removes its
 * directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export async function startS3rverProcess(name) {
  const dir = mkdtempSync(join(tmpdir(), `bb-${name}-`));
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(HERE, 's3rver.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    child.stdout.once('data', (d) => res(JSON.parse(String(d)).port));
    child.once('exit', (c) => rej(new Error(`s3rver exited ${c}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    /** CPU seconds (user + system) the s3rver process has used so far. */
    cpuSeconds() {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    },
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
