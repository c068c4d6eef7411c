-- Live worker processes and the jobs each is running. pg-boss 10 has no job
-- heartbeat, so a process killed mid-copy would leave its jobs 'active' until
-- they expire (hours, for large copies). A process whose heartbeat stops has
-- its jobs handed back to the queue by whichever process sweeps next.
CREATE TABLE bb_workers (
  id            uuid PRIMARY KEY,
  host          text NOT NULL,
  pid           integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bb_job_leases (
  job_id      uuid PRIMARY KEY,
  worker_id   uuid NOT NULL REFERENCES bb_workers (id) ON DELETE CASCADE,
  task_id     text NOT NULL,
  key         text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bb_job_leases_worker ON bb_job_leases (worker_id);
