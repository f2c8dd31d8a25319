// Snapshot record keys (issue 15): host-tagged `snapshots/<tag>/<id>` and the flat layout of
// older releases; a shallow listing sees the flat ones only.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  deletionCursor,
  deletionKey,
  hostIndexPrefix,
  hostSnapshotPrefix,
  indexKey,
  parseDeletionKey,
  parseIndexKey,
  parseSnapshotKey,
  snapshotKey,
  timedIndexCursor,
  timedIndexKey,
} from '../../src/pack/keys.js';
import { LocalStore } from '../../src/store/local.js';
import { deriveSecrets } from '../../src/pack/crypto.js';

const id = 'ab'.repeat(32);
const tag = '0123456789abcdef';

describe('snapshot record keys', () => {
  it('both layouts parse to the same id; other keys are no record', () => {
    expect(snapshotKey(id)).toBe(`snapshots/${id}`);
    expect(snapshotKey(id, tag)).toBe(`snapshots/${tag}/${id}`);
    expect(hostSnapshotPrefix(tag)).toBe(`snapshots/${tag}/`);
    expect(parseSnapshotKey(snapshotKey(id))).toEqual({ id, hostTag: null });
    expect(parseSnapshotKey(snapshotKey(id, tag))).toEqual({ id, hostTag: tag });
    for (const k of [`snapshots/${tag}/x/${id}`, `snapshots/nothex0123456789/${id}`, `snapshots/${tag}/`, `index/${id}`, 'snapshots/'])
      expect(parseSnapshotKey(k), k).toBeNull();
  });

  it('pack index keys: flat (data packs, older tree packs) and below a host tag (tree packs) parse to the same pack id', () => {
    expect(indexKey(id)).toBe(`index/${id}`);
    expect(indexKey(id, tag)).toBe(`index/${tag}/${id}`);
    expect(hostIndexPrefix(tag)).toBe(`index/${tag}/`);
    expect(parseIndexKey(indexKey(id))).toEqual({ id, hostTag: null, filter: null });
    expect(parseIndexKey(indexKey(id, tag))).toEqual({ id, hostTag: tag, filter: null });
    // A small data pack's index names a blob filter after its id (issue 15); a tree pack's never does.
    expect(indexKey(id, null, 'CAAw_-')).toBe(`index/${id}.CAAw_-`);
    expect(parseIndexKey(indexKey(id, null, 'CAAw_-'))).toEqual({ id, hostTag: null, filter: 'CAAw_-' });
    expect(indexKey(id, tag, 'CAAw')).toBe(`index/${tag}/${id}`);
    for (const k of [`index/${tag}/x/${id}`, `index/nothex0123456789/${id}`, `index/${tag}/`, `snapshots/${id}`, 'index/'])
      expect(parseIndexKey(k), k).toBeNull();
  });

  it('timed data index keys and deletion record keys (issue 15): stamped with the store time, sorting as the times do', () => {
    const t = Date.UTC(2026, 11, 2, 14, 5, 9, 750);
    expect(timedIndexKey(t, id, null)).toBe(`index/t/20261202/140509-${id}`);
    expect(timedIndexKey(t, id, 'CAAw_-')).toBe(`index/t/20261202/140509-${id}.CAAw_-`);
    expect(parseIndexKey(timedIndexKey(t, id, 'CAAw_-'))).toEqual({ id, hostTag: null, filter: 'CAAw_-', stampMs: t - 750 });
    expect(parseIndexKey(timedIndexKey(t, id, null))).toEqual({ id, hostTag: null, filter: null, stampMs: t - 750 });
    // The cursor of a time sorts before every key stamped in that second or later, after every earlier one.
    expect(timedIndexCursor(t) < timedIndexKey(t, id, null)).toBe(true);
    expect(timedIndexCursor(t) < timedIndexKey(t + 1000, '00'.repeat(32), null)).toBe(true);
    expect(timedIndexCursor(t) > timedIndexKey(t - 1000, 'ff'.repeat(32), 'x')).toBe(true);
    expect(timedIndexCursor(t) > timedIndexKey(Date.UTC(2026, 11, 1, 23, 59, 59), 'ff'.repeat(32), null)).toBe(true);
    expect(deletionKey(t, 'cd'.repeat(32))).toBe(`deleted/20261202140509-${'cd'.repeat(32)}`);
    expect(parseDeletionKey(deletionKey(t, 'cd'.repeat(32)))).toEqual({ ms: t - 750, id: 'cd'.repeat(32) });
    expect(deletionCursor(t) < deletionKey(t, '00')).toBe(true);
    expect(deletionCursor(t) > deletionKey(t - 1000, 'ff')).toBe(true);
    for (const k of ['index/t/2026120/140509-x', `index/t/20261202/140509${id}`, `index/t/20261302/140509-${id}`, 'index/t/'])
      expect(parseIndexKey(k), k).toBeNull();
    for (const k of ['deleted/2026120214050-ab', 'deleted/20261202140509', 'deleted/x']) expect(parseDeletionKey(k), k).toBeNull();
  });

  it('a local store lists from a cursor (startAfter), passing over whole folders before it', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-keys-'));
    try {
      const st = new LocalStore(root);
      const at = (d: number, h: number, s: number) => Date.UTC(2026, 10, d, h, 0, s); // November
      const [k29, k30a, k30b, k31] = [
        timedIndexKey(at(29, 12, 3), 'cd'.repeat(32), null),
        timedIndexKey(at(30, 12, 1), id, null),
        timedIndexKey(at(30, 12, 2), id, 'f'),
        timedIndexKey(at(31, 0, 0), 'ef'.repeat(32), null), // 1 December
      ];
      for (const k of [k29, k30a, k30b, k31]) await st.put(k, Buffer.from('i'));
      const list = async (after?: string) => {
        const out: string[] = [];
        for await (const o of st.list('index/t/', after === undefined ? {} : { startAfter: after })) out.push(o.key);
        return out.sort();
      };
      expect(await list()).toEqual([k29, k30a, k30b, k31]);
      expect(await list(timedIndexCursor(at(30, 12, 2)))).toEqual([k30b, k31]);
      expect(await list(timedIndexCursor(at(30, 0, 0)))).toEqual([k30a, k30b, k31]);
      expect(await list(timedIndexCursor(at(31, 0, 0)))).toEqual([k31]);
      expect(await list(timedIndexCursor(at(32, 0, 0)))).toEqual([]);
      expect(await list(k30a)).toEqual([k30b, k31]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('the host tag key differs per repository and with encryption', () => {
    const plain = deriveSecrets(null, 'repo-1').hostTagKey;
    expect(plain).toHaveLength(32);
    expect(deriveSecrets(null, 'repo-2').hostTagKey.equals(plain)).toBe(false);
    expect(deriveSecrets(Buffer.alloc(32, 7), 'repo-1').hostTagKey.equals(plain)).toBe(false);
    const s = deriveSecrets(Buffer.alloc(32, 7), 'repo-1');
    expect(s.hostTagKey.equals(s.dataKey!)).toBe(false);
  });

  it('a shallow listing of a local store does not descend below the prefix', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-keys-'));
    try {
      const st = new LocalStore(root);
      await st.put(snapshotKey(id), Buffer.from('flat'));
      await st.put(snapshotKey('cd'.repeat(32), tag), Buffer.from('tagged'));
      const keys = async (prefix: string, shallow: boolean) => {
        const out: string[] = [];
        for await (const o of st.list(prefix, { shallow })) out.push(o.key);
        return out.sort();
      };
      expect(await keys('snapshots/', true)).toEqual([snapshotKey(id)]);
      expect(await keys('snapshots/', false)).toEqual([snapshotKey(id), snapshotKey('cd'.repeat(32), tag)].sort());
      expect(await keys(hostSnapshotPrefix(tag), true)).toEqual([snapshotKey('cd'.repeat(32), tag)]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
