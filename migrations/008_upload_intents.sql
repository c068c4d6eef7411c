-- A multipart upload is created on the destination before BucketBridge can
-- record it (bb_multipart_uploads needs the id the destination returns). A
-- crash, or a lost answer to the create request, in between would leave an
-- upload nobody knows about. So the intent is written first, and removed by
-- this trigger in the same statement that records the upload; an intent still
-- there when the key is next worked on means "list this key's uploads on the
-- destination and abort the ones not recorded" (src/queue/upload-intents.ts).
CREATE TABLE bb_upload_intents (
  task_id     text NOT NULL,
  key         text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, key)
);

CREATE FUNCTION bb_upload_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM bb_upload_intents WHERE task_id = NEW.task_id AND key = NEW.key;
  RETURN NULL;
END
$$;

CREATE TRIGGER bb_multipart_uploads_recorded AFTER INSERT OR UPDATE OF upload_id ON bb_multipart_uploads
  FOR EACH ROW EXECUTE FUNCTION bb_upload_recorded();
