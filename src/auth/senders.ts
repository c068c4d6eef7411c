/**
 * Who may POST notifications: access key → valid secrets (two during a
 * rotation) and the tasks the key may feed. Config-file senders read their
 * secrets from the env vars the config names; senders created through the
 * admin API live in bb_senders (secrets encrypted with BB_MASTER_KEY) and are
 * reloaded whenever that table changes. A config sender wins over an API
 * sender of the same access key.
 */
import type { Logger } from 'pino';
import type { SenderConfig } from '../config/types.js';

export interface Sender {
  accessKeyId: string;
  secrets: string[];
  tasks: string[];
  source: 'config' | 'api';
  /** API senders during a rotation: the old secret, accepted until `expiresAt`. */
  previous?: { secret: string; expiresAt: Date };
}

/** What loads API senders (db/sender-repo.ts implements it). */
export interface ApiSenderSource {
  loadForIntake(log?: Logger): Promise<Sender[]>;
}

export class SenderDirectory {
  private senders = new Map<string, Sender>();
  private apiSenders = new Map<string, Sender>();

  static fromConfig(senders: SenderConfig[], env: NodeJS.ProcessEnv = process.env): SenderDirectory {
    const dir = new SenderDirectory();
    for (const s of senders) {
      const secrets = [env[s.secretEnv], s.previousSecretEnv ? env[s.previousSecretEnv] : undefined].filter(
        (x): x is string => !!x,
      );
      dir.set({ accessKeyId: s.accessKeyId, secrets, tasks: [...s.tasks], source: 'config' });
    }
    return dir;
  }

  set(sender: Sender): void {
    this.senders.set(sender.accessKeyId, sender);
  }

  /** Replace the API-managed senders (enabled ones, secrets decrypted). */
  replaceApiSenders(senders: Sender[]): void {
    this.apiSenders = new Map(senders.map((s) => [s.accessKeyId, { ...s, source: 'api' as const }]));
  }

  /** Reload the API-managed senders from the database. */
  async loadApiSenders(source: ApiSenderSource, log?: Logger): Promise<void> {
    this.replaceApiSenders(await source.loadForIntake(log));
  }

  get(accessKeyId: string): Sender | undefined {
    return this.senders.get(accessKeyId) ?? this.apiSenders.get(accessKeyId);
  }

  /** True when the access key belongs to a config-file sender. */
  isConfigSender(accessKeyId: string): boolean {
    return this.senders.has(accessKeyId);
  }

  /** Config-file senders (read-only through the admin API). */
  configSenders(): Sender[] {
    return [...this.senders.values()];
  }

  /** For signature verification: the secrets of a key, or undefined when unknown. */
  secretsOf = (accessKeyId: string): string[] | undefined => {
    const s = this.get(accessKeyId);
    if (!s) return undefined;
    const secrets = s.previous && s.previous.expiresAt.getTime() > Date.now() ? [...s.secrets, s.previous.secret] : s.secrets;
    return secrets.length > 0 ? secrets : undefined;
  };
}
