/** Reads env and the JSON config file into one validated Config. */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadEnv, type Env } from './env.js';
import type { ConfigFile } from './types.js';
import { ConfigError, validateConfigFile } from './validate.js';

export interface Config {
  env: Env;
  file: ConfigFile;
  /** Absolute path of the config file read, if any. */
  configPath?: string;
}

export const DEFAULT_CONFIG_FILE = 'bucketbridge.config.json';

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const parsedEnv = loadEnv(env);
  let configPath: string | undefined;
  if (parsedEnv.configPath) {
    configPath = resolve(cwd, parsedEnv.configPath);
    if (!existsSync(configPath)) throw new ConfigError('BB_CONFIG', `file ${configPath} does not exist`);
  } else if (existsSync(resolve(cwd, DEFAULT_CONFIG_FILE))) {
    configPath = resolve(cwd, DEFAULT_CONFIG_FILE);
  }
  if (!configPath) return { env: parsedEnv, file: { tasks: [], senders: [] } };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new ConfigError('BB_CONFIG', `${configPath} is not valid JSON (${(err as Error).message})`);
  }
  return { env: parsedEnv, file: validateConfigFile(raw, env), configPath };
}
