/**
 * The command table. Adding a command is one entry here plus its module, which
 * exports `command: Command`. Modules load on demand, so `sign` and `send` start
 * without pulling in the HTTP server, queue and storage SDKs that `serve` needs.
 */
import type { Command } from './command.js';

export interface CommandEntry {
  name: string;
  /** One line for the top-level usage. */
  summary: string;
  load(): Promise<{ command: Command }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'serve', summary: 'run the service (signed intake, admin API, replication workers)', load: () => import('./serve.js') },
  { name: 'migrate', summary: 'apply pending database migrations and exit', load: () => import('./migrate.js') },
  { name: 'sign', summary: 'print SDK-HMAC-SHA256 headers for a request', load: () => import('./sign.js') },
  { name: 'send', summary: 'sign a notification and POST it', load: () => import('./send.js') },
  { name: 'scan', summary: 'start a reconciliation scan of a task (queue it, or run it here)', load: () => import('./scan.js') },
  { name: 'decrypt', summary: 'decrypt a client-side-encrypted replica with the private key', load: () => import('./decrypt.js') },
  { name: 'token', summary: 'mint an admin API token (HS256, BB_ADMIN_JWT_SECRET)', load: () => import('./token.js') },
];
