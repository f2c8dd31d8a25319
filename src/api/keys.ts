import { Repository } from '../repo/repository.js';
import { listKeys, makeKeyObject, saveKeyObject, tuneScrypt, type KeyInfo } from '../repo/keys.js';
import { keyObjectKey } from '../pack/keys.js';
import { RepoLock } from '../repo/lock.js';
import { newPassword } from '../config/password.js';
import { openSettingsStore, repoPassword, type OpenOptions } from './session.js';

/**
 * Key management of an encrypted repository (`snapfill key ...`): every key object wraps the
 * same master key, so adding, removing or changing a password never touches the data.
 */
export interface KeyOptions extends OpenOptions {
  /** A file holding the NEW password (key add, key passwd); else a prompt on a terminal. */
  newPasswordFile?: string;
}

export interface KeyListEntry {
  id: string;
  current: boolean;
  created: string;
  host: string;
  username: string;
  kdf: string;
}

async function withRepo<T>(opts: OpenOptions, fn: (repo: Repository) => Promise<T>): Promise<T> {
  const { settings, store } = await openSettingsStore(opts);
  try {
    const repo = await Repository.open(store, repoPassword(opts, settings));
    if (!repo.encrypted) throw new Error(`the repository at ${store.location} is not encrypted: it has no keys`);
    return await fn(repo);
  } finally {
    await store.close?.();
  }
}

function entry(k: KeyInfo, current: string | null): KeyListEntry {
  return {
    id: k.id,
    current: k.id === current,
    created: k.created,
    host: k.host,
    username: k.username,
    kdf: `scrypt N=${k.N} r=${k.r} p=${k.p}`,
  };
}

export function listRepoKeys(opts: OpenOptions = {}): Promise<KeyListEntry[]> {
  return withRepo(opts, async (repo) => (await listKeys(repo.store)).map((k) => entry(k, repo.keyId)));
}

async function askNew(opts: KeyOptions): Promise<string> {
  const pw = await newPassword({ newPasswordFile: opts.newPasswordFile }, undefined);
  if (pw === undefined) throw new Error('no new password: give --new-password-file, or run on a terminal');
  return pw;
}

/** Adds a key object for another password; returns its id. */
export function addRepoKey(opts: KeyOptions = {}): Promise<string> {
  return withRepo(opts, async (repo) => {
    const pw = await askNew(opts);
    const k = makeKeyObject(repo.masterKey()!, pw, tuneScrypt());
    await saveKeyObject(repo.store, k);
    return k.id;
  });
}

/** The key objects whose id starts with `prefix` (exactly one, or an error). */
async function oneKey(repo: Repository, prefix: string): Promise<KeyInfo[]> {
  const keys = await listKeys(repo.store);
  const hit = keys.filter((k) => k.id.startsWith(prefix));
  if (!prefix || !hit.length) throw new Error(`no key ${prefix} in the repository (snapfill key list shows them)`);
  if (hit.length > 1) throw new Error(`key prefix ${prefix} is ambiguous: give more characters`);
  return keys;
}

/** Removes a key object; refuses the last one and the one this command was opened with. */
export function removeRepoKey(opts: OpenOptions, prefix: string): Promise<string> {
  return withRepo(opts, async (repo) => {
    // Exclusive: two removals at once could otherwise remove the last two keys between them.
    const lock = await RepoLock.acquire(repo.store, 'key remove', true);
    try {
      const keys = await oneKey(repo, prefix);
      const k = keys.find((x) => x.id.startsWith(prefix))!;
      if (k.id === repo.keyId)
        throw new Error(`key ${k.id.slice(0, 8)} is the one your password opens: remove it with another key's password`);
      if (keys.length < 2) throw new Error('refusing to remove the last key: the repository could never be read again');
      await repo.store.delete(keyObjectKey(k.id));
      return k.id;
    } finally {
      await lock.release();
    }
  });
}

/** Replaces the key object in use by one for a new password; returns the new key id. */
export function changeRepoPassword(opts: KeyOptions = {}): Promise<{ removed: string; added: string }> {
  return withRepo(opts, async (repo) => {
    const pw = await askNew(opts);
    const lock = await RepoLock.acquire(repo.store, 'key passwd', true);
    try {
      const k = makeKeyObject(repo.masterKey()!, pw, tuneScrypt());
      // The new key is stored before the old one goes: a crash in between leaves both passwords working.
      await saveKeyObject(repo.store, k);
      await repo.store.delete(keyObjectKey(repo.keyId!));
      return { removed: repo.keyId!, added: k.id };
    } finally {
      await lock.release();
    }
  });
}
