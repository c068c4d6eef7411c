-- In-progress multipart uploads, so a copy interrupted by a crash resumes from
-- the parts already on the destination instead of starting over.
CREATE TABLE bb_multipart_uploads (
  upload_id     text PRIMARY KEY,
  task_id       text NOT NULL,
  key           text NOT NULL,
  destination   text NOT NULL,          -- provider:bucket of the destination
  source_etag   text NOT NULL,          -- the source version being copied
  size          bigint NOT NULL,
  part_size     bigint NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bb_multipart_uploads_key ON bb_multipart_uploads (task_id, key);
CREATE INDEX bb_multipart_uploads_age ON bb_multipart_uploads (created_at);

CREATE TABLE bb_multipart_parts (
  upload_id    text NOT NULL REFERENCES bb_multipart_uploads (upload_id) ON DELETE CASCADE,
  part_number  integer NOT NULL,
  size         bigint NOT NULL,
  etag         text NOT NULL,
  crc64        text NOT NULL,
  uploaded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (upload_id, part_number)
);
