-- An intent must outlive the recording of an upload when an earlier, unrecorded
-- upload of the key may still be open. Migration 008's trigger removed the
-- intent whenever any upload of the key was recorded, so when the cleanup of an
-- interrupted create failed (its listing or abort refused, say a 503) and the
-- copy then created and recorded a new upload, the intent of the first create
-- went with it and that upload stayed open, unknown (the likeliest cause of the
-- occasional test/chaos-network failure: one upload open, none recorded).
--
-- held: set when an intent is written while one is already there (a create
-- before the earlier doubt was cleared); such an intent is removed only by a
-- sweep that saw no unrecorded upload of the key (src/queue/upload-intents.ts).
-- Intents present at this migration come from interrupted creates: held.
ALTER TABLE bb_upload_intents ADD COLUMN held boolean NOT NULL DEFAULT true;
ALTER TABLE bb_upload_intents ALTER COLUMN held SET DEFAULT false;
-- Sweeps that ended without clearing the intent: the worker's follow-up jobs
-- back off on it and stop after a bound (upload-intents.ts).
ALTER TABLE bb_upload_intents ADD COLUMN failed_sweeps integer NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION bb_upload_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM bb_upload_intents WHERE task_id = NEW.task_id AND key = NEW.key AND NOT held;
  RETURN NULL;
END
$$;
