/**
 * Who may POST notifications: access key → valid secrets (two during a
 * rotation) and the tasks the key may feed. Config-file senders read their
 * secrets from the env vars the config names.
 */
import type { SenderConfig } from '../config/types.js';

export interface Sender {
  accessKeyId: string;
  secrets: string[];
  tasks: string[];
  source: 'config' | 'api';
}

export class SenderDirectory {
  private senders = new Map<string, Sender>();

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

  get(accessKeyId: string): Sender | undefined {
    return this.senders.get(accessKeyId);
  }

  /** For signature verification: the secrets of a key, or undefined when unknown. */
  secretsOf = (accessKeyId: string): string[] | undefined => {
    const s = this.senders.get(accessKeyId);
    return s && s.secrets.length > 0 ? s.secrets : undefined;
  };
}
