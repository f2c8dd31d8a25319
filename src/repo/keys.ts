import { createHash, randomBytes, scryptSync } from 'node:crypto';
import * as os from 'node:os';
import type { ObjectStore } from '../store/store.js';
import { ObjectNotFoundError } from '../store/store.js';
import { KEY_BYTES, seal, unseal } from '../pack/crypto.js';
import { scryptParallel } from '../pack/scrypt.js';
import { KEY_PREFIX, idOfKey, keyObjectKey } from '../pack/keys.js';

/**
 * Key objects (format version 2): `keys/<id>` wraps the repository's random master key with a
 * key derived from one password by scrypt. Several key objects may wrap the same master key
 * (one per admin or per host); changing a password writes a new key object and removes the
 * old one, the data never changes. The id is the SHA-256 of the object's bytes, so a damaged
 * key object is told apart from a wrong password.
 */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface KeyObject {
  v: 2;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64, 32 random bytes */
  salt: string;
  /** base64 of nonce || AES-256-GCM(master key) || tag, under scrypt(password, salt, 32, N, r, p) */
  data: string;
  created: string;
  host: string;
  username: string;
}

export interface KeyInfo extends KeyObject {
  id: string;
}

/**
 * Test-only: SNAPFILL_INSECURE_TEST_KDF=1 makes new key objects use the cheapest scrypt
 * parameters so test suites can init hundreds of repositories. The parameters are stored in
 * the key object like any others (readers always use the stored ones); never set it in production.
 */
export const TEST_KDF_ENV = 'SNAPFILL_INSECURE_TEST_KDF';
const TEST_PARAMS: ScryptParams = { N: 1024, r: 8, p: 1 };

/** Limits a reader accepts: a hostile key object must not make scrypt allocate gigabytes. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 64;
const MAX_MEM = 1024 * 1024 * 1024 + 1024 * 1024;

function derive(password: string, salt: Buffer, prm: ScryptParams): Buffer {
  return scryptSync(Buffer.from(password, 'utf8'), salt, KEY_BYTES, {
    N: prm.N,
    r: prm.r,
    p: prm.p,
    maxmem: 256 * prm.N * prm.r + 1024 * 1024,
  });
}

/** scrypt parameters that take about `targetMs` here: N grows (memory-hard) up to 2^17, then p. */
export function tuneScrypt(targetMs = 500, env: NodeJS.ProcessEnv = process.env): ScryptParams {
  if (env[TEST_KDF_ENV] === '1') return { ...TEST_PARAMS };
  const probe: ScryptParams = { N: 1 << 14, r: 8, p: 1 };
  const salt = randomBytes(16);
  const t0 = process.hrtime.bigint();
  derive('probe', salt, probe);
  const ms = Math.max(1, Number(process.hrtime.bigint() - t0) / 1e6);
  let factor = targetMs / ms;
  let N = probe.N;
  while (factor >= 2 && N < 1 << 17) {
    N *= 2;
    factor /= 2;
  }
  const p = Math.max(1, Math.min(16, Math.round(factor)));
  return { N: Math.max(N, 1 << 15), r: 8, p };
}

/** A new key object wrapping `master` under `password`; returns its id and bytes. */
export function makeKeyObject(master: Buffer, password: string, prm: ScryptParams): { id: string; bytes: Buffer; obj: KeyObject } {
  const salt = randomBytes(32);
  const obj: KeyObject = {
    v: 2,
    kdf: 'scrypt',
    N: prm.N,
    r: prm.r,
    p: prm.p,
    salt: salt.toString('base64'),
    data: seal(derive(password, salt, prm), master).toString('base64'),
    created: new Date().toISOString(),
    host: os.hostname(),
    username: os.userInfo().username,
  };
  const bytes = Buffer.from(JSON.stringify(obj, null, 1) + '\n');
  return { id: createHash('sha256').update(bytes).digest('hex'), bytes, obj };
}

export class KeyDamagedError extends Error {}

/** Parses and checks a stored key object (its id must be the SHA-256 of its bytes). */
export function parseKeyObject(id: string, bytes: Buffer): KeyObject {
  if (createHash('sha256').update(bytes).digest('hex') !== id)
    throw new KeyDamagedError(`key object keys/${id} is damaged (hash mismatch)`);
  let o: KeyObject;
  try {
    o = JSON.parse(bytes.toString('utf8')) as KeyObject;
  } catch {
    throw new KeyDamagedError(`key object keys/${id} is not valid JSON`);
  }
  const int = (v: unknown, max: number) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max;
  if (o.v !== 2 || o.kdf !== 'scrypt' || !int(o.N, MAX_N) || (o.N & (o.N - 1)) !== 0 || !int(o.r, MAX_R) || !int(o.p, MAX_P))
    throw new KeyDamagedError(`key object keys/${id} has unsupported or unsafe parameters`);
  if (256 * o.N * o.r > MAX_MEM) throw new KeyDamagedError(`key object keys/${id} asks for too much memory`);
  if (typeof o.salt !== 'string' || typeof o.data !== 'string') throw new KeyDamagedError(`key object keys/${id} is incomplete`);
  return o;
}

/** The master key `password` unwraps from `o`, or null (wrong password). */
export function unwrapKey(o: KeyObject, password: string): Buffer | null {
  return unwrapWith(o, derive(password, Buffer.from(o.salt, 'base64'), o));
}

/**
 * The same, with scrypt's lanes on libuv's thread pool, side by side (pack/scrypt.ts): the calling
 * thread goes on (opening the catalog, starting worker threads) while the key is derived.
 */
export async function unwrapKeyAsync(o: KeyObject, password: string): Promise<Buffer | null> {
  return unwrapWith(o, await scryptParallel(Buffer.from(password, 'utf8'), Buffer.from(o.salt, 'base64'), KEY_BYTES, o));
}

function unwrapWith(o: KeyObject, key: Buffer): Buffer | null {
  const master = unseal(key, Buffer.from(o.data, 'base64'));
  return master && master.length === KEY_BYTES ? master : null;
}

export async function listKeyIds(store: ObjectStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of store.list(KEY_PREFIX)) ids.push(idOfKey(KEY_PREFIX, o.key));
  return ids.sort();
}

export async function loadKeyObject(store: ObjectStore, id: string): Promise<KeyObject> {
  return parseKeyObject(id, await store.get(keyObjectKey(id)));
}

export async function listKeys(store: ObjectStore): Promise<KeyInfo[]> {
  const out: KeyInfo[] = [];
  for (const id of await listKeyIds(store)) out.push({ ...(await loadKeyObject(store, id)), id });
  return out;
}

export class WrongPasswordError extends Error {
  constructor(location: string, from?: string) {
    super(`wrong password for the repository at ${location} (no key object accepts it${from ? `; password from ${from}` : ''})`);
    this.name = 'WrongPasswordError';
  }
}

/**
 * Tries `password` against every key object; returns the master key and the id of the key
 * object that opened it. A damaged key object is skipped while another may still open the
 * repository; when none opens it, the error names the damage (not just "wrong password").
 */
export async function openMasterKey(store: ObjectStore, password: string, from?: string): Promise<{ master: Buffer; keyId: string }> {
  const ids = await listKeyIds(store);
  if (!ids.length)
    throw new Error(`the repository at ${store.location} is encrypted but has no key objects (keys/ is empty or unreadable)`);
  const damage: string[] = [];
  for (const id of ids) {
    let o: KeyObject;
    try {
      o = await loadKeyObject(store, id);
    } catch (e) {
      if (e instanceof KeyDamagedError || e instanceof ObjectNotFoundError) {
        damage.push(e.message);
        continue;
      }
      throw e;
    }
    const master = await unwrapKeyAsync(o, password);
    if (master) return { master, keyId: id };
  }
  if (damage.length) throw new Error(`wrong password, or damaged key objects: ${damage.join('; ')}`);
  throw new WrongPasswordError(store.location, from);
}

/** Stores a key object (never overwrites one). */
export async function saveKeyObject(store: ObjectStore, k: { id: string; bytes: Buffer }): Promise<void> {
  await store.put(keyObjectKey(k.id), k.bytes, { ifAbsent: true });
}
