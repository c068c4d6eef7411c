-- Reconciliation scans (src/scan/). One row per requested scan, whatever
-- started it (API, CLI, schedule). At most one scan per task is active
-- (queued or running) across all processes: the partial unique index makes a
-- second request conflict, and it is then recorded as 'skipped'.
CREATE TABLE bb_scans (
  id                uuid PRIMARY KEY,
  task_id           text NOT NULL REFERENCES bb_tasks (id) ON DELETE CASCADE,
  state             text NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'skipped')),
  trigger           text NOT NULL CHECK (trigger IN ('api', 'cli', 'schedule', 'once')),
  requested_by      text,
  scope             jsonb NOT NULL,
  -- The active scan a skipped request found.
  skipped_for       uuid,
  -- pg-boss job (queue bb-scan) that runs it; replaced when the scan is re-queued.
  job_id            uuid,
  -- Runs begun: a scan interrupted (shutdown, lost process) resumes from `position`.
  attempts          integer NOT NULL DEFAULT 0,
  worker            text,
  -- Every key up to and including this one is compared and its differences queued.
  position          text,
  source_keys       bigint NOT NULL DEFAULT 0,
  destination_keys  bigint NOT NULL DEFAULT 0,
  compared          bigint NOT NULL DEFAULT 0,
  filtered          bigint NOT NULL DEFAULT 0,
  missing           bigint NOT NULL DEFAULT 0,
  size_differs      bigint NOT NULL DEFAULT 0,
  content_differs   bigint NOT NULL DEFAULT 0,
  extra             bigint NOT NULL DEFAULT 0,
  uncompared        bigint NOT NULL DEFAULT 0,
  same_by_status    bigint NOT NULL DEFAULT 0,
  same_by_etag      bigint NOT NULL DEFAULT 0,
  same_by_head      bigint NOT NULL DEFAULT 0,
  heads             bigint NOT NULL DEFAULT 0,
  archived          bigint NOT NULL DEFAULT 0,
  list_requests     bigint NOT NULL DEFAULT 0,
  jobs_queued       bigint NOT NULL DEFAULT 0,
  jobs_already_queued bigint NOT NULL DEFAULT 0,
  error             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  heartbeat_at      timestamptz,
  finished_at       timestamptz
);
CREATE UNIQUE INDEX bb_scans_one_active ON bb_scans (task_id) WHERE state IN ('queued', 'running');
CREATE INDEX bb_scans_by_task ON bb_scans (task_id, created_at DESC);
CREATE INDEX bb_scans_active ON bb_scans (state, heartbeat_at) WHERE state IN ('queued', 'running');

-- Schedule bookkeeping per task. `rate` schedules are timed here (next_run_at,
-- claimed atomically by whichever process ticks first); `cron` schedules live
-- in pg-boss (pgboss.schedule, queue bb-scan-cron.<task>). once_fired_at makes
-- a `once` task scan exactly once, across restarts and processes.
CREATE TABLE bb_scan_schedules (
  task_id        text PRIMARY KEY REFERENCES bb_tasks (id) ON DELETE CASCADE,
  rate_seconds   integer,
  next_run_at    timestamptz,
  last_fired_at  timestamptz,
  once_fired_at  timestamptz,
  once_scan_id   uuid,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bb_scan_schedules_due ON bb_scan_schedules (next_run_at) WHERE rate_seconds IS NOT NULL;
