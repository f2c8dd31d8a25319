import type { Repository } from '../repo/repository.js';
import type { Catalog } from './catalog.js';
import type { PackIndex } from '../pack/format.js';
import type { BlobId } from '../pack/blobid.js';
import { ObjectNotFoundError } from '../store/store.js';
import { thisHost } from '../util/host.js';
import type { PackIndexInput } from './blobindex.js';

/**
 * Which pack indexes a catalog lists (issue 15): tree pack indexes lie below the tag of the host
 * whose snapshot wrote them (`index/<tag>/<id>`, docs/FORMAT.md), so a routine sync lists and
 * reads only the tags of the hosts its catalog follows, plus every flat index (all data packs,
 * and the tree packs of older releases). Everything here decides or widens that set.
 */

/**
 * Tags of other hosts' tree packs this catalog holds because an import found a tree there
 * (TreeIndexSearch below): listed by every later sync like a followed host's, so the catalog's
 * packs are always within what its sync lists (else a sync would take them for pruned ones).
 */
const EXTRA_TAGS_META = 'tree_index_tags';

function extraTags(catalog: Catalog): string[] {
  return JSON.parse(catalog.getMeta(EXTRA_TAGS_META) ?? '[]') as string[];
}

function rememberTag(catalog: Catalog, tag: string): void {
  const tags = extraTags(catalog);
  if (!tags.includes(tag)) catalog.setMeta(EXTRA_TAGS_META, JSON.stringify([...tags, tag].sort()));
}

/**
 * The host tags whose tree pack indexes a catalog lists: this host's, each followed host's
 * (`follow` adds to the hosts the catalog has lineages of), and the tags remembered above.
 */
export async function catalogIndexTags(repo: Repository, catalog: Catalog, follow: Iterable<string> = []): Promise<Set<string>> {
  const hosts = catalog.followedHosts();
  hosts.add(thisHost());
  for (const h of follow) hosts.add(h);
  const tags = new Set(extraTags(catalog));
  for (const h of hosts) tags.add(await repo.hostTag(h));
  return tags;
}

/**
 * The pack indexes a catalog's sync lists, pack id -> host tag (null: flat or timed), and the
 * newest data index stamp listed: every data index (with `since`, only those stamped at or after
 * it: Repository.listPackIndexesBelow) and the tree indexes below `catalogIndexTags`; with `all`,
 * every index of every host (a catalog that follows every host).
 */
export async function listCatalogPackIndexes(
  repo: Repository,
  catalog: Catalog,
  follow: Iterable<string> = [],
  all = false,
  since: number | null = null,
): Promise<{ packs: Map<string, string | null>; newestStampMs: number | null }> {
  if (!all) return repo.listPackIndexesBelow(await catalogIndexTags(repo, catalog, follow), since);
  const packs = new Map<string, string | null>();
  for await (const id of repo.listPackIndexes()) packs.set(id, repo.indexTagOf(id) ?? null);
  return { packs, newestStampMs: null };
}

/** Index objects fetched at once by the search below (each is a request on S3). */
const SEARCH_WINDOW = 16;

/**
 * The last resort of a tree import (catalog/sync.ts readTree): a tree blob found neither in the
 * catalog nor through the hints of flat tree packs may lie in a tree pack below ANOTHER host's
 * tag than the snapshot's (a host that had imported that host's trees reused a directory
 * listing stored there, e.g. the empty directory's). The first miss lists every index and reads
 * every tagged tree index the catalog lacks (once per import run); a pack found to hold a
 * wanted tree is added as full rows and its tag is listed by later syncs. A tree found nowhere
 * is damage, reported as before: the search fails closed, never guessing.
 */
export class TreeIndexSearch {
  /** Tree blob id -> the not-yet-added index holding it, over every tagged tree index the catalog lacked. */
  private byBlob: Map<BlobId, PackIndex> | null = null;
  /** Pack indexes read by the search (on-demand reads, reported by the caller). */
  indexesRead = 0;

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
  ) {}

  /** Whether the catalog now has tree blob `treeId` (added from another tag's tree pack). */
  async find(treeId: BlobId): Promise<boolean> {
    this.byBlob ??= await this.readAll();
    const idx = this.byBlob.get(treeId);
    if (!idx) return false;
    const near: PackIndexInput = { ...idx, form: 'near' };
    this.catalog.addPackIndex(near);
    const tag = this.repo.indexTagOf(idx.pack);
    if (tag) rememberTag(this.catalog, tag);
    for (const b of idx.blobs) if (this.byBlob.get(b.id) === idx) this.byBlob.delete(b.id);
    return true;
  }

  private async readAll(): Promise<Map<BlobId, PackIndex>> {
    const wanted: string[] = [];
    for await (const id of this.repo.listPackIndexes()) if (this.repo.indexTagOf(id) && !this.catalog.hasPack(id)) wanted.push(id);
    const out = new Map<BlobId, PackIndex>();
    for (let i = 0; i < wanted.length; i += SEARCH_WINDOW) {
      const got = await Promise.all(
        wanted.slice(i, i + SEARCH_WINDOW).map(async (id) => {
          try {
            return await this.repo.loadPackIndex(id);
          } catch (e) {
            if (e instanceof ObjectNotFoundError) return null; // pruned meanwhile
            throw e; // unreadable: the import fails rather than call the tree lost
          }
        }),
      );
      for (const idx of got) {
        if (!idx) continue;
        this.indexesRead++;
        if (idx.type !== 'tree') continue;
        for (const b of idx.blobs) if (!out.has(b.id)) out.set(b.id, idx);
      }
    }
    return out;
  }
}
