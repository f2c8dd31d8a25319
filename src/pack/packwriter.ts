import { createHash } from 'node:crypto';
import type { BlobId } from './blobid.js';
import { freshNonce, SEAL_OVERHEAD } from './crypto.js';
import { sealBlobInto } from './nativecodec.js';
import { TAR_BLOCK, tarEntrySpan, type BlobLocation, type BlobType, type PackIndex } from './format.js';

/**
 * Collects blobs into one tar archive. Blobs are laid back to back in tar entries of up to
 * SEGMENT bytes (a 512-byte header plus padding per small blob would cost more than a
 * compressed mail file itself). Offsets are computed from the tar layout and recorded in the
 * pack index, so a reader fetches one blob with a ranged read.
 *
 * (issue 17) The archive is written straight into one growing buffer: each blob is copied (or
 * sealed) once, to its final offset, and the segment's ustar header is filled in when the
 * segment closes. The bytes are exactly those tar-stream produced for the same entries (name,
 * mode 0644, uid/gid 0, mtime 0, two zero blocks at the end; test/packwriter.test.ts compares).
 */
const SEGMENT = 1024 * 1024;
/** The archive's end: two zero blocks. */
const END_BLOCKS = 2 * TAR_BLOCK;

/** Pack buffers handed back by recycle(), for the next reserve(): one (each is a pack size of resident memory; a fresh one costs ~1.5 ms of page faults). */
const spare: Buffer[] = [];
const SPARE_MAX = 1;

export class PackWriter {
  private buf: Buffer = Buffer.allocUnsafe(0);
  private readonly blobs: BlobLocation[] = [];
  private readonly ids = new Set<BlobId>();
  /** End of the closed tar entries. */
  private pos = 0;
  /** Bytes in the open segment (its header sits at `pos`); its blobs are at the end of `blobs`. */
  private segmentBytes = 0;
  private segmentBlobs = 0;
  private segmentFirst: BlobId = '';
  private segments = 0;
  private finished = false;
  /** The buffer whose bytes finish() returned (see recycle()). */
  private spent: Buffer | null = null;

  /**
   * `key`: seal each blob (format version 2, encrypted). `version` 2 names tar entries by
   * sequence number only: version 1 names carried blob-id prefixes, readable to anyone holding
   * the store.
   */
  constructor(
    readonly type: BlobType,
    private readonly opts: { key?: Buffer | null; version?: number } = {},
  ) {}

  get size(): number {
    return this.pos + this.segmentBytes;
  }

  get count(): number {
    return this.blobs.length;
  }

  has(id: BlobId): boolean {
    return this.ids.has(id);
  }

  /**
   * Sizes the buffer for a pack of about `bytes` (the caller's pack size): one allocation
   * instead of doublings. Pages not written are not touched, so this costs no memory up front.
   * `fresh`: never a recycled buffer (all its pages touched), for a pack that fills slowly.
   */
  reserve(bytes: number, fresh = false): void {
    const need = bytes + SEGMENT + TAR_BLOCK * 2 + END_BLOCKS;
    if (this.size === 0 && this.buf.length < need && !fresh) {
      const k = spare.findIndex((b) => b.length >= need);
      if (k >= 0) {
        this.buf = spare[k];
        spare.splice(k, 1);
        return;
      }
    }
    this.grow(need);
  }

  /**
   * Hands the finished pack's buffer back for the next pack's reserve(): writing into fresh
   * pages cost a page fault per 4 KiB (1.5 s of a 200k-file snapshot's main thread, measured).
   * Only for a caller that owns the bytes finish() returned and has stopped using them (the
   * snapshot's BlobSink, once the pack and its index are stored): they are overwritten.
   */
  recycle(): void {
    const b = this.spent;
    this.spent = null;
    if (b && spare.length < SPARE_MAX) spare.push(b);
  }

  /** Adds a blob in its encoded form (encodeForStore); sealed here when the repository is encrypted. */
  add(id: BlobId, encoded: Uint8Array): void {
    if (this.ids.has(id)) return;
    const key = this.opts.key;
    if (!key) {
      this.addSealed(id, encoded);
      return;
    }
    const len = encoded.length + SEAL_OVERHEAD;
    const at = this.place(id, len);
    // Sealed straight into the pack buffer, by the same native call as the readers' blobs (codec.ts sealBlob).
    sealBlobInto(key, freshNonce(), Buffer.from(id, 'hex'), encoded, this.buf.subarray(at, at + len));
  }

  /** Adds a blob exactly as stored in another pack of the same repository (repack: already sealed). */
  addSealed(id: BlobId, data: Uint8Array): void {
    if (this.ids.has(id)) return;
    const at = this.place(id, data.length);
    this.buf.set(data, at);
  }

  /** Reserves `length` bytes for blob `id` in the open segment (closing a full one first); returns its offset. */
  private place(id: BlobId, length: number): number {
    if (this.finished) throw new Error('pack already finished');
    if (this.segmentBytes + length > SEGMENT && this.segmentBlobs) this.flushSegment();
    const at = this.pos + TAR_BLOCK + this.segmentBytes;
    this.grow(at + length);
    this.ids.add(id);
    if (!this.segmentBlobs) this.segmentFirst = id;
    this.blobs.push({ id, offset: at, length });
    this.segmentBytes += length;
    this.segmentBlobs++;
    return at;
  }

  private grow(need: number): void {
    if (need <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2, 256 * 1024));
    this.buf.copy(bigger, 0, 0, this.size + TAR_BLOCK);
    this.buf = bigger;
  }

  /** Closes the open segment: its header in front, zero padding to a whole block behind. */
  private flushSegment(): void {
    if (!this.segmentBlobs) return;
    // v1: named after its first blob; v2: by sequence number only (no blob id in the clear). A fixed
    // mtime keeps identical blob sets byte-identical across runs (unencrypted).
    const n = this.segments++;
    const name = (this.opts.version ?? 1) >= 2 ? String(n).padStart(6, '0') : `${this.segmentFirst.slice(0, 40)}.${n}`;
    const end = this.pos + tarEntrySpan(this.segmentBytes);
    this.grow(end);
    writeTarHeader(this.buf, this.pos, name, this.segmentBytes);
    this.buf.fill(0, this.pos + TAR_BLOCK + this.segmentBytes, end);
    this.pos = end;
    this.segmentBytes = 0;
    this.segmentBlobs = 0;
  }

  /** Ends the archive; returns its bytes and index. The pack id is the SHA-256 of the bytes. */
  async finish(): Promise<{ id: string; bytes: Buffer; index: PackIndex }> {
    this.flushSegment();
    this.finished = true;
    const end = this.pos + END_BLOCKS;
    this.grow(end);
    this.buf.fill(0, this.pos, end);
    const bytes = this.buf.subarray(0, end);
    this.spent = this.buf;
    this.buf = Buffer.allocUnsafe(0);
    const id = createHash('sha256').update(bytes).digest('hex');
    return { id, bytes, index: { v: 1, pack: id, type: this.type, size: bytes.length, blobs: this.blobs } };
  }
}

/** Octal field as tar-stream writes it: zero-padded to `n` digits, then a space. */
function octal(buf: Buffer, at: number, value: number, n: number): void {
  buf.write(value.toString(8).padStart(n, '0') + ' ', at, 'latin1');
}

/**
 * A ustar header for a regular file `name` of `size` bytes, mode 0644, uid/gid 0, mtime 0,
 * no user or group names: the block tar-stream's headers.encode wrote for the same entry.
 */
function writeTarHeader(buf: Buffer, at: number, name: string, size: number): void {
  if (name.length > 100 || size.toString(8).length > 11) throw new Error(`tar header out of range: ${name} ${size}`);
  buf.fill(0, at, at + TAR_BLOCK);
  buf.write(name, at, 'latin1');
  octal(buf, at + 100, 0o644, 6);
  octal(buf, at + 108, 0, 6);
  octal(buf, at + 116, 0, 6);
  octal(buf, at + 124, size, 11);
  octal(buf, at + 136, 0, 11);
  buf[at + 156] = 0x30; // '0': regular file
  buf.write('ustar\u000000', at + 257, 'latin1');
  octal(buf, at + 329, 0, 6);
  octal(buf, at + 337, 0, 6);
  let sum = 8 * 32; // the checksum field counts as eight spaces
  for (let i = 0; i < 148; i++) sum += buf[at + i];
  for (let i = 156; i < TAR_BLOCK; i++) sum += buf[at + i];
  octal(buf, at + 148, sum, 6);
}
