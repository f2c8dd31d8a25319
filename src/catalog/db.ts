import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { migrate, refuseNewer, SCHEMA_VERSION } from './migrations.js';
import { OptionError } from '../util/errors.js';

/**
 * One connection to a catalog file: opening it (pragmas, schema migrations, the repository-id
 * check), cached prepared statements, streaming reads, and batched write transactions. The
 * blob index, the reader and the writer all run their SQL through one of these; nothing
 * outside src/catalog sees it.
 */
export class CatalogDb {
  private readonly stmts = new Map<string, Database.Statement>();
  private txOpen = false;
  private txWrites = 0;

  private constructor(
    readonly file: string,
    private readonly conn: Database.Database,
    readonly readOnly: boolean,
  ) {}

  /** Opens (creating if needed) and migrates the catalog of repository `repoId`. */
  static open(file: string, repoId: string): CatalogDb {
    // 0700 / 0600: the catalog holds every file name of every snapshot in the clear (issue 14).
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const created = !fs.existsSync(file);
    const conn = new Database(file);
    if (created) {
      try {
        fs.chmodSync(file, 0o600);
      } catch {
        // a file another process created meanwhile: its own mode stands
      }
    }
    try {
      conn.pragma('journal_mode = WAL');
      conn.pragma('synchronous = NORMAL');
      // 8 MiB per connection (issue 17, peak RSS): pages beyond it come from the OS page cache.
      // 32 MiB was ~30 MiB of a 1M-file snapshot's peak; a 200k no-change snapshot and no-op
      // metadata restore took the same time with either (every restore worker has its own connection).
      conn.pragma('cache_size = -8192');
      conn.pragma('busy_timeout = 10000');
      migrate(conn, file);
      const have = conn.prepare(`SELECT value FROM meta WHERE key='repo_id'`).get() as { value: string } | undefined;
      if (have && have.value !== repoId) {
        throw new OptionError(
          (n) => `catalog ${file} belongs to repository ${have.value}, not ${repoId}; pass another ${n('catalog')} or delete it`,
        );
      }
      // 'schema' mirrors user_version for anyone reading meta (the releases before migrations wrote '1').
      conn.prepare(`INSERT OR REPLACE INTO meta VALUES('repo_id', ?), ('schema', ?)`).run(repoId, String(SCHEMA_VERSION));
    } catch (e) {
      conn.close();
      throw e;
    }
    return new CatalogDb(file, conn, false);
  }

  /**
   * A read-only connection to an existing catalog (worker threads): no migration and no
   * writes; the opener of the writable connection has already brought the schema up to date.
   */
  static openReadOnly(file: string): CatalogDb {
    const conn = new Database(file, { readonly: true, fileMustExist: true });
    try {
      conn.pragma('busy_timeout = 10000');
      refuseNewer(conn, file);
    } catch (e) {
      conn.close();
      throw e;
    }
    return new CatalogDb(file, conn, true);
  }

  close(): void {
    this.flush();
    if (!this.readOnly) {
      try {
        this.conn.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        /* busy: fine */
      }
    }
    this.conn.close();
  }

  /**
   * Runs `fn`'s reads in one read transaction (a read-only connection's batch of directories).
   * A statement outside a transaction is one of its own: two fcntl locks, a stat and the
   * validation of the page cache each time, ~7 of the ~10 us a directory's digest lookup took
   * (issue 17, measured on the 200k catalog). Callers keep a batch short (a worker's budget of
   * entries): a reader holds back a concurrent writer's checkpoint until it ends.
   */
  reading<T>(fn: () => T): T {
    if (!this.readOnly || this.conn.inTransaction) return fn();
    this.st('BEGIN').run();
    try {
      return fn();
    } finally {
      this.st('COMMIT').run();
    }
  }

  /** A prepared statement, cached by its SQL text (callers pass constant strings). */
  st(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.conn.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs statements that return nothing (bulk deletes). */
  exec(sql: string): void {
    this.conn.exec(sql);
  }

  /**
   * Streams a query on its own read-only connection: better-sqlite3 forbids other statements
   * on a connection while it iterates, and streams must not block writes or each other.
   * `raw` yields rows as arrays (cheaper per row than objects).
   */
  *stream(sql: string, params: unknown, opts: { raw?: boolean } = {}): Iterable<unknown> {
    this.flush();
    const conn = new Database(this.file, { readonly: true });
    try {
      conn.pragma('busy_timeout = 10000');
      const stmt = conn.prepare(sql);
      if (opts.raw) stmt.raw(true);
      yield* params === undefined ? stmt.iterate() : stmt.iterate(params);
    } finally {
      conn.close();
    }
  }

  // ---- batched write transactions -------------------------------------------------------

  /** Counts a write; commits every few thousand so a crash loses at most the last batch. */
  wrote(n = 1): void {
    if (!this.txOpen) {
      this.conn.exec('BEGIN');
      this.txOpen = true;
    }
    this.txWrites += n;
    if (this.txWrites >= 20000) this.flush();
  }

  /** Commits the open batch, if any: other connections (streams, workers) then see its rows. */
  flush(): void {
    if (this.txOpen) {
      this.conn.exec('COMMIT');
      this.txOpen = false;
      this.txWrites = 0;
    }
  }

  /** Runs `fn` atomically (flushing any open batch first); nested calls become savepoints. */
  atomic<T>(fn: () => T): T {
    this.flush();
    return this.conn.transaction(fn)();
  }

  getMeta(key: string): string | undefined {
    return (this.st(`SELECT value FROM meta WHERE key=?`).get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.st(`INSERT OR REPLACE INTO meta VALUES(?, ?)`).run(key, value);
  }

  /** Bytes on disk, the WAL folded into the main file first. */
  sizeOnDisk(): number {
    this.flush();
    try {
      this.conn.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* ignore */
    }
    let n = 0;
    for (const f of [this.file, this.file + '-wal']) {
      try {
        n += fs.statSync(f).size;
      } catch {
        /* absent */
      }
    }
    return n;
  }
}
