#!/usr/bin/env node
/**
 * Regenerate openapi/openapi.json from the route schemas, and openapi/openapi.d.ts
 * (its TypeScript types, by openapi-typescript) that the typed-client test
 * compiles against. Reads the TypeScript sources directly (through tap's
 * TypeScript loader, a dev dependency), so no build is needed.
 *
 *   node scripts/openapi.mjs            write both files
 *   node scripts/openapi.mjs --check    exit 1 when either is stale
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (!process.env.BB_OPENAPI_LOADED) {
  // Re-run under the TypeScript loader.
  const r = spawnSync(process.execPath, ['--no-warnings', '--import=@tapjs/typescript/import', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, BB_OPENAPI_LOADED: '1', TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(root, 'tsconfig.test.json') },
  });
  process.exit(r.status ?? 1);
}

const { renderOpenApiDocument } = await import(pathToFileURL(join(root, 'src/http/openapi-doc.ts')).href);
const { renderOpenApiTypes } = await import('./openapi-types.mjs');

const json = await renderOpenApiDocument();
const outputs = [
  ['openapi/openapi.json', json],
  ['openapi/openapi.d.ts', await renderOpenApiTypes(JSON.parse(json))],
];
if (process.argv.includes('--check')) {
  const stale = outputs.filter(([file, text]) => !existsSync(join(root, file)) || readFileSync(join(root, file), 'utf8') !== text).map(([f]) => f);
  if (stale.length > 0) {
    process.stderr.write(`stale: ${stale.join(', ')}; run: node scripts/openapi.mjs\n`);
    process.exit(1);
  }
  process.stdout.write('openapi/ is current\n');
} else {
  mkdirSync(join(root, 'openapi'), { recursive: true });
  for (const [file, text] of outputs) writeFileSync(join(root, file), text);
  process.stdout.write(`wrote ${outputs.map(([f]) => f).join(', ')}\n`);
}
