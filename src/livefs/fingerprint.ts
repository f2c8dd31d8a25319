import * as fs from 'node:fs';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';

let api: XXHashAPI | undefined;

/** xxhash-wasm instantiates a WebAssembly module once; every caller shares it. */
export async function xxh(): Promise<XXHashAPI> {
  api ??= await xxhash();
  return api;
}

export function fpHex(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}

/** One read buffer per thread: fingerprints are taken one at a time. */
let readBuf: Buffer | undefined;

/**
 * The xxh64 fingerprint of a live file's content, as the snapshot computed it. Opened with
 * O_NOFOLLOW (a symlink swapped in is refused, not followed) and O_NONBLOCK (a FIFO swapped in
 * does not hang the thread); read in 1 MiB steps, so memory stays flat for any size.
 */
export function fingerprintFile(hasher: XXHashAPI, p: Buffer | string): string {
  readBuf ??= Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const h = hasher.create64();
    for (;;) {
      const n = fs.readSync(fd, readBuf, 0, readBuf.length, null);
      if (n === 0) break;
      h.update(readBuf.subarray(0, n));
    }
    return fpHex(h.digest());
  } finally {
    fs.closeSync(fd);
  }
}
