// Snapshot record keys (issue 15): host-tagged `snapshots/<tag>/<id>` and the flat layout of
// older releases; a shallow listing sees the flat ones only.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostIndexPrefix, hostSnapshotPrefix, indexKey, parseIndexKey, parseSnapshotKey, snapshotKey } from '../../src/pack/keys.js';
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
