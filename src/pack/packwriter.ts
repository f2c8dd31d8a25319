import { pack as tarPack } from 'tar-stream';
import { createHash } from 'node:crypto';
import type { BlobId } from './blobid.js';
import { TAR_BLOCK, tarEntrySpan, type BlobLocation, type BlobType, type PackIndex } from './format.js';

/**
 * Collects blobs into one tar archive (one entry per blob, named by its id). Offsets are
 * computed from the tar layout, so a reader can fetch one blob with a ranged read.
 */
export class PackWriter {
  private readonly tar = tarPack();
  private readonly chunks: Buffer[] = [];
  private readonly blobs: BlobLocation[] = [];
  private readonly ids = new Set<BlobId>();
  private pos = 0;
  private readonly ended: Promise<void>;

  constructor(readonly type: BlobType) {
    this.tar.on('data', (c: unknown) => { this.chunks.push(c as Buffer); });
    this.ended = new Promise((resolve, reject) => {
      this.tar.on('end', () => resolve());
      this.tar.on('error', reject);
    });
  }

  get size(): number {
    return this.pos;
  }

  get count(): number {
    return this.blobs.length;
  }

  has(id: BlobId): boolean {
    return this.ids.has(id);
  }

  add(id: BlobId, data: Buffer): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    // A fixed mtime keeps identical blob sets byte-identical across runs.
    this.tar.entry({ name: id, size: data.length, mode: 0o644, mtime: new Date(0), type: 'file' }, data);
    this.blobs.push({ id, offset: this.pos + TAR_BLOCK, length: data.length });
    this.pos += tarEntrySpan(data.length);
  }

  /** Ends the archive; returns its bytes and index. The pack id is the SHA-256 of the bytes. */
  async finish(): Promise<{ id: string; bytes: Buffer; index: PackIndex }> {
    this.tar.finalize();
    await this.ended;
    const bytes = Buffer.concat(this.chunks);
    if (bytes.length < this.pos) throw new Error(`pack layout mismatch: ${bytes.length} < ${this.pos}`);
    const id = createHash('sha256').update(bytes).digest('hex');
    return { id, bytes, index: { v: 1, pack: id, type: this.type, size: bytes.length, blobs: this.blobs } };
  }
}
