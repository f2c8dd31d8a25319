import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RepoContext } from '../catalog/context.js';
import { lightFromVersion, type BlobLocationRow, type LightEntry, type SnapshotRow, type VersionRow } from '../catalog/catalog.js';
import { makeMatcher } from '../util/globs.js';
import { IdNames } from '../util/ids.js';
import { components, display, fromUser, isSafeName, isUnder, normalizeAbs, toFs, type RawPath } from '../util/rawpath.js';
import { blobIdOf } from '../pack/blobid.js';
import { openBlob } from '../pack/codec.js';
import { WorkerPool } from '../livefs/pool.js';
import { workerUrl } from '../util/workerurl.js';
import { RestorePlan, type ContentRow, type LinkRow } from './plan.js';
import { SafeRoot, procPath, splitParent, UnsafePathError } from '../livefs/safepath.js';
import type { ChunkRef, ClassifyResult, ItemResult, RestoreMode, WireEntry, WorkerInit, WorkerReply, WorkerRequest, WriteItem } from './protocol.js';
import type { PathError } from '../snapshot/snapshotter.js';
import { utimesSeconds } from '../livefs/times.js';
import { SPARSE_BLOCK, writeAt } from '../livefs/sparse.js';
import { RestoreJournal, sweepTemps, TMP_PREFIX } from './journal.js';

export type { RestoreMode } from './protocol.js';

export interface RestoreOptions {
  snapshot: SnapshotRow;
  /** Paths inside the snapshot to restore (default: the snapshot's source paths). */
  paths?: string[];
  /** Restore under this directory instead of in place. */
  target?: string;
  mode?: RestoreMode;
  include?: string[];
  exclude?: string[];
  account?: string;
  accountsRoot?: string;
  ownerByName?: boolean;
  delete?: boolean;
  dryRun?: boolean;
  overwriteNewer?: boolean;
  threads?: number;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreProgress {
  phase: 'plan' | 'content' | 'links' | 'delete' | 'metadata';
  entries: number;
  files: number;
  bytes: number;
  plannedFiles: number;
  plannedBytes: number;
}

export interface RestoreAction {
  path: string;
  action: string;
  bytes?: number;
  reason?: string;
}

export interface RestoreResult {
  snapshot_id: string;
  mode: RestoreMode;
  target: string;
  dry_run: boolean;
  files_restored: number;
  dirs_created: number;
  files_skipped: number;
  skipped_newer: string[];
  metadata_fixed: number;
  deleted: number;
  bytes_written: number;
  planned: Record<string, { count: number; bytes: number }>;
  errors: PathError[];
  actions?: RestoreAction[];
  duration_s: number;
}

const BATCH = 256;
/** A NUL byte, `//`, `/./`, `/../`, or a trailing `/`, `/.`, `/..`. */
const UNSAFE_PATH = /\0|\/\/|\/\.\.?(\/|$)|\/$/;
const MAX_LISTED_SKIPS = 10000;

/** Puts back what is missing or differs, from a snapshot, in parallel. See docs/OPERATIONS.md. */
export async function restore(session: RepoContext, o: RestoreOptions): Promise<RestoreResult> {
  return new Restorer(session, o).run();
}

interface PackData {
  plain: Map<string, Buffer>;
  bad: Set<string>;
  error?: string;
}

class Restorer {
  private readonly mode: RestoreMode;
  private readonly snap: SnapshotRow;
  private readonly targetRoot: RawPath;
  private readonly ids = new IdNames();
  private readonly chown = process.getuid?.() === 0;
  private readonly excluded: (p: RawPath) => boolean;
  private readonly included: ((p: RawPath) => boolean) | null;
  private readonly res: RestoreResult;
  private readonly createdDirs = new Set<RawPath>();
  private readonly touchedDirs = new Set<RawPath>();
  private readonly rootsInScope: RawPath[] = [];
  private journal: RestoreJournal | null = null;
  private plan!: RestorePlan;
  private pool!: WorkerPool<WorkerRequest, WorkerReply>;
  private progress: RestoreProgress = { phase: 'plan', entries: 0, files: 0, bytes: 0, plannedFiles: 0, plannedBytes: 0 };
  private lastProgress = 0;
  private readonly started = Date.now();
  /**
   * Local repositories are restored "direct": workers compare, read the pack files and write in
   * one step (snapshots pack blobs in walk order, so walk order reads packs nearly in order).
   * Remote stores go through the plan: sorted by pack, each pack fetched once in large ranges.
   */
  private readonly direct: boolean;

  constructor(private readonly s: RepoContext, private readonly o: RestoreOptions) {
    this.mode = o.mode ?? 'missing';
    if (!['missing', 'changed', 'checksum', 'metadata', 'all'].includes(this.mode)) {
      throw new Error(`unknown --mode "${this.mode}": use missing, changed, checksum, metadata or all`);
    }
    this.snap = o.snapshot;
    this.direct = typeof s.repo.store.localPath === 'function' && process.env.SNAPFILL_RESTORE_STRATEGY !== 'planned';
    this.targetRoot = o.target ? normalizeAbs(fromUser(path.resolve(o.target))) : '/';
    this.excluded = makeMatcher(o.exclude ?? []);
    this.included = o.include?.length ? makeMatcher(o.include) : null;
    this.res = {
      snapshot_id: this.snap.id, mode: this.mode, target: display(this.targetRoot), dry_run: !!o.dryRun,
      files_restored: 0, dirs_created: 0, files_skipped: 0, skipped_newer: [], metadata_fixed: 0, deleted: 0, bytes_written: 0,
      planned: {}, errors: [], duration_s: 0,
    };
    if (o.dryRun) this.res.actions = [];
  }

  /** The snapshot paths to restore, validated. */
  private roots(): RawPath[] {
    let roots: RawPath[] = [];
    for (const p of this.o.paths ?? []) {
      if (!p) throw new Error('empty path argument');
      roots.push(normalizeAbs(fromUser(p.startsWith('/') ? p : '/' + p)));
    }
    if (this.o.account !== undefined) {
      if (!/^[A-Za-z0-9._-]+$/.test(this.o.account) || this.o.account === '.' || this.o.account === '..') {
        throw new Error(`invalid account name "${this.o.account}"`);
      }
      roots.push(normalizeAbs(fromUser(`${this.o.accountsRoot ?? '/home'}/${this.o.account}`)));
    }
    const scoped = roots.length > 0 || !!this.included;
    if (this.o.delete) {
      if (!scoped) throw new Error('--delete needs a scope: name paths, --include patterns or --account (refusing to delete across the whole snapshot)');
      if (roots.includes('/')) throw new Error('--delete refuses the root directory "/" as a scope');
    }
    if (!roots.length) roots = [...this.snap.paths];
    for (const r of roots) {
      if (r !== '/' && !this.s.catalog.entry(this.snap, r)) {
        throw new Error(`${display(r)} is not in snapshot ${this.snap.id.slice(0, 8)}${this.o.account ? ' (check --account / --accounts-root)' : ''}`);
      }
    }
    roots.sort();
    return roots.filter((r) => !roots.some((q) => q !== r && isUnder(r, q)));
  }

  async run(): Promise<RestoreResult> {
    const roots = this.roots();
    // (issue 11) Entries the catalog import refused (unsafe names) or lost (unreadable tree blob):
    // everything else is restored, these are named and the restore exits 3. --delete would take a
    // lost listing for an empty directory and delete the live contents: refused outright.
    for (const r of roots) {
      for (const d of this.s.catalog.damagedUnder(this.snap, r)) {
        if (this.o.delete && this.s.catalog.dirLost(this.snap, d.path) !== undefined) {
          throw new Error(`--delete refused: the snapshot lost the listing of ${display(d.path)} (${d.message}); restore without --delete, or that path from another snapshot`);
        }
        this.error(d.path, d.message);
      }
    }
    this.rootsInScope.push(...roots);
    if (this.o.target && !this.o.dryRun) fs.mkdirSync(toFs(this.targetRoot), { recursive: true, mode: 0o700 });
    if (this.o.target && this.o.dryRun && !fs.existsSync(toFs(this.targetRoot))) {
      // Nothing exists there yet: every entry is missing. Plan against an empty scratch root.
    }
    const rootForWorkers = this.o.target && this.o.dryRun && !fs.existsSync(toFs(this.targetRoot)) ? fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-dry-')) : this.targetRoot;
    this.plan = new RestorePlan(path.join(path.dirname(this.s.catalog.file), `restore-plan-${process.pid}.db`));
    const journal = new RestoreJournal(path.dirname(this.s.catalog.file), this.targetRoot);
    if (!this.o.dryRun) this.journal = journal;
    const interrupted = !this.o.dryRun && journal.hadInterruptedRun();
    if (interrupted) {
      // Directories an interrupted run created still carry their temporary 0700 state: finish them.
      for (const rel of journal.leftovers()) this.createdDirs.add(rel);
    }
    if (!this.o.dryRun) journal.open();
    // umask 0 for the duration: files are created with their snapshot mode directly (one chmod less per file).
    const oldUmask = this.o.dryRun ? null : process.umask(0);
    const init: WorkerInit = {
      root: rootForWorkers, mode: this.mode, dryRun: !!this.o.dryRun, overwriteNewer: !!this.o.overwriteNewer,
      snapshotTimeNs: (BigInt(Date.parse(this.snap.time)) * 1000000n).toString(), chown: this.chown,
      umask: oldUmask === null ? process.umask() : 0, journalDir: this.o.dryRun ? null : journal.dir, repoDir: this.direct ? this.s.repo.store.localPath!('') : null,
    };
    this.pool = await WorkerPool.start<WorkerRequest, WorkerReply>(workerUrl(import.meta.url, 'worker.js'),
      Math.max(1, this.o.threads ?? Math.min(4, Math.max(2, os.cpus().length))), init, { depth: 4, label: 'restore worker' });
    const t0 = Date.now();
    const debug = (m: string) => { if (process.env.SNAPFILL_DEBUG) process.stderr.write(`[restore ${((Date.now() - t0) / 1000).toFixed(2)}s] ${m}\n`); };
    try {
      debug('workers started');
      await this.classifyAll(roots);
      debug('classified');
      const c = this.plan.counts();
      this.progress.plannedFiles = c.content + c.links;
      this.progress.plannedBytes = c.bytes;
      if (!this.o.dryRun) {
        await this.relinkGroupFirsts();
        await this.writeContent();
        debug('content written');
        await this.writeLinks();
        debug('links written');
        if (this.o.delete) this.deleteExtras(roots);
        if (interrupted) {
          const sweep = new SafeRoot(this.targetRoot);
          try { for (const r of roots) sweepTemps(sweep, this.relOf(r)); } finally { sweep.close(); }
        }
        for (const rel of this.createdDirs) this.plan.addDir(rel, null);
        for (const rel of this.touchedDirs) this.plan.addDir(rel, null);
        await this.setDirMetadata();
        journal.finish();
        debug('dir metadata set');
      } else if (this.o.delete) {
        this.deleteExtras(roots);
      }
    } finally {
      if (oldUmask !== null) process.umask(oldUmask);
      await this.pool.close();
      this.plan.close();
      if (rootForWorkers !== this.targetRoot) fs.rmSync(rootForWorkers, { recursive: true, force: true });
    }
    this.res.duration_s = (Date.now() - this.started) / 1000;
    return this.res;
  }

  private relOf(p: RawPath): RawPath {
    return p.slice(1);
  }

  /**
   * Directories workers created get their metadata at the end. So do existing directories they
   * wrote into, in the modes that restore metadata: a write moved their mtime to "now".
   */
  private noteDirs(reply: { createdDirs: string[]; touchedDirs: string[] }): void {
    for (const d of reply.createdDirs) this.createdDirs.add(d);
    if (this.mode === 'missing' || this.mode === 'metadata') return;
    for (const d of reply.touchedDirs) this.touchedDirs.add(d);
  }

  private wire(v: LightEntry, anc = false): WireEntry {
    let uid = v.uid;
    let gid = v.gid;
    if (this.o.ownerByName) {
      uid = this.ids.uidOf(v.user) ?? uid;
      gid = this.ids.gidOf(v.group) ?? gid;
    }
    return {
      rel: this.relOf(v.path), t: v.type, m: v.mode, u: uid, g: gid, s: v.size, mt: v.mtimeNs, fp: v.fp,
      tg: v.target, rd: v.rdev, nl: v.nlink, content: v.content !== null, ...(anc ? { anc: true } : {}),
    };
  }

  private error(p: RawPath, message: string): void {
    this.res.errors.push({ path: display(p), message });
  }

  private note(kind: string, bytes = 0): void {
    const e = (this.res.planned[kind] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += bytes;
  }

  private tick(force = false): void {
    if (!this.o.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastProgress < 250) return;
    this.lastProgress = now;
    this.o.onProgress({ ...this.progress });
  }

  /** Rejects names a damaged or hostile repository could use to escape the target. */
  private safePath(p: RawPath): boolean {
    // Absolute, no NUL, no empty, "." or ".." component, no trailing slash (one scan, no splitting).
    return p.length > 1 && p.charCodeAt(0) === 47 && !UNSAFE_PATH.test(p);
  }

  // ---- phase 1: compare the snapshot with the live tree -------------------------------

  private async classifyAll(roots: RawPath[]): Promise<void> {
    const inflight: Promise<void>[] = [];
    // Entries are routed by subtree (the first component below the restore root), so the worker
    // that creates a directory also gets its contents and knows they cannot exist yet.
    const batches: { v: LightEntry; w: WireEntry; loc?: BlobLocationRow | null }[][] = Array.from({ length: this.pool.size }, () => []);
    let rootDepth = 0;
    const route = (p: RawPath): number => {
      let i = 0;
      for (let d = 0; d <= rootDepth; d++) {
        i = p.indexOf('/', i + 1);
        if (i < 0) return 0;
      }
      const end = p.indexOf('/', i + 1);
      const key = end < 0 ? p.slice(i + 1) : p.slice(i + 1, end);
      let h = 0;
      for (let k = 0; k < key.length; k++) h = (h * 31 + key.charCodeAt(k)) | 0;
      return Math.abs(h) % this.pool.size;
    };
    const flush = async (wi: number) => {
      const items = batches[wi];
      if (!items.length) return;
      batches[wi] = [];
      const msg = this.direct
        ? { op: 'restore' as const, items: items.map((x) => ({ e: x.w, chunks: this.chunksOf(x.v, x.loc) })) }
        : { op: 'classify' as const, items: items.map((x) => x.w) };
      const p = this.pool.submit(msg, [], wi).then((reply) => {
        reply.results.forEach((r, i) => this.onClassified(items[i].v, items[i].w, r as ClassifyResult));
        this.noteDirs(reply);
      });
      inflight.push(p);
      if (inflight.length > this.pool.size * 4) await Promise.all(inflight.splice(0, inflight.length - this.pool.size * 2));
    };
    const add = async (v: LightEntry, anc = false, loc?: BlobLocationRow | null) => {
      const wi = anc ? 0 : route(v.path);
      batches[wi].push({ v, w: this.wire(v, anc), loc });
      this.progress.entries++;
      if (batches[wi].length >= BATCH) await flush(wi);
    };
    for (const root of roots) {
      rootDepth = root === '/' ? 0 : components(root).length;
      // Ancestors first: created when missing so the tree has the snapshot's owners and modes there too.
      let anc = '';
      for (const c of components(root).slice(0, -1)) {
        anc += '/' + c;
        const v = this.s.catalog.entry(this.snap, anc);
        if (v && v.type === 'dir') await add(lightFromVersion(v, null), true);
      }
      let skipBelow: RawPath | null = null;
      for (const v of this.s.catalog.walkForRestore(this.snap, root)) {
        if (skipBelow !== null && isUnder(v.path, skipBelow)) continue;
        skipBelow = null;
        if (!this.safePath(v.path) || (v.type === 'hardlink' && (v.target === null || !this.safePath(v.target)))) {
          this.error(v.path, 'unsafe path in the snapshot (.., NUL, or an invalid name); refused');
          if (v.type === 'dir') skipBelow = v.path;
          continue;
        }
        if (this.excluded(v.path)) {
          if (v.type === 'dir') skipBelow = v.path;
          continue;
        }
        if (this.included && v.type !== 'dir' && !this.included(v.path)) continue;
        if (this.included && v.type === 'dir') continue; // created on demand for included files
        await add(v, false, v.loc);
        this.tick();
      }
      // Ancestors and a root's entries must be in place before the next root's.
      for (let wi = 0; wi < batches.length; wi++) await flush(wi);
    }
    await Promise.all(inflight);
  }

  /** Chunk locations for the direct strategy; null when a chunk is not in the index. */
  private chunksOf(v: LightEntry, first: BlobLocationRow | null | undefined): ChunkRef[] | null {
    if (!v.content || (v.type !== 'file' && v.type !== 'hardlink')) return null;
    const out: ChunkRef[] = [];
    for (let i = 0; i < v.content.length; i++) {
      const loc = i === 0 && first ? first : this.s.catalog.blobLocation(v.content[i]);
      if (!loc) return null;
      out.push({ pack: loc.pack, off: loc.offset, len: loc.length, id: v.content[i] });
    }
    return out;
  }

  private onClassified(v: LightEntry, w: WireEntry, r: ClassifyResult): void {
    const bytes = v.type === 'file' || v.type === 'hardlink' ? v.size : 0;
    const action = (a: string, reason?: string) => {
      this.res.actions?.push({ path: display(v.path), action: a, ...(bytes && a.startsWith('restore') ? { bytes } : {}), ...(reason ? { reason } : {}) });
    };
    switch (r.c) {
      case 'written':
        this.note(r.why ? 'replace (extra hard links)' : 'restore', v.size);
        this.res.files_restored++;
        this.res.bytes_written += v.size;
        this.progress.files++;
        this.progress.bytes += v.size;
        return;
      case 'content': {
        const blobs = v.content ?? [];
        const loc = blobs.length === 1 ? this.s.catalog.blobLocation(blobs[0]) : undefined;
        if (blobs.length === 1 && !loc) {
          this.error(v.path, `content blob ${blobs[0].slice(0, 12)} is not in the repository index`);
          return;
        }
        this.plan.addContent(w.rel, w, blobs, loc, !!r.replace, !!r.fresh);
        // A name holding someone else's inode (extra hard links) gets a fresh copy; the plan says so.
        this.note(r.why ? 'replace (extra hard links)' : r.replace ? 'replace' : 'restore', v.size);
        action(r.replace ? 'restore (replace)' : 'restore', r.why);
        if (this.o.dryRun) this.res.files_restored++;
        return;
      }
      case 'link':
        this.planLink(v, w, r);
        return;
      case 'created':
        this.note(v.type === 'dir' ? 'mkdir' : `create ${v.type}`);
        action(v.type === 'dir' ? 'mkdir' : `restore (${v.type})`);
        if (v.type === 'dir') {
          this.res.dirs_created++;
          if (!this.o.dryRun) this.plan.addDir(w.rel, w);
        } else this.res.files_restored++;
        return;
      case 'meta':
        this.note('metadata');
        action('metadata');
        this.res.metadata_fixed++;
        return;
      case 'dirmeta':
        this.note('metadata');
        action('metadata');
        this.res.metadata_fixed++;
        if (!this.o.dryRun) this.plan.addDir(w.rel, w);
        return;
      case 'error':
        this.error(v.path, r.msg ?? 'failed');
        action('error', r.msg);
        return;
      default: {
        if (v.type !== 'dir') this.res.files_skipped++;
        // A surviving name of a hard-link group: a missing first name can be linked back to it.
        if (v.type === 'hardlink' && v.target !== null && (r.c === 'skip-present' || r.c === 'skip-same') && !this.o.dryRun) {
          this.plan.addSurvivor(this.relOf(v.target), w.rel, w);
        }
        this.note(r.c);
        if (r.c === 'skip-newer' && this.res.skipped_newer.length < MAX_LISTED_SKIPS) this.res.skipped_newer.push(display(v.path));
        if (r.c === 'skip-nocontent') this.error(v.path, r.msg ?? 'no content in the snapshot');
        if (this.res.actions && r.c !== 'skip-present' && r.c !== 'skip-same') action(r.c, r.msg);
        else if (this.res.actions && v.type !== 'dir') action(r.c);
      }
    }
  }

  /**
   * A missing hardlink name. Its target must be a file entry of this snapshot (a hostile
   * snapshot may name any path, /etc/shadow included): anything else is refused as unsafe.
   * A target inside the restored scope is linked once it is restored or verified; one outside
   * the scope is never touched, this name gets a copy of the content of its own.
   */
  private planLink(v: LightEntry, w: WireEntry, r: ClassifyResult): void {
    const target = v.target;
    const first = target !== null && target !== v.path ? this.s.catalog.entry(this.snap, target) : undefined;
    if (!first || first.type !== 'file') {
      this.error(v.path, `unsafe hardlink in the snapshot: its target ${display(target ?? '(none)')} is not a file of this snapshot; refused`);
      return;
    }
    const inScope = this.rootsInScope.some((root) => isUnder(target!, root)) && !this.excluded(target!) && (!this.included || this.included(target!));
    if (!inScope) {
      this.onClassified(v, { ...w, t: 'file' }, { c: 'content', replace: r.replace });
      return;
    }
    const src = this.wire(lightFromVersion(first, null));
    this.plan.addLink(w.rel, this.relOf(target!), w, v.content ?? [], !!r.replace, { s: src.s, mt: src.mt, u: src.u, g: src.g, nl: src.nl });
    this.note('hardlink');
    this.res.actions?.push({ path: display(v.path), action: 'restore (hardlink)' });
    if (this.o.dryRun) this.res.files_restored++;
  }

  /**
   * The first name of a hard-link group is missing but another name survived: link it back to
   * that survivor (when the survivor still matches the snapshot) instead of writing a copy, so
   * the group is one inode again. Whatever cannot be linked is written as usual next.
   */
  private async relinkGroupFirsts(): Promise<void> {
    const jobs = [...this.plan.groupFirstsWithSurvivor()];
    for (let i = 0; i < jobs.length; i += BATCH) {
      const batch = jobs.slice(i, i + BATCH);
      const reply = await this.pool.submit({ op: 'link', items: batch.map((j) => ({
        rel: j.rel, first: j.survivor, e: j.e, replace: j.replace,
        source: { s: j.survivorE.s, mt: j.survivorE.mt, u: j.survivorE.u, g: j.survivorE.g, nl: j.survivorE.nl },
      })) });
      this.noteDirs(reply);
      reply.results.forEach((res, k) => {
        const it = res as ItemResult;
        if (it.ok && !it.skipped) {
          this.plan.dropContent(batch[k].id);
          this.res.files_restored++;
          this.progress.files++;
        }
      });
    }
  }

  // ---- phase 2: file content, pack by pack ----------------------------------------------

  private async writeContent(): Promise<void> {
    this.progress.phase = 'content';
    const inflight: Promise<void>[] = [];
    let group: ContentRow[] = [];
    // Read-ahead: the next packs are fetched while the current one is written, so a remote
    // store's first-byte latency overlaps with work. Bounded to READ_AHEAD packs in memory.
    const READ_AHEAD = 2;
    const fetched: { rows: ContentRow[]; data: Promise<PackData> }[] = [];
    const drainOne = async () => {
      const g = fetched.shift()!;
      await this.writePackGroup(g.rows, await g.data, inflight);
      while (inflight.length > this.pool.size * 6) await inflight.shift();
    };
    const flushGroup = async () => {
      if (!group.length) return;
      const rows = group;
      group = [];
      const data = this.fetchPackGroup(rows);
      data.catch(() => undefined); // handled when drained
      fetched.push({ rows, data });
      if (fetched.length > READ_AHEAD) await drainOne();
    };
    for (const row of this.plan.singleBlobFiles()) {
      if (group.length && group[0].pack !== row.pack) await flushGroup();
      group.push(row);
    }
    await flushGroup();
    while (fetched.length) await drainOne();
    await Promise.all(inflight);
    // Files of several chunks (large files) and empty files: written here, chunk by chunk.
    const main = new SafeRoot(this.targetRoot, (rel) => this.createdDirs.add(rel), (rel) => this.journal?.append(rel));
    try {
      for (const row of this.plan.otherFiles()) await this.writeLargeFile(main, row);
    } finally {
      main.close();
    }
  }

  /** Fetches what a pack group needs and decodes each distinct blob once (decompress + verify). */
  private async fetchPackGroup(rows: ContentRow[]): Promise<PackData> {
    const pack = rows[0].pack!;
    // Distinct blobs in offset order; read spans that cover them, coalescing small gaps.
    const blobs = new Map<string, { off: number; len: number }>();
    for (const r of rows) blobs.set(r.blobs[0], { off: r.off, len: r.len });
    const list = [...blobs.entries()].sort((a, b) => a[1].off - b[1].off);
    const spans: { off: number; end: number }[] = [];
    for (const [, b] of list) {
      const last = spans[spans.length - 1];
      if (last && b.off - last.end <= 256 * 1024) last.end = Math.max(last.end, b.off + b.len);
      else spans.push({ off: b.off, end: b.off + b.len });
    }
    // Fetch the spans, then decode (decompress + verify) each distinct blob once into a shared
    // buffer that the workers write from.
    const plain = new Map<string, Buffer>();
    const bad = new Set<string>();
    try {
      for (const sp of spans) {
        const data = await this.s.repo.store.getRange(`data/${pack.slice(0, 2)}/${pack}`, sp.off, sp.end - sp.off);
        for (const [id, b] of list) {
          if (b.off < sp.off || b.off + b.len > sp.end || plain.has(id)) continue;
          const p = openBlob(data.subarray(b.off - sp.off, b.off - sp.off + b.len), id);
          if (p === null) bad.add(id);
          else plain.set(id, p);
        }
      }
    } catch (e) {
      return { error: (e as Error).message, plain, bad };
    }
    return { plain, bad };
  }

  private async writePackGroup(rows: ContentRow[], data: PackData, inflight: Promise<void>[]): Promise<void> {
    const pack = rows[0].pack!;
    const { plain, bad } = data;
    if (data.error) {
      for (const r of rows) this.error('/' + r.rel, `cannot read pack ${pack.slice(0, 12)}: ${data.error}`);
      return;
    }
    let total = 0;
    for (const p of plain.values()) total += p.length;
    const sab = new SharedArrayBuffer(Math.max(1, total));
    const view = Buffer.from(sab);
    const where = new Map<string, { at: number; len: number }>();
    let pos = 0;
    for (const [id, p] of plain) {
      p.copy(view, pos);
      where.set(id, { at: pos, len: p.length });
      pos += p.length;
    }
    let batch: WriteItem[] = [];
    let batchRows: ContentRow[] = [];
    const send = () => {
      if (!batch.length) return;
      const items = batch;
      const rs = batchRows;
      batch = [];
      batchRows = [];
      inflight.push(this.pool.submit({ op: 'write', items }).then((reply) => {
        reply.results.forEach((res, i) => this.onWritten(rs[i], res as ItemResult));
        this.noteDirs(reply);
      }));
    };
    for (const r of rows) {
      if (bad.has(r.blobs[0])) {
        this.error('/' + r.rel, `content blob ${r.blobs[0].slice(0, 12)} in pack ${pack.slice(0, 12)} is corrupt; file not restored`);
        continue;
      }
      const w = where.get(r.blobs[0]);
      if (!w) { this.error('/' + r.rel, `content blob ${r.blobs[0].slice(0, 12)} missing from pack ${pack.slice(0, 12)}`); continue; }
      batch.push({ rel: r.rel, e: r.e, sab, off: w.at, len: w.len, replace: r.replace, fresh: r.fresh });
      batchRows.push(r);
      if (batch.length >= 128) {
        send();
        while (inflight.length > this.pool.size * 6) await inflight.shift();
      }
    }
    send();
  }

  private onWritten(row: ContentRow, r: ItemResult): void {
    if (!r.ok) this.error('/' + row.rel, r.msg ?? 'write failed');
    else if (r.skipped) {
      this.res.files_skipped++;
      if (r.msg?.includes('after the snapshot') && this.res.skipped_newer.length < MAX_LISTED_SKIPS) this.res.skipped_newer.push(display('/' + row.rel));
    } else {
      this.res.files_restored++;
      this.res.bytes_written += row.e.s;
      this.progress.files++;
      this.progress.bytes += row.e.s;
      this.tick();
    }
  }

  /** Writes a file chunk by chunk in this thread (big files are few; their chunks are large). */
  private async writeLargeFile(root: SafeRoot, row: ContentRow): Promise<void> {
    const p = '/' + row.rel;
    const [parentRel, name] = splitParent(row.rel);
    let dfd: number | null;
    try {
      dfd = root.dirFd(parentRel, true);
    } catch (e) {
      this.error(p, e instanceof UnsafePathError ? e.message : String((e as Error).message));
      return;
    }
    if (dfd === null) { this.error(p, 'parent directory missing'); return; }
    const tmp = `${TMP_PREFIX}${name.length > 200 ? blobIdOf(Buffer.from(name, 'latin1')) : name}`;
    const tp = procPath(dfd, tmp);
    try { fs.unlinkSync(tp); } catch { /* none */ }
    const fd = fs.openSync(tp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    let ok = false;
    try {
      let pos = 0;
      for (const id of row.blobs) {
        const loc = this.s.catalog.blobLocation(id);
        if (!loc) throw new Error(`content blob ${id.slice(0, 12)} is not in the repository index`);
        const data = await this.s.repo.readBlob(loc.pack, loc.offset, loc.length, id);
        writeAt(fd, data, pos);
        pos += data.length;
      }
      if (pos > SPARSE_BLOCK) fs.ftruncateSync(fd, pos);
      if (this.chown) fs.fchownSync(fd, row.e.u, row.e.g);
      fs.fchmodSync(fd, row.e.m);
      const t = utimesSeconds(row.e.mt);
      fs.futimesSync(fd, t, t);
      ok = true;
    } catch (e) {
      this.error(p, `${(e as Error).message}; file not restored`);
    } finally {
      fs.closeSync(fd);
      if (!ok) fs.rmSync(tp, { force: true });
    }
    if (!ok) return;
    if (!this.createdDirs.has(parentRel) && this.mode !== 'missing' && this.mode !== 'metadata') this.touchedDirs.add(parentRel);
    const dest = procPath(dfd, name);
    if (row.replace) {
      if (!this.o.overwriteNewer) {
        const st = fs.lstatSync(dest, { bigint: true, throwIfNoEntry: false });
        if (st && st.mtimeNs > BigInt(Date.parse(this.snap.time)) * 1000000n) {
          fs.unlinkSync(tp);
          this.onWritten(row, { ok: true, skipped: true, msg: 'modified after the snapshot' });
          return;
        }
      }
      fs.renameSync(tp, dest);
    } else {
      try {
        fs.linkSync(tp, dest);
      } catch (e) {
        fs.unlinkSync(tp);
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') { this.onWritten(row, { ok: true, skipped: true }); return; }
        this.error(p, String((e as Error).message));
        return;
      }
      fs.unlinkSync(tp);
    }
    this.onWritten(row, { ok: true });
  }

  // ---- phase 3: hardlinks ---------------------------------------------------------------

  private async writeLinks(): Promise<void> {
    this.progress.phase = 'links';
    const fallback: ContentRow[] = [];
    const inflight: Promise<void>[] = [];
    let batch: LinkRow[] = [];
    const send = () => {
      const items = batch;
      batch = [];
      inflight.push(this.pool.submit({ op: 'link', items: items.map((x) => ({ rel: x.rel, first: x.first, e: x.e, replace: x.replace, source: x.source })) }).then((reply) => {
        this.noteDirs(reply);
        reply.results.forEach((r, i) => {
          const res = r as ItemResult;
          const it = items[i];
          if (res.ok && !res.skipped) { this.res.files_restored++; this.progress.files++; }
          else if (res.ok) this.res.files_skipped++;
          // The first path of the inode was not restored: write this one as a file of its own.
          else if (it.blobs.length) fallback.push({ rel: it.rel, e: { ...it.e, t: 'file' }, blobs: it.blobs, pack: null, off: 0, len: 0, replace: it.replace, fresh: false });
          else this.error('/' + it.rel, res.msg ?? 'hardlink failed');
        });
      }));
    };
    for (const l of this.plan.links()) {
      batch.push(l);
      if (batch.length >= BATCH) send();
    }
    if (batch.length) send();
    await Promise.all(inflight);
    if (fallback.length) {
      const main = new SafeRoot(this.targetRoot, (rel) => this.createdDirs.add(rel), (rel) => this.journal?.append(rel));
      try {
        for (const row of fallback) await this.writeLargeFile(main, row);
      } finally {
        main.close();
      }
    }
  }

  // ---- phase 4: --delete ------------------------------------------------------------------

  /** Removes live entries the snapshot does not have, strictly inside the restore roots. */
  private deleteExtras(roots: RawPath[]): void {
    this.progress.phase = 'delete';
    const safe = new SafeRoot(this.targetRoot);
    try {
      for (const r of roots) {
        const v = this.s.catalog.entry(this.snap, r);
        if (v?.type === 'dir') this.deleteIn(safe, r);
      }
    } finally {
      safe.close();
    }
  }

  private deleteIn(safe: SafeRoot, dir: RawPath): void {
    const rel = this.relOf(dir);
    let fd: number | null;
    try {
      fd = safe.dirFd(rel, false);
    } catch (e) {
      this.error(dir, (e as Error).message);
      return;
    }
    if (fd === null) return;
    const want = new Map<RawPath, VersionRow>();
    for (const v of this.s.catalog.listDir(this.snap, dir)) want.set(v.name, v);
    const live = (fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' }) as Buffer[]).map((b) => b.toString('latin1'));
    for (const name of live) {
      const p = dir === '/' ? '/' + name : dir + '/' + name;
      const snapV = want.get(name);
      const st = fs.lstatSync(procPath(fd, name), { throwIfNoEntry: false });
      if (!st) continue;
      if (snapV) {
        if (snapV.type === 'dir' && st.isDirectory() && !this.excluded(p)) this.deleteIn(safe, p);
        continue;
      }
      if (this.excluded(p)) continue;
      if (this.included && (st.isDirectory() || !this.included(p))) continue;
      this.res.actions?.push({ path: display(p), action: 'delete' });
      this.note('delete');
      if (this.o.dryRun) { this.res.deleted++; continue; }
      try {
        this.res.deleted += removeTree(fd, name);
        if (this.mode !== 'missing' && this.mode !== 'metadata') this.touchedDirs.add(rel);
      } catch (e) {
        this.error(p, `cannot delete: ${(e as Error).message}`);
      }
    }
  }

  // ---- phase 5: directory metadata, children before parents -------------------------------

  private async setDirMetadata(): Promise<void> {
    this.progress.phase = 'metadata';
    const inflight: Promise<void>[] = [];
    let batch: WireEntry[] = [];
    const send = () => {
      const items = batch;
      batch = [];
      inflight.push(this.pool.submit({ op: 'dirmeta', items }).then((reply) => {
        reply.results.forEach((r, i) => {
          const res = r as ItemResult;
          if (!res.ok) this.error('/' + items[i].rel, res.msg ?? 'cannot set directory metadata');
        });
      }));
    };
    // Setting a child's metadata never changes its parent's mtime, so batches may run in parallel;
    // only entry creation does, and that is finished before this phase.
    for (const d of this.plan.dirsDeepestFirst()) {
      let e = d.e;
      if (!e) {
        const v = this.s.catalog.entry(this.snap, '/' + d.rel);
        if (!v || v.type !== 'dir') continue;
        e = this.wire(lightFromVersion(v, null));
      }
      batch.push(e);
      if (batch.length >= BATCH) send();
    }
    if (batch.length) send();
    await Promise.all(inflight);
  }
}

/** rm -rf without following symlinks: directories are opened with O_NOFOLLOW. Returns entries removed. */
function removeTree(parentFd: number, name: RawPath): number {
  const p = procPath(parentFd, name);
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) {
    fs.unlinkSync(p);
    return 1;
  }
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  let n = 0;
  try {
    for (const child of fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' }) as Buffer[]) n += removeTree(fd, child.toString('latin1'));
  } finally {
    fs.closeSync(fd);
  }
  fs.rmdirSync(p);
  return n + 1;
}
