import type { Catalog, SnapshotRow, VersionRow } from './catalog.js';
import { display, join, type RawPath } from '../util/rawpath.js';

/**
 * Finds an entry by a path typed by a human or handed over by the kernel as Unicode. Bytes
 * that are not valid UTF-8 arrive as U+FFFD (command-line arguments and FUSE paths are
 * decoded as UTF-8), so a direct lookup misses such names; they are then matched component
 * by component against the directory listings' display names. `raw` is the path converted
 * with fromUser (UTF-8 bytes of the Unicode string).
 */
export function lookupEntry(catalog: Catalog, snap: SnapshotRow, raw: RawPath, under: RawPath = '/'): VersionRow | undefined {
  const direct = catalog.entry(snap, raw);
  if (direct || !raw.includes('\xef\xbf\xbd')) return direct; // U+FFFD in UTF-8 bytes
  const rel = under === '/' ? raw : raw.slice(under.length);
  let dir = under;
  let found: VersionRow | undefined;
  for (const part of rel.split('/').filter((x) => x !== '')) {
    found = catalog.entry(snap, join(dir, part));
    if (!found) {
      const want = display(part);
      for (const v of catalog.listDir(snap, dir))
        if (display(v.name) === want) {
          found = v;
          break;
        }
    }
    if (!found) return undefined;
    dir = found.path;
  }
  return found;
}
