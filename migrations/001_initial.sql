-- Tasks: config-file tasks are mirrored here at start (managed_by = 'config');
-- the admin API creates 'api' ones. The definition is the validated task JSON.
CREATE TABLE bb_tasks (
  id          text PRIMARY KEY,
  definition  jsonb NOT NULL,
  managed_by  text NOT NULL CHECK (managed_by IN ('config', 'api')),
  paused      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Per-object replication status: the source of truth for "is this key done".
CREATE TABLE bb_object_status (
  task_id             text NOT NULL,
  key                 text NOT NULL,
  status              text NOT NULL CHECK (status IN
                        ('pending', 'completed', 'in_sync', 'deleted', 'source_missing', 'archived', 'failed')),
  attempts            integer NOT NULL DEFAULT 0,
  bytes               bigint,
  source_etag         text,
  source_crc64        text,
  destination_etag    text,
  duration_ms         integer,
  last_error_code     text,
  last_error_message  text,
  first_seen_at       timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  completed_at        timestamptz,
  PRIMARY KEY (task_id, key)
);
CREATE INDEX bb_object_status_by_status ON bb_object_status (task_id, status, key);

-- Every accepted intake request. signature_hash makes a replayed request
-- (same signature inside its validity window) return the first answer.
CREATE TABLE bb_intake_ledger (
  id              bigserial PRIMARY KEY,
  request_id      text NOT NULL,
  sender          text NOT NULL,
  task_id         text,
  format          text NOT NULL,
  accepted        integer NOT NULL,
  duplicates      integer NOT NULL,
  ignored         integer NOT NULL,
  signature_hash  bytea NOT NULL,
  response        jsonb NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bb_intake_ledger_signature ON bb_intake_ledger (signature_hash);
CREATE INDEX bb_intake_ledger_received ON bb_intake_ledger (received_at);
