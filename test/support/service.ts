/**
 * Starts the real service as a child process, the way `npm start` does
 * (`node dist/main.js`), on its own port, database and config file.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/embedded.js';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

let built = false;
/** Build dist/ when it is older than the sources (npm test builds first; a lone `npx tap file` may not). */
export function ensureBuilt(): void {
  if (built) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-if-stale.mjs')], { cwd: ROOT, stdio: 'inherit' });
  built = true;
}

export interface ServiceProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout (JSON log lines) and stderr. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Graceful stop (SIGTERM) and wait for exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

export interface StartOptions {
  config?: unknown;
  env?: Record<string, string | undefined>;
  port?: number;
  /** Don't wait for /readyz (for tests of start-up failures). */
  noWait?: boolean;
  readyTimeoutMs?: number;
}

export async function startService(options: StartOptions = {}): Promise<ServiceProcess> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'bb-svc-'));
  const port = options.port ?? (await freePort());
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    BB_DATA_DIR: join(dir, 'data'),
    BB_SHUTDOWN_GRACE_MS: '5000',
    ...options.env,
  };
  if (options.config !== undefined) {
    const configPath = join(dir, 'bucketbridge.config.json');
    writeFileSync(configPath, JSON.stringify(options.config, null, 2));
    env.BB_CONFIG = configPath;
  }
  const child = spawn(process.execPath, [join(ROOT, 'dist/main.js')], {
    cwd: dir,
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (code, signal) => res({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  const svc: ServiceProcess = {
    url,
    port,
    child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const r = await exited;
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  if (!options.noWait) {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    let exitedEarly = false;
    void exited.then(() => (exitedEarly = true));
    for (;;) {
      if (exitedEarly) throw new Error(`service exited during start:\n${out}`);
      try {
        const res = await fetch(`${url}/readyz`);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`service not ready in time:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return svc;
}

/** Poll `fn` until it returns a value that is not undefined, or fail after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
