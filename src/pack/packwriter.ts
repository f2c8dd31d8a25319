import { pack as tarPack } from 'tar-stream';
import { createHash } from 'node:crypto';
import type { BlobId } from './blobid.js';
import { sealBlob } from './codec.js';
import { TAR_BLOCK, tarEntrySpan, type BlobLocation, type BlobType, type PackIndex } from './format.js';

/**
 * Collects blobs into one tar archive. Blobs are laid back to back in tar entries of up to
 * SEGMENT bytes (a 512-byte header plus padding per small blob would cost more than a
 * compressed mail file itself). Offsets are computed from the tar layout and recorded in the
 * pack index, so a reader fetches one blob with a ranged read.
 */
const SEGMENT = 1024 * 1024;

export class PackWriter {
  private readonly tar = tarPack();
  private readonly chunks: Buffer[] = [];
  private readonly blobs: BlobLocation[] = [];
  private readonly ids = new Set<BlobId>();
  private pos = 0;
  private segment: { id: BlobId; data: Buffer }[] = [];
  private segmentBytes = 0;
  private segments = 0;
  private readonly ended: Promise<void>;

  /**
   * `key`: seal each blob (format version 2, encrypted). `version` 2 names tar entries by
   * sequence number only: version 1 names carried blob-id prefixes, readable to anyone holding
   * the store.
   */
  constructor(
    readonly type: BlobType,
    private readonly opts: { key?: Buffer | null; version?: number } = {},
  ) {
    this.tar.on('data', (c: unknown) => {
      this.chunks.push(c as Buffer);
    });
    this.ended = new Promise((resolve, reject) => {
      this.tar.on('end', () => resolve());
      this.tar.on('error', reject);
    });
  }

  get size(): number {
    return this.pos + this.segmentBytes;
  }

  get count(): number {
    return this.blobs.length + this.segment.length;
  }

  has(id: BlobId): boolean {
    return this.ids.has(id);
  }

  /** Adds a blob in its encoded form (encodeForStore); sealed here when the repository is encrypted. */
  add(id: BlobId, encoded: Buffer): void {
    if (this.ids.has(id)) return;
    this.addSealed(id, this.opts.key ? sealBlob(this.opts.key, id, encoded) : encoded);
  }

  /** Adds a blob exactly as stored in another pack of the same repository (repack: already sealed). */
  addSealed(id: BlobId, data: Buffer): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    if (this.segmentBytes + data.length > SEGMENT && this.segment.length) this.flushSegment();
    this.segment.push({ id, data });
    this.segmentBytes += data.length;
  }

  private flushSegment(): void {
    if (!this.segment.length) return;
    const body = Buffer.concat(this.segment.map((b) => b.data));
    let at = this.pos + TAR_BLOCK;
    for (const b of this.segment) {
      this.blobs.push({ id: b.id, offset: at, length: b.data.length });
      at += b.data.length;
    }
    // v1: named after its first blob; v2: by sequence number only (no blob id in the clear). A fixed
    // mtime keeps identical blob sets byte-identical across runs (unencrypted).
    const n = this.segments++;
    const name = (this.opts.version ?? 1) >= 2 ? String(n).padStart(6, '0') : `${this.segment[0].id.slice(0, 40)}.${n}`;
    this.tar.entry({ name, size: body.length, mode: 0o644, mtime: new Date(0), type: 'file' }, body);
    this.pos += tarEntrySpan(body.length);
    this.segment = [];
    this.segmentBytes = 0;
  }

  /** Ends the archive; returns its bytes and index. The pack id is the SHA-256 of the bytes. */
  async finish(): Promise<{ id: string; bytes: Buffer; index: PackIndex }> {
    this.flushSegment();
    this.tar.finalize();
    await this.ended;
    const bytes = Buffer.concat(this.chunks);
    if (bytes.length < this.pos) throw new Error(`pack layout mismatch: ${bytes.length} < ${this.pos}`);
    const id = createHash('sha256').update(bytes).digest('hex');
    return { id, bytes, index: { v: 1, pack: id, type: this.type, size: bytes.length, blobs: this.blobs } };
  }
}
