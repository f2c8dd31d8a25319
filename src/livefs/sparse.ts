import * as fs from 'node:fs';

/** Files are written hole-aware in blocks of this size: an all-zero block becomes a hole, as tar -S does. */
export const SPARSE_BLOCK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(SPARSE_BLOCK);

/**
 * Writes `data` at `pos`, leaving all-zero blocks of files larger than one block as holes (a
 * sparse VM image or database file comes back sparse). The caller sets the final size with
 * ftruncate, which also covers a trailing hole.
 */
export function writeAt(fd: number, data: Buffer, pos: number): void {
  if (data.length <= SPARSE_BLOCK) {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, pos + off);
    return;
  }
  for (let b = 0; b < data.length; b += SPARSE_BLOCK) {
    const end = Math.min(b + SPARSE_BLOCK, data.length);
    if (data.compare(ZERO_BLOCK, 0, end - b, b, end) === 0) continue;
    let off = b;
    while (off < end) off += fs.writeSync(fd, data, off, end - off, pos + off);
  }
}
