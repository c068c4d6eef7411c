-- Senders created through the admin API. Secrets are AES-256-GCM ciphertexts
-- under a key derived from BB_MASTER_KEY (never stored in clear). During a
-- rotation the previous secret stays valid until previous_secret_expires_at.
CREATE TABLE bb_senders (
  access_key_id               text PRIMARY KEY,
  tasks                       text[] NOT NULL,
  description                 text,
  secret_enc                  bytea NOT NULL,
  previous_secret_enc         bytea,
  previous_secret_expires_at  timestamptz,
  disabled                    boolean NOT NULL DEFAULT false,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now(),
  rotated_at                  timestamptz
);

-- A change counter per registry, bumped by trigger on any write to the table,
-- whoever makes it (admin API, config sync, psql). Every process polls this
-- one small table and reloads a registry when its version moved.
CREATE TABLE bb_registry_versions (
  name        text PRIMARY KEY,
  version     bigint NOT NULL DEFAULT 0,
  changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bb_registry_versions (name) VALUES ('tasks'), ('senders');

CREATE FUNCTION bb_bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bb_registry_versions SET version = version + 1, changed_at = now() WHERE name = TG_ARGV[0];
  RETURN NULL;
END
$$;

CREATE TRIGGER bb_tasks_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bb_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION bb_bump_registry_version('tasks');
CREATE TRIGGER bb_senders_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bb_senders
  FOR EACH STATEMENT EXECUTE FUNCTION bb_bump_registry_version('senders');

-- Status and metrics queries: throughput windows, oldest pending row per task,
-- intake ledger filtered by sender or task, newest first.
CREATE INDEX bb_object_status_completed ON bb_object_status (task_id, completed_at);
CREATE INDEX bb_object_status_pending ON bb_object_status (task_id, updated_at) WHERE status = 'pending';
CREATE INDEX bb_intake_ledger_sender ON bb_intake_ledger (sender, id);
CREATE INDEX bb_intake_ledger_task ON bb_intake_ledger (task_id, id);
