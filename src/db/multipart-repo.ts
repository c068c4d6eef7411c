/** bb_multipart_uploads / bb_multipart_parts: the resume state of large copies. */
import type pg from 'pg';

export interface UploadRecord {
  uploadId: string;
  taskId: string;
  key: string;
  destination: string;
  sourceEtag: string;
  size: number;
  partSize: number;
  createdAt: Date;
}

export interface PartRecord {
  partNumber: number;
  size: number;
  etag: string;
  crc64: string;
}

export class MultipartRepo {
  constructor(private readonly pool: pg.Pool) {}

  async find(taskId: string, key: string): Promise<UploadRecord | undefined> {
    const { rows } = await this.pool.query(
      `SELECT upload_id AS "uploadId", task_id AS "taskId", key, destination, source_etag AS "sourceEtag",
              size::float8 AS size, part_size::float8 AS "partSize", created_at AS "createdAt"
         FROM bb_multipart_uploads WHERE task_id = $1 AND key = $2`,
      [taskId, key],
    );
    return rows[0] as UploadRecord | undefined;
  }

  async insert(u: Omit<UploadRecord, 'createdAt'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO bb_multipart_uploads (upload_id, task_id, key, destination, source_etag, size, part_size)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (task_id, key) DO UPDATE SET upload_id = EXCLUDED.upload_id, destination = EXCLUDED.destination,
         source_etag = EXCLUDED.source_etag, size = EXCLUDED.size, part_size = EXCLUDED.part_size, created_at = now()`,
      [u.uploadId, u.taskId, u.key, u.destination, u.sourceEtag, u.size, u.partSize],
    );
  }

  async parts(uploadId: string): Promise<PartRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT part_number AS "partNumber", size::float8 AS size, etag, crc64
         FROM bb_multipart_parts WHERE upload_id = $1 ORDER BY part_number`,
      [uploadId],
    );
    return rows as PartRecord[];
  }

  async recordPart(uploadId: string, p: PartRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO bb_multipart_parts (upload_id, part_number, size, etag, crc64) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (upload_id, part_number) DO UPDATE SET size = EXCLUDED.size, etag = EXCLUDED.etag,
         crc64 = EXCLUDED.crc64, uploaded_at = now()`,
      [uploadId, p.partNumber, p.size, p.etag, p.crc64],
    );
  }

  async delete(uploadId: string): Promise<void> {
    await this.pool.query('DELETE FROM bb_multipart_uploads WHERE upload_id = $1', [uploadId]);
  }

  /** Uploads started before `olderThan` (abandoned: their task or key is gone). */
  async olderThan(olderThan: Date): Promise<UploadRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT upload_id AS "uploadId", task_id AS "taskId", key, destination, source_etag AS "sourceEtag",
              size::float8 AS size, part_size::float8 AS "partSize", created_at AS "createdAt"
         FROM bb_multipart_uploads WHERE created_at < $1`,
      [olderThan],
    );
    return rows as UploadRecord[];
  }
}
