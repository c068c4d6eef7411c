-- Per-task rate limits (options.limits) shared by every worker of every process
-- on this database: one token bucket per (task, kind), refilled from the
-- database clock, so hosts with skewed clocks still agree. Takers reserve with
-- one atomic upsert (src/limits/token-bucket.ts): tokens may go negative, and a
-- taker that drove the balance below zero waits -tokens/rate seconds, so
-- concurrent takers queue in arrival order without polling.
CREATE TABLE bb_rate_buckets (
  task_id     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('bytes', 'requests')),
  rate        double precision NOT NULL CHECK (rate > 0),
  capacity    double precision NOT NULL CHECK (capacity > 0),
  tokens      double precision NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (task_id, kind)
);
