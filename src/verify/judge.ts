import * as fs from 'node:fs';
import type { XXHashAPI } from 'xxhash-wasm';
import { compareEntry } from '../livefs/compare.js';
import { fingerprintFile } from '../livefs/fingerprint.js';
import type { VerifyEntry } from './protocol.js';

export type Finding = { kind: 'missing' } | { kind: 'changed'; reason: string } | { kind: 'metadata'; fields: string[] } | { kind: 'ok' };

/**
 * What verify reports of one entry, by the one compare rule (livefs/compare.ts). With
 * `hasher` (--checksum) a regular file of the recorded size is judged by its fingerprint, and
 * a moved mtime is then metadata drift; without, by size and mtime. Owners are always
 * compared: verify reports, it does not need the right to fix them.
 */
export function judge(
  e: VerifyEntry,
  st: fs.BigIntStats | undefined,
  livePath: Buffer | (() => Buffer),
  hasher: XXHashAPI | null,
): Finding {
  // The live path is built only when a symlink or a fingerprint needs it: most entries are judged by their stat alone.
  const lp = typeof livePath === 'function' ? livePath : () => livePath;
  if (!st) return { kind: 'missing' };
  const v = compareEntry(e, st, {
    content: hasher ? 'checksum' : 'stat',
    owner: true,
    readLink: () => fs.readlinkSync(lp(), { encoding: 'buffer' }).toString('latin1'),
    fingerprint: () => fingerprintFile(hasher!, lp()),
  });
  if (v.kind === 'type' || v.kind === 'content') return { kind: 'changed', reason: v.reason };
  if (v.kind === 'metadata') return { kind: 'metadata', fields: v.fields };
  return { kind: 'ok' };
}
