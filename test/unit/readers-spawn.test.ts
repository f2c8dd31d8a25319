import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HashPool } from '../../src/snapshot/hashpool.js';

// A snapshot starts its reader threads before the repository key exists (they load while scrypt
// derives it, issue 17) and gives them the key when the walk starts. Both ends must hold: threads
// started ahead work once given their key, and threads never given one end cleanly when the
// snapshot fails first (a wrong password: test/encryption.test.ts runs that through the CLI).

describe('reader threads started ahead of their key', () => {
  it('list a directory once started, and closing twice is harmless', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-readers-'));
    for (const n of ['b.txt', 'a.txt', 'sub']) {
      if (n === 'sub') fs.mkdirSync(path.join(dir, n));
      else fs.writeFileSync(path.join(dir, n), n);
    }
    const spawned = HashPool.spawn(2);
    await new Promise((r) => setTimeout(r, 50)); // the key arrives later than the threads
    const pool = await spawned.start(1 << 20, null);
    const listing = await pool.scan(-1, '', dir);
    if (!('fd' in listing)) throw new Error(listing.error);
    expect(listing.names).toEqual(['a.txt', 'b.txt', 'sub']);
    // Subdirectories are listed several to a message, relative to their parent's fd.
    const [sub] = await Promise.all(pool.scanMany(listing.fd, ['sub']));
    if (!('fd' in sub)) throw new Error(sub.error);
    expect(sub.names).toEqual([]);
    fs.closeSync(sub.fd);
    fs.closeSync(listing.fd);
    await pool.close();
    await spawned.close();
    fs.rmSync(dir, { recursive: true });
  });

  it('end cleanly when never started', async () => {
    const spawned = HashPool.spawn(2);
    await expect(spawned.close()).resolves.toBeUndefined();
  });
});
