-- Alerts (src/alerts/). Raising an alert is one small transaction: a dedupe
-- check, the task's rate limit, and a row in the outbox; a dispatcher in every
-- process delivers the outbox (signed POST) with retries and backoff. So a
-- receiver that is down or slow never holds up replication, and an alert
-- outlives a restart until it is delivered.
CREATE TABLE bb_alert_outbox (
  id               bigserial PRIMARY KEY,
  task_id          text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('key_failed', 'dead_letter', 'replication_lag')),
  dedupe_key       text NOT NULL,
  payload          jsonb NOT NULL,
  state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'abandoned')),
  attempts         integer NOT NULL DEFAULT 0,
  -- Due time; a dispatcher that claims the row pushes it past its delivery timeout,
  -- so a dispatcher that dies mid-delivery leaves it to be retried by another.
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz
);
CREATE INDEX bb_alert_outbox_due ON bb_alert_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX bb_alert_outbox_task ON bb_alert_outbox (task_id, id);

-- When each alert (task, dedupe key) was last raised: the same alert is not
-- raised again within the task's dedupe interval.
CREATE TABLE bb_alert_dedupe (
  task_id     text NOT NULL,
  dedupe_key  text NOT NULL,
  raised_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, dedupe_key)
);

-- Per-task rate limit: alerts raised in the current one-minute window. Past the
-- limit an alert is only counted (suppressed); the count goes out with the next
-- alert the task sends.
CREATE TABLE bb_alert_limits (
  task_id       text PRIMARY KEY,
  window_start  timestamptz NOT NULL,
  raised        integer NOT NULL,
  suppressed    integer NOT NULL DEFAULT 0
);

-- Conditions watched per task (dead-letter queue non-empty, lag over the
-- threshold): an alert is raised when one becomes true, not while it stays true.
CREATE TABLE bb_alert_conditions (
  task_id     text NOT NULL,
  kind        text NOT NULL,
  active      boolean NOT NULL,
  changed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, kind)
);
