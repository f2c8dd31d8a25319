import type { Repository } from '../repo/repository.js';
import type { Catalog } from './catalog.js';
import type { BlobId } from '../pack/blobid.js';
import type { PackIndex } from '../pack/format.js';
import { filterMayHold } from '../pack/blobfilter.js';
import { ObjectNotFoundError } from '../store/store.js';
import type { UnreadPack } from './blobindex.js';

/**
 * The data packs a lazy sync left unread (issue 15; catalog table unread_packs, SyncOptions.lazyData),
 * read on demand: wherever a snapshot would take a blob as absent (dedup of a new blob, the
 * prune guard's "only marked packs hold it"), the unread packs whose blob filter may hold it
 * are read first, as compact rows, exactly as the sync would have read them. One primitive for
 * every such question, so no decision is ever made on what a filter has not ruled out.
 */
export class UnreadPacks {
  /** Still unread, with filters; loaded at the first question (after the sync). */
  private list: UnreadPack[] | null = null;
  /** Indexes read on demand so far. */
  read = 0;

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
  ) {}

  /**
   * Reads every unread pack whose filter may hold one of `ids`, stopping early once `enough()`
   * says so (checked after each pack). A pack gone meanwhile (pruned) is forgotten. Returns how
   * many indexes it read.
   */
  async readFor(ids: Iterable<BlobId>, enough: () => boolean = () => false): Promise<number> {
    this.list ??= this.catalog.unreadPacks();
    if (!this.list.length) return 0;
    const wanted = new Set<string>();
    for (const id of ids) {
      const probe = this.repo.blobProbe(id);
      for (const u of this.list) if (!wanted.has(u.pack) && filterMayHold(u.filter, probe)) wanted.add(u.pack);
      if (wanted.size === this.list.length) break;
    }
    let n = 0;
    for (const pack of wanted) {
      const key = this.list.find((u) => u.pack === pack)?.key;
      // Where the sync that recorded it listed it (a resumed listing may not list it again).
      if (key) this.repo.knowIndexKey(pack, key);
      this.list = this.list.filter((u) => u.pack !== pack);
      let idx: PackIndex;
      try {
        idx = await this.repo.loadPackIndex(pack);
      } catch (e) {
        if (!(e instanceof ObjectNotFoundError)) throw e;
        this.catalog.removeUnreadPack(pack);
        continue;
      }
      this.catalog.addPackIndex({ ...idx, form: 'far' });
      n++;
      this.read++;
      if (enough()) break;
    }
    return n;
  }
}
