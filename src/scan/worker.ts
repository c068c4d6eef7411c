/**
 * Runs bb-scan jobs: each job names a recorded scan, which the runner claims
 * and runs. `concurrency` scans run at once in this process (scans of one task
 * never overlap: bb_scans allows one active scan per task). On stop, running
 * scans are handed back to the queue with their position, to resume anywhere.
 */
import type PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { QUEUES } from '../queue/boss.js';
import type { ScanJobData, ScanRunner } from './runner.js';

export interface ScanWorkerOptions {
  /** Scans run at once by this process. */
  concurrency: number;
  pollingIntervalSeconds: number;
}

export const DEFAULT_SCAN_WORKER_OPTIONS: ScanWorkerOptions = { concurrency: 2, pollingIntervalSeconds: 2 };

export class ScanWorkers {
  private readonly running = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  private readonly options: ScanWorkerOptions;

  constructor(
    private readonly boss: PgBoss,
    private readonly runner: ScanRunner,
    private readonly log: Logger,
    options: Partial<ScanWorkerOptions> = {},
  ) {
    this.options = { ...DEFAULT_SCAN_WORKER_OPTIONS, ...options };
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.options.concurrency; i++) {
      await this.boss.work<ScanJobData>(
        QUEUES.scan,
        { batchSize: 1, pollingIntervalSeconds: this.options.pollingIntervalSeconds },
        async ([job]) => {
          if (!job) return;
          const abort = new AbortController();
          const done = this.runner.run(job.data.scanId, abort.signal);
          this.running.set(job.id, { abort, done });
          try {
            const scan = await done;
            return scan ? { state: scan.state } : { state: 'gone' };
          } finally {
            this.running.delete(job.id);
          }
        },
      );
    }
  }

  get activeScans(): number {
    return this.running.size;
  }

  /** Stop taking scans; running ones stop at their next chunk and are handed back. */
  async stop(): Promise<void> {
    await this.boss.offWork(QUEUES.scan);
    const running = [...this.running.values()];
    if (running.length > 0) this.log.info({ scans: running.length }, 'handing running scans back to the queue');
    for (const r of running) r.abort.abort();
    await Promise.allSettled(running.map((r) => r.done));
  }
}
