import * as fs from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_FILE, readConfigFile, type ConfigFile } from './config.js';
import { defaultRepoLocation } from './location.js';

/** Where a setting came from, strongest first: flag, environment, config file, built-in default. */
export type Origin = 'flag' | 'env' | 'config' | 'default';

export interface ConfigFileRef {
  file: string;
  from: 'flag' | 'env' | 'default';
}

/** What a command was told on its command line (the library's option names). */
export interface SettingFlags {
  config?: string;
  repo?: string;
  catalog?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
}

/** Everything a session needs from flags, environment and the config file, flags > env > file. */
export interface SessionSettings {
  config: ConfigFileRef | null;
  repository: { location: string; from: Origin };
  /** undefined: SNAPFILL_CATALOG or the cache default (catalogPathFor decides). */
  catalog?: string;
  s3: { s3Endpoint?: string; s3Region?: string; s3PathStyle?: boolean };
  credentials: { envFile?: string; profile?: string };
  /** The config file's "password_file" (config/password.ts puts it after flags and env). */
  passwordFile?: string;
}

/**
 * The config file every command reads: --config, else SNAPFILL_CONFIG, else the default file
 * when it exists. A file that is named must then be readable and valid (fail closed).
 */
export function findConfigFile(flag?: string, env: NodeJS.ProcessEnv = process.env): ConfigFileRef | null {
  if (flag !== undefined) return { file: flag, from: 'flag' };
  if (env.SNAPFILL_CONFIG) return { file: env.SNAPFILL_CONFIG, from: 'env' };
  // existsSync stats the file: a default file this user cannot read still exists, and must then fail.
  if (fs.existsSync(DEFAULT_CONFIG_FILE)) return { file: DEFAULT_CONFIG_FILE, from: 'default' };
  return null;
}

const ORIGIN_OF_FILE = { flag: '--config', env: 'SNAPFILL_CONFIG', default: 'the default location' } as const;

/** Reads a config file for an ordinary command: any problem is one line naming the file and how it was chosen. */
export function readConfigFor(ref: ConfigFileRef): ConfigFile {
  try {
    return readConfigFile(ref.file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new ConfigError(
      ref.file,
      e.problems,
      `config ${ref.file} (from ${ORIGIN_OF_FILE[ref.from]}): ${e.problems.join('; ')}` +
        (e.problems.some((p) => p.includes('--config')) ? '' : '; fix it or name another file with --config'),
    );
  }
}

/** flags > env > config file for a session. The env value itself is left to its reader (store/s3config.ts) when set. */
export function resolveSettings(flags: SettingFlags, env: NodeJS.ProcessEnv = process.env): SessionSettings {
  const config = findConfigFile(flags.config, env);
  const file = config ? readConfigFor(config) : null;
  const fromFile = <T>(flag: T | undefined, envName: string, v: T | undefined): T | undefined =>
    flag !== undefined ? flag : env[envName] ? undefined : v;
  return {
    config,
    repository: repositoryLocation(flags.repo, env, file),
    catalog: flags.catalog ?? (env.SNAPFILL_CATALOG ? undefined : file?.catalog),
    s3: {
      s3Endpoint: fromFile(flags.s3Endpoint, 'SNAPFILL_S3_ENDPOINT', file?.s3?.endpoint),
      s3Region: fromFile(flags.s3Region, 'SNAPFILL_S3_REGION', file?.s3?.region),
      s3PathStyle: fromFile(flags.s3PathStyle, 'SNAPFILL_S3_PATH_STYLE', file?.s3?.path_style),
    },
    credentials: { envFile: file?.credentials?.env_file, profile: file?.credentials?.profile },
    passwordFile: file?.password_file,
  };
}

/**
 * The repository: --repo, else SNAPFILL_REPO, else the config's "repository", else the default.
 * An explicit but empty location (`--repo "$UNSET"`) is an error: falling through to another
 * repository would snapshot into, or restore from, the wrong one. An empty SNAPFILL_REPO counts
 * as unset (`SNAPFILL_REPO= snapfill ...` is how a shell unsets a variable for one command).
 */
function repositoryLocation(flag: string | undefined, env: NodeJS.ProcessEnv, file: ConfigFile | null): SessionSettings['repository'] {
  if (flag !== undefined) {
    if (!flag.trim()) throw new Error('the repository location given is empty: name a directory or s3://bucket/prefix');
    return { location: flag, from: 'flag' };
  }
  if (env.SNAPFILL_REPO) return { location: env.SNAPFILL_REPO, from: 'env' };
  if (file?.repository) return { location: file.repository, from: 'config' };
  return { location: defaultRepoLocation(), from: 'default' };
}

/**
 * Where the repository was looked for, in order, as one sentence for "no repository here":
 * the admin sees at once which place won and what the others held. `flag` names an option
 * as the front end spells it (`--repo`).
 */
export function describeRepoLookup(s: SessionSettings, flag: (option: string) => string, env: NodeJS.ProcessEnv = process.env): string {
  const places: string[] = [];
  const { from, location } = s.repository;
  places.push(from === 'flag' ? `${flag('repo')} ${location}` : `${flag('repo')} (not given)`);
  if (from !== 'flag')
    places.push(from === 'env' ? `SNAPFILL_REPO=${location}` : `SNAPFILL_REPO (${env.SNAPFILL_REPO === undefined ? 'not set' : 'empty'})`);
  if (from === 'config' || from === 'default') places.push(configPlace(s, flag));
  if (from === 'default') places.push(`the default location ${location}`);
  return `looked at ${places.join(', ')}`;
}

function configPlace(s: SessionSettings, flag: (option: string) => string): string {
  if (!s.config) return `config ${DEFAULT_CONFIG_FILE} (does not exist; ${flag('config')} / SNAPFILL_CONFIG not given)`;
  const named = s.config.from === 'default' ? '' : ` (from ${s.config.from === 'flag' ? flag('config') : 'SNAPFILL_CONFIG'})`;
  return s.repository.from === 'config'
    ? `config ${s.config.file}${named}: "repository": ${s.repository.location}`
    : `config ${s.config.file}${named} (no "repository")`;
}
