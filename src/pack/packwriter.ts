import { pack as tarPack } from 'tar-stream';
import { createHash } from 'node:crypto';
import type { BlobId } from './blobid.js';
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

  constructor(readonly type: BlobType) {
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

  add(id: BlobId, data: Buffer): void {
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
    // Named after its first blob; a fixed mtime keeps identical blob sets byte-identical across runs.
    this.tar.entry(
      { name: `${this.segment[0].id.slice(0, 40)}.${this.segments++}`, size: body.length, mode: 0o644, mtime: new Date(0), type: 'file' },
      body,
    );
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
