/**
 * bb_senders: senders created through the admin API. Secrets are sealed with
 * the SecretBox (AES-256-GCM, key derived from BB_MASTER_KEY, bound to the
 * access key id) and only ever leave this module decrypted for the intake's
 * SenderDirectory, or once, in the answer to create/rotate.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ApiSenderSource, Sender } from '../auth/senders.js';
import type { SecretBox } from '../auth/secret-box.js';
import { AppError } from '../errors.js';

export interface SenderRecord {
  accessKeyId: string;
  tasks: string[];
  description: string | null;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  rotatedAt: Date | null;
  /** When the previous secret (kept during a rotation) stops working; null when there is none. */
  previousSecretExpiresAt: Date | null;
}

const COLUMNS = `access_key_id AS "accessKeyId", tasks, description, disabled, created_at AS "createdAt",
  updated_at AS "updatedAt", rotated_at AS "rotatedAt",
  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS "previousSecretExpiresAt"`;

export function masterKeyRequired(): AppError {
  return new AppError(
    503,
    'MASTER_KEY_REQUIRED',
    'senders created through the API need BB_MASTER_KEY (32 bytes, base64 or hex) to encrypt their secrets; set it and restart (config-file senders work without it)',
  );
}

export class SenderRepo implements ApiSenderSource {
  private warnedNoKey = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly box?: SecretBox,
  ) {}

  get canStoreSecrets(): boolean {
    return this.box !== undefined;
  }

  private requireBox(): SecretBox {
    if (!this.box) throw masterKeyRequired();
    return this.box;
  }

  async list(): Promise<SenderRecord[]> {
    const { rows } = await this.pool.query<SenderRecord>(`SELECT ${COLUMNS} FROM bb_senders ORDER BY access_key_id`);
    return rows;
  }

  async get(accessKeyId: string): Promise<SenderRecord | undefined> {
    const { rows } = await this.pool.query<SenderRecord>(`SELECT ${COLUMNS} FROM bb_senders WHERE access_key_id = $1`, [accessKeyId]);
    return rows[0];
  }

  /** Insert a sender; undefined when the access key is taken. */
  async create(input: { accessKeyId: string; tasks: string[]; description?: string }, secret: string): Promise<SenderRecord | undefined> {
    const box = this.requireBox();
    const { rows } = await this.pool.query<SenderRecord>(
      `INSERT INTO bb_senders (access_key_id, tasks, description, secret_enc) VALUES ($1, $2, $3, $4)
       ON CONFLICT (access_key_id) DO NOTHING RETURNING ${COLUMNS}`,
      [input.accessKeyId, input.tasks, input.description ?? null, box.seal(secret, input.accessKeyId)],
    );
    return rows[0];
  }

  /**
   * New secret; the current one becomes the previous secret, valid until
   * `previousValidUntil` (a time not in the future drops it at once).
   */
  async rotate(accessKeyId: string, secret: string, previousValidUntil: Date): Promise<SenderRecord | undefined> {
    const box = this.requireBox();
    const { rows } = await this.pool.query<SenderRecord>(
      `UPDATE bb_senders SET
         previous_secret_enc = CASE WHEN $3::timestamptz > now() THEN secret_enc END,
         previous_secret_expires_at = CASE WHEN $3::timestamptz > now() THEN $3::timestamptz END,
         secret_enc = $2, rotated_at = now(), updated_at = now()
       WHERE access_key_id = $1 RETURNING ${COLUMNS}`,
      [accessKeyId, box.seal(secret, accessKeyId), previousValidUntil],
    );
    return rows[0];
  }

  async setDisabled(accessKeyId: string, disabled: boolean): Promise<SenderRecord | undefined> {
    const { rows } = await this.pool.query<SenderRecord>(
      `UPDATE bb_senders SET disabled = $2, updated_at = now() WHERE access_key_id = $1 RETURNING ${COLUMNS}`,
      [accessKeyId, disabled],
    );
    return rows[0];
  }

  async delete(accessKeyId: string): Promise<boolean> {
    const res = await this.pool.query('DELETE FROM bb_senders WHERE access_key_id = $1', [accessKeyId]);
    return (res.rowCount ?? 0) > 0;
  }

  /** Enabled senders with their secrets decrypted; rows that cannot be decrypted are skipped and logged. */
  async loadForIntake(log?: Logger): Promise<Sender[]> {
    const { rows } = await this.pool.query<{
      accessKeyId: string;
      tasks: string[];
      secretEnc: Buffer;
      previousEnc: Buffer | null;
      previousExpiresAt: Date | null;
    }>(
      `SELECT access_key_id AS "accessKeyId", tasks, secret_enc AS "secretEnc",
              CASE WHEN previous_secret_expires_at > now() THEN previous_secret_enc END AS "previousEnc",
              previous_secret_expires_at AS "previousExpiresAt"
         FROM bb_senders WHERE NOT disabled ORDER BY access_key_id`,
    );
    if (!this.box) {
      if (rows.length > 0 && !this.warnedNoKey) {
        this.warnedNoKey = true;
        log?.warn({ senders: rows.length }, 'BB_MASTER_KEY is not set: senders created through the admin API cannot be used');
      }
      return [];
    }
    const out: Sender[] = [];
    for (const r of rows) {
      try {
        const sender: Sender = { accessKeyId: r.accessKeyId, secrets: [this.box.open(r.secretEnc, r.accessKeyId)], tasks: r.tasks, source: 'api' };
        if (r.previousEnc && r.previousExpiresAt) {
          sender.previous = { secret: this.box.open(r.previousEnc, r.accessKeyId), expiresAt: r.previousExpiresAt };
        }
        out.push(sender);
      } catch {
        log?.error({ accessKeyId: r.accessKeyId }, 'cannot decrypt the secret of an API sender (was BB_MASTER_KEY changed?); sender skipped');
      }
    }
    return out;
  }
}
