/**
 * Runs bb-scan jobs: each job names a recorded scan, which the runner claims
 * and runs. `concurrency` scans run at once in this process (scans of one task
 * never overlap: bb_scans allows one active scan per task). On stop, running
 * scans are handed back to the queue with their position, to resume anywhere.
 *
 * Jobs are fetched by a loop of our own rather than pg-boss's work(), which
 * only polls (every 2 s by default): an operator's scan waited 0–2 s before it
 * started. The loop fetches when woken — `nudge()`, called by a JobWakeups on
 * SCAN_READY_CHANNEL (scan-jobs.ts: every bb-scan insert notifies in its
 * transaction), and when a slot frees — and otherwise every
 * `pollingIntervalSeconds`, the fallback for everything no notification
 * announces or one that was lost (listener down, a transaction-mode pooler,
 * a job made runnable by hand).
 *
 * What work() did per job, kept here: fetch one job per free slot (batchSize
 * 1, priority order), complete it with the handler's result as output
 * (`{ state }` of the scan after the run, `{ state: 'gone' }` when the row no
 * longer exists), fail it with the error when the run throws. pg-boss 10 has no
 * job heartbeat; work() raced the handler against the job's expireInSeconds
 * (23 h for bb-scan) and failed the job when it lost, leaving the handler
 * running. Here pg-boss's maintenance expires such a job the same way (its
 * later complete() is then a no-op: only active jobs complete), and the slot
 * stays taken until the scan really ends. The scan row's own heartbeat, not
 * the job, is what the stale-scan sweep watches.
 */
import type PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { QUEUES } from '../queue/boss.js';
import { InterruptibleSleep } from '../queue/interruptible-sleep.js';
import type { ScanRunner } from './runner.js';
import type { ScanJobData } from './scan-jobs.js';

export interface ScanWorkerOptions {
  /** Scans run at once by this process. */
  concurrency: number;
  /** Fallback poll: how often to look for scans when nothing woke the loop. */
  pollingIntervalSeconds: number;
}

export const DEFAULT_SCAN_WORKER_OPTIONS: ScanWorkerOptions = { concurrency: 2, pollingIntervalSeconds: 2 };

interface RunningScan {
  abort: AbortController;
  /** The run and the job's completion (or failure) written. */
  settled: Promise<void>;
}

export class ScanWorkers {
  private readonly running = new Map<string, RunningScan>();
  private readonly options: ScanWorkerOptions;
  private dispatcher?: Promise<void>;
  private stopping = false;
  /** Set by every wake; the dispatcher clears it before it looks for jobs. */
  private woken = false;
  /** The dispatcher's pause, ended early by a wake or by stop(). */
  private readonly pauses = new InterruptibleSleep();

  constructor(
    private readonly boss: PgBoss,
    private readonly runner: ScanRunner,
    private readonly log: Logger,
    options: Partial<ScanWorkerOptions> = {},
  ) {
    this.options = { ...DEFAULT_SCAN_WORKER_OPTIONS, ...options };
  }

  async start(): Promise<void> {
    if (this.dispatcher || this.stopping) return;
    this.dispatcher = this.dispatch();
  }

  get activeScans(): number {
    return this.running.size;
  }

  /**
   * Look for scans now instead of at the next poll: runnable bb-scan jobs may
   * have been committed. Cheap, never throws. Not lost when it comes at a bad
   * moment: during a fetch it makes the dispatcher fetch once more (that fetch
   * may have looked before the jobs committed); while every slot is busy the
   * jobs wait in the queue, and a slot that frees fetches anyway.
   */
  nudge(): void {
    this.woken = true;
    this.pauses.interrupt();
  }

  /**
   * Stop taking scans; running ones stop at their next chunk and are handed
   * back. Resolves once they are, and once a fetch that was in flight has
   * returned: a job it took is put back in the queue unstarted
   * (ScanRunner.handBack), so stopping never strands a fetched scan.
   */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.pauses.interrupt();
      const running = [...this.running.values()];
      if (running.length > 0) this.log.info({ scans: running.length }, 'handing running scans back to the queue');
      for (const r of running) r.abort.abort();
    }
    // No scan starts once stopping is set, so these are all there will be.
    await Promise.allSettled([this.dispatcher, ...[...this.running.values()].map((r) => r.settled)]);
  }

  /** Fill free slots, then pause until woken or the poll interval passed. */
  private async dispatch(): Promise<void> {
    const pollMs = this.options.pollingIntervalSeconds * 1000;
    while (!this.stopping) {
      this.woken = false;
      await this.fill();
      if (this.stopping) break;
      // Woken during the fetches: the jobs announced may have committed after a fetch looked.
      if (this.woken && this.running.size < this.options.concurrency) continue;
      await this.pauses.sleep(pollMs);
    }
  }

  /** One fetch (one job) per free slot, until the queue has none ready. */
  private async fill(): Promise<void> {
    while (!this.stopping && this.running.size < this.options.concurrency) {
      const job = await this.fetchOne();
      if (!job) return;
      if (this.stopping) {
        await this.runner.handBack(job.id).catch((err: unknown) => {
          // Left active: the stale-scan sweep re-queues the scan (a queued scan whose job was taken but never claimed).
          this.log.error({ err, jobId: job.id, scanId: job.data.scanId }, 'could not put a fetched scan back in the queue; the scan sweep will');
        });
        return;
      }
      this.execute(job);
    }
  }

  private async fetchOne(): Promise<PgBoss.Job<ScanJobData> | undefined> {
    try {
      // pg-boss's fetch answers [] when its statement fails (a database outage looks like an empty
      // queue: the next poll tries again). A fetch that committed but whose answer was lost leaves
      // its job active with the scan still queued: the stale-scan sweep re-queues that scan.
      const [job] = await this.boss.fetch<ScanJobData>(QUEUES.scan, { batchSize: 1 });
      return job;
    } catch (err) {
      this.log.warn({ err }, 'fetching scan jobs failed');
      return undefined;
    }
  }

  private execute(job: PgBoss.Job<ScanJobData>): void {
    const abort = new AbortController();
    const settled = this.runAndSettle(job, abort.signal).finally(() => {
      this.running.delete(job.id);
      // A free slot: scans announced while every slot was busy can start now.
      this.nudge();
    });
    this.running.set(job.id, { abort, settled });
  }

  private async runAndSettle(job: PgBoss.Job<ScanJobData>, signal: AbortSignal): Promise<void> {
    let output: { state: string };
    try {
      const scan = await this.runner.run(job.data.scanId, signal);
      output = scan ? { state: scan.state } : { state: 'gone' };
    } catch (err) {
      // bb-scan has no retries: the job fails; a scan left queued or running is the sweep's.
      await this.boss.fail(QUEUES.scan, job.id, err as object).catch((e: unknown) => {
        this.log.warn({ err: e, jobId: job.id }, 'could not record a failed scan job');
      });
      return;
    }
    await this.boss.complete(QUEUES.scan, job.id, output).catch((err: unknown) => {
      // The scan's outcome is in its row; the job is left to pg-boss's expiry.
      this.log.warn({ err, jobId: job.id }, 'could not complete a scan job');
    });
  }
}
