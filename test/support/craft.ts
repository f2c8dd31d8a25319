import * as fs from 'node:fs';
import { LocalStore } from '../../src/store/local.js';
import { Repository } from '../../src/repo/repository.js';
import { decodeTree, encodeTree, type Entry } from '../../src/repo/tree.js';
import { blobIdOf } from '../../src/pack/blobid.js';
import { openBlob } from '../../src/pack/codec.js';
import { packKey } from '../../src/pack/format.js';
import { testPassword, TEST_PASSWORD } from '../helpers.js';
import { gunzipSync } from 'node:zlib';
import { parseKeyObject, unwrapKey } from '../../src/repo/keys.js';
import { deriveSecrets, unseal } from '../../src/pack/crypto.js';

/**
 * Crafted and damaged repositories, built and read through the project's own writer and
 * reader (Repository.newPackWriter / encodeTree / saveSnapshot / loadPackIndex), so tests keep
 * working when the format changes.
 */
export function entry(name: string, type: Entry['type'], extra: Partial<Entry> = {}): Entry {
  return {
    name,
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    user: 'root',
    group: 'root',
    size: 0,
    mtime: 1_700_000_000_000_000_000n,
    ctime: 1_700_000_000_000_000_000n,
    ino: 1n,
    dev: 1n,
    nlink: 1,
    rdev: 0,
    target: null,
    fp: null,
    content: null,
    tree: null,
    flags: 0,
    ...extra,
  };
}

export function fileEntry(name: string, content: Buffer, extra: Partial<Entry> = {}): Entry {
  return entry(name, 'file', { size: content.length, content: [blobIdOf(content)], fp: '0000000000000000', ...extra });
}

/**
 * Writes a snapshot whose source `/<source>` (default `/data`; may be a deeper absolute path) holds `children`, with the given
 * file contents. Subtrees named in `sub` are attached to the directory entries of that name.
 */
export async function craftSnapshot(
  repoDir: string,
  children: Entry[],
  files: Record<string, Buffer>,
  sub: Record<string, Entry[]> = {},
  opts: { source?: string; host?: string } = {},
): Promise<string> {
  const source = opts.source ?? 'data';
  const repo = await Repository.open(new LocalStore(repoDir), testPassword);
  const data = repo.newPackWriter('data');
  for (const b of Object.values(files)) if (!data.has(blobIdOf(b))) data.add(blobIdOf(b), b);
  const trees = repo.newPackWriter('tree');
  const addTree = (entries: Entry[]) => {
    const bytes = encodeTree(entries);
    const id = blobIdOf(bytes);
    if (!trees.has(id)) trees.add(id, bytes);
    return id;
  };
  const kids = children.map((e) => (e.type === 'dir' ? { ...e, tree: addTree(sub[e.name] ?? []) } : e));
  // The source may be several components deep (`/tmp/x/data`): one directory entry per level.
  let root = addTree(kids);
  const parts = source.split('/').filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) root = addTree([entry(parts[i], 'dir', { tree: root })]);
  if (data.count) await repo.savePack(data);
  await repo.savePack(trees);
  return repo.saveSnapshot({
    v: 1,
    time: new Date().toISOString(),
    host: opts.host ?? 'evil',
    username: 'root',
    paths: ['/' + parts.join('/')],
    tags: [],
    excludes: [],
    tree: root,
    parent: null,
    summary: {},
    program: 'crafted',
  });
}

/** Where a blob is stored: its pack file on disk and its place in it, from the repository's pack indexes. */
export async function locateBlob(repoDir: string, id: string): Promise<{ pack: string; file: string; offset: number; length: number }> {
  const repo = await Repository.open(new LocalStore(repoDir), testPassword);
  for await (const packId of repo.listPackIndexes()) {
    const b = (await repo.loadPackIndex(packId)).blobs.find((x) => x.id === id);
    if (b) return { pack: packId, file: repo.store.localPath!(packKey(packId)), offset: b.offset, length: b.length };
  }
  throw new Error(`blob ${id} is in no pack index`);
}

/** The tree blob id of directory `dir` (absolute) in snapshot `snapId`, by walking its trees. */
export async function treeIdOf(repoDir: string, snapId: string, dir: string): Promise<string> {
  const repo = await Repository.open(new LocalStore(repoDir), testPassword);
  let id = (await repo.loadSnapshot(snapId)).tree;
  for (const part of dir.split('/').filter(Boolean)) {
    const at = await locateBlob(repoDir, id);
    const e = decodeTree(await repo.readBlob(at.pack, at.offset, at.length, id)).find((x) => x.name === part);
    if (!e?.tree) throw new Error(`${dir}: no directory ${part} in snapshot ${snapId}`);
    id = e.tree;
  }
  return id;
}

/**
 * Flips one byte of a stored blob in its pack file, choosing a byte whose flip really breaks
 * the blob (inside a deflate stream some bits change nothing). Returns where it was stored.
 */
export async function corruptBlob(repoDir: string, id: string): Promise<{ pack: string; offset: number; length: number }> {
  const at = await locateBlob(repoDir, id);
  const key = (await Repository.open(new LocalStore(repoDir), testPassword)).blobKey();
  const pack = fs.readFileSync(at.file);
  for (let k = Math.floor(at.length / 2); k < at.length; k++) {
    const stored = Buffer.from(pack.subarray(at.offset, at.offset + at.length));
    stored[k] ^= 0x40;
    if (openBlob(stored, id, key) !== null) continue;
    const fd = fs.openSync(at.file, 'r+');
    fs.writeSync(fd, stored, k, 1, at.offset + k);
    fs.closeSync(fd);
    return at;
  }
  throw new Error(`no single-byte flip breaks blob ${id}`);
}

/**
 * The data key of a test repository, synchronously (null when it is not encrypted): tests that
 * read pack indexes from disk to find where a blob lies (and then damage it) decrypt them with it.
 */
export function dataKeySync(repoDir: string, password = TEST_PASSWORD): Buffer | null {
  const config = JSON.parse(fs.readFileSync(`${repoDir}/config`, 'utf8'));
  if (config.version < 2 || config.encryption !== 'aes-256-gcm') return null;
  for (const id of fs.readdirSync(`${repoDir}/keys`)) {
    const master = unwrapKey(parseKeyObject(id, fs.readFileSync(`${repoDir}/keys/${id}`)), password);
    if (master) return deriveSecrets(master, config.id).dataKey;
  }
  throw new Error(`no key of ${repoDir} opens with the test password`);
}

/** A stored object's plaintext (pack index, snapshot record): unsealed and gunzipped as needed. */
export function openObjectSync(repoDir: string, raw: Buffer): Buffer {
  const key = dataKeySync(repoDir);
  const plain = key ? unseal(key, raw) : raw;
  if (!plain) throw new Error('object fails authentication');
  return plain[0] === 0x1f && plain[1] === 0x8b ? gunzipSync(plain) : plain;
}
