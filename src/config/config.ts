import * as fs from 'node:fs';
import * as path from 'node:path';
import { validate, type Field, type Spec } from './schema.js';
import { cacheDir } from './location.js';
import { DEFAULT_POLICY, parseDuration, policyIsEmpty, type RetentionPolicy } from '../maintain/policy.js';
import type { ThrottleSettings } from '../util/throttle.js';

export const DEFAULT_CONFIG_FILE = '/etc/snapfill/config.json';
export const DEFAULT_TIMES = ['03:00', '11:00', '19:00'];

/** The one validated configuration a scheduled run works from (file, then env, then flags). */
export interface Config {
  /** The file it was read from. */
  file: string;
  repository: string;
  s3: { endpoint?: string; region?: string; pathStyle?: boolean };
  credentials: { envFile?: string; profile?: string };
  catalog?: string;
  sources: string[];
  excludes: string[];
  accountsRoot: string;
  host?: string;
  tags: string[];
  oneFileSystem: boolean;
  retention: RetentionPolicy;
  prune: { enabled: boolean; everyHours: number; repackThreshold: number };
  throttle: ThrottleSettings;
  hooks: { pre: string[]; post: string[]; onPreFailure: 'abort' | 'continue'; timeoutMinutes: number };
  schedule: { times: string[]; randomizedDelayMinutes: number; persistent: boolean; logFile?: string };
  monitoring: { prometheusTextfile?: string; jsonLog?: string };
  lockFile: string;
}

/** The config file as written (snake_case JSON), after CONFIG_SPEC validated it: only these keys, with these types. */
export interface ConfigFile {
  repository?: string;
  s3?: { endpoint?: string; region?: string; path_style?: boolean };
  credentials?: { env_file?: string; profile?: string };
  catalog?: string;
  password_file?: string;
  sources: string[];
  excludes?: string[];
  accounts_root?: string;
  host?: string;
  tags?: string[];
  one_file_system?: boolean;
  retention?: ConfigFileRetention;
  prune?: { enabled?: boolean; every_hours?: number; repack_threshold?: number };
  throttle?: { limit_read_mbps?: number; limit_upload_mbps?: number; max_load?: number; io_priority?: 'idle' | 'normal' };
  hooks?: { pre?: string[]; post?: string[]; on_pre_failure?: 'abort' | 'continue'; timeout_minutes?: number };
  schedule?: { times?: string[]; randomized_delay_minutes?: number; persistent?: boolean; log_file?: string };
  monitoring?: { prometheus_textfile?: string; json_log?: string };
  lock_file?: string;
}

interface ConfigFileRetention {
  keep_last?: number;
  keep_hourly?: number;
  keep_daily?: number;
  keep_weekly?: number;
  keep_monthly?: number;
  keep_yearly?: number;
  keep_within?: string;
  keep_tags?: string[];
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
    /** A command that only reads its settings from the file says it in one line (config/settings.ts). */
    message = `config ${file} is invalid; fix these and run again:\n  - ${problems.join('\n  - ')}`,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

const absPath = (v: string) => (v.startsWith('/') ? null : `must be an absolute path, got ${JSON.stringify(v)}`);
const repoUrl = (v: string) =>
  v.startsWith('/') || v.startsWith('s3://') ? null : `must be an absolute directory path or s3://bucket/prefix, got ${JSON.stringify(v)}`;
const duration = (v: string) => {
  try {
    parseDuration(v);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
};
const hhmm = (v: string) => (/^([01]\d|2[0-3]):[0-5]\d$/.test(v) ? null : `expected a time of day "HH:MM" (24h), got ${JSON.stringify(v)}`);
const str = (extra: Partial<Extract<Spec, { kind: 'string' }>> = {}): Spec => ({ kind: 'string', nonEmpty: true, ...extra });
const count: Spec = { kind: 'number', integer: true, min: 0 };
const mbps: Spec = { kind: 'number', min: 0.01 };
const f = (spec: Spec, doc?: string, required = false): Field => ({ spec, doc, required });

export const CONFIG_SPEC: Spec = {
  kind: 'object',
  fields: {
    repository: f(str({ check: repoUrl }), 'a directory path or s3://bucket/prefix; env SNAPFILL_REPO or --repo override it'),
    s3: f({ kind: 'object', fields: { endpoint: f(str()), region: f(str()), path_style: f({ kind: 'boolean' }) } }),
    credentials: f({
      kind: 'object',
      fields: {
        env_file: f(str({ check: absPath }), 'a file of KEY=VALUE lines, e.g. AWS_ACCESS_KEY_ID=...'),
        profile: f(str(), 'an AWS profile name (AWS_PROFILE)'),
      },
    }),
    catalog: f(str({ check: absPath })),
    password_file: f(
      str({ check: absPath }),
      'a file holding the repository password (first line); SNAPFILL_PASSWORD_FILE or --password-file override it',
    ),
    sources: f({ kind: 'array', of: str({ check: absPath }), nonEmpty: true }, 'the directories to snapshot, e.g. ["/home", "/etc"]', true),
    excludes: f({ kind: 'array', of: str() }),
    accounts_root: f(str({ check: absPath })),
    host: f(str()),
    tags: f({ kind: 'array', of: str() }),
    one_file_system: f({ kind: 'boolean' }),
    retention: f({
      kind: 'object',
      fields: {
        keep_last: f(count),
        keep_hourly: f(count),
        keep_daily: f(count),
        keep_weekly: f(count),
        keep_monthly: f(count),
        keep_yearly: f(count),
        keep_within: f(str({ check: duration })),
        keep_tags: f({ kind: 'array', of: str() }),
      },
    }),
    prune: f({
      kind: 'object',
      fields: {
        enabled: f({ kind: 'boolean' }),
        every_hours: f({ kind: 'number', min: 0 }),
        repack_threshold: f({ kind: 'number', min: 0, max: 1 }),
      },
    }),
    throttle: f({
      kind: 'object',
      fields: {
        limit_read_mbps: f(mbps),
        limit_upload_mbps: f(mbps),
        max_load: f({ kind: 'number', min: 0.01 }),
        io_priority: f({ kind: 'enum', values: ['idle', 'normal'] }),
      },
    }),
    hooks: f({
      kind: 'object',
      fields: {
        pre: f({ kind: 'array', of: str() }),
        post: f({ kind: 'array', of: str() }),
        on_pre_failure: f({ kind: 'enum', values: ['abort', 'continue'] }),
        timeout_minutes: f({ kind: 'number', min: 0.01 }),
      },
    }),
    schedule: f({
      kind: 'object',
      fields: {
        times: f({ kind: 'array', of: str({ check: hhmm }), nonEmpty: true }),
        randomized_delay_minutes: f({ kind: 'number', min: 0 }),
        persistent: f({ kind: 'boolean' }),
        log_file: f(str({ check: absPath }), 'cron only: append the job output here instead of syslog (logger -t snapfill)'),
      },
    }),
    monitoring: f({
      kind: 'object',
      fields: {
        prometheus_textfile: f(str({ check: absPath })),
        json_log: f(str({ check: (v) => (v === 'stderr' ? null : absPath(v)) })),
      },
    }),
    lock_file: f(str({ check: absPath })),
  },
};

/** Where the config is: --config, else SNAPFILL_CONFIG, else /etc/snapfill/config.json. */
export function configPath(flag?: string): string {
  return flag ?? (process.env.SNAPFILL_CONFIG || DEFAULT_CONFIG_FILE);
}

/** Reads and validates; any problem throws ConfigError before anything is changed. */
export function readConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable (permission denied)'
          : `cannot be read (${code ?? (e as Error).message})`;
    throw new ConfigError(file, [
      `the config file ${what}: create it (see "Set up scheduled snapshots" in the README) or pass --config FILE`,
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const before = text.slice(0, Number(m[1]));
      where = ` at line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}`;
    }
    throw new ConfigError(file, [`not valid JSON${where}: ${(e as Error).message}`]);
  }
  const problems: string[] = [];
  validate(raw, CONFIG_SPEC, '', problems);
  const r = raw as ConfigFile;
  if (!problems.length && r.retention && policyIsEmpty(retentionFrom(r.retention))) {
    problems.push(
      'retention: has no keep rule, which would keep nothing; give e.g. "keep_within": "7d", "keep_weekly": 4 (or leave "retention" out for that default)',
    );
  }
  if (problems.length) throw new ConfigError(file, problems);
  return r;
}

/** Just the retention policy of a config file (validated like the rest), for `forget`. */
export function loadRetention(file: string): RetentionPolicy {
  const r = readConfigFile(file);
  return r.retention ? retentionFrom(r.retention) : { ...DEFAULT_POLICY };
}

function retentionFrom(r: ConfigFileRetention): RetentionPolicy {
  return {
    last: r.keep_last,
    hourly: r.keep_hourly,
    daily: r.keep_daily,
    weekly: r.keep_weekly,
    monthly: r.keep_monthly,
    yearly: r.keep_yearly,
    withinMs: r.keep_within ? parseDuration(r.keep_within) : undefined,
    tags: r.keep_tags,
  };
}

export interface ConfigOverrides {
  repo?: string;
  catalog?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  throttle?: ThrottleSettings;
}

/** The keys of `o` whose value is not undefined: a flag that was not given keeps the file's value. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** File, then environment, then flags: one validated Config. */
export function loadConfig(file: string, over: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const r = readConfigFile(file);
  // An empty variable counts as unset (`SNAPFILL_REPO= snapfill run` unsets it for one command).
  const repository = over.repo ?? (env.SNAPFILL_REPO || undefined) ?? r.repository;
  if (!repository) {
    throw new ConfigError(file, ['repository: required (a directory path or s3://bucket/prefix), or set SNAPFILL_REPO / --repo']);
  }
  const t = r.throttle ?? {};
  const h = r.hooks ?? {};
  const sch = r.schedule ?? {};
  const fileThrottle: ThrottleSettings = {
    limitReadMBps: t.limit_read_mbps,
    limitUploadMBps: t.limit_upload_mbps,
    maxLoad: t.max_load,
    ioPriority: t.io_priority,
  };
  const throttle: ThrottleSettings = { ...fileThrottle, ...definedOnly(over.throttle ?? {}) };
  const cfg: Config = {
    file: path.resolve(file),
    repository,
    s3: {
      endpoint: over.s3Endpoint ?? (env.SNAPFILL_S3_ENDPOINT || undefined) ?? r.s3?.endpoint,
      region: over.s3Region ?? (env.SNAPFILL_S3_REGION || undefined) ?? r.s3?.region,
      pathStyle: over.s3PathStyle ?? (env.SNAPFILL_S3_PATH_STYLE ? env.SNAPFILL_S3_PATH_STYLE === '1' : r.s3?.path_style),
    },
    credentials: { envFile: r.credentials?.env_file, profile: r.credentials?.profile },
    catalog: over.catalog ?? (env.SNAPFILL_CATALOG || undefined) ?? r.catalog,
    sources: r.sources,
    excludes: r.excludes ?? [],
    accountsRoot: r.accounts_root ?? '/home',
    host: r.host,
    tags: r.tags ?? [],
    oneFileSystem: r.one_file_system ?? false,
    retention: r.retention ? retentionFrom(r.retention) : { ...DEFAULT_POLICY },
    prune: {
      enabled: r.prune?.enabled ?? true,
      everyHours: r.prune?.every_hours ?? 24,
      repackThreshold: r.prune?.repack_threshold ?? 0.25,
    },
    throttle,
    hooks: { pre: h.pre ?? [], post: h.post ?? [], onPreFailure: h.on_pre_failure ?? 'abort', timeoutMinutes: h.timeout_minutes ?? 60 },
    schedule: {
      times: sch.times ?? DEFAULT_TIMES,
      randomizedDelayMinutes: sch.randomized_delay_minutes ?? 60,
      persistent: sch.persistent ?? true,
      logFile: sch.log_file,
    },
    monitoring: { prometheusTextfile: r.monitoring?.prometheus_textfile, jsonLog: r.monitoring?.json_log },
    lockFile: r.lock_file ?? path.join(cacheDir(), 'run.lock'),
  };
  return cfg;
}

/**
 * Makes the configured credentials visible to the S3 client. Variables already set in the
 * environment win (env overrides the file). A named env file that cannot be read fails closed.
 */
export function applyCredentials(cfg: Pick<Config, 'file' | 'credentials'>, env: NodeJS.ProcessEnv = process.env): void {
  if (cfg.credentials.profile && !env.AWS_PROFILE) env.AWS_PROFILE = cfg.credentials.profile;
  const file = cfg.credentials.envFile;
  if (!file) return;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(cfg.file, [
      `credentials.env_file: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    ]);
  }
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(l);
    if (!m) {
      problems.push(`credentials.env_file: ${file} line ${i + 1}: expected KEY=VALUE`);
      return;
    }
    const v = m[2].replace(/^(['"])(.*)\1$/, '$2');
    if (env[m[1]] === undefined) env[m[1]] = v;
  });
  if (problems.length) throw new ConfigError(cfg.file, problems);
}
