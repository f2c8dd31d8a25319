/**
 * Node sets file times through a double of seconds and libuv keeps microseconds; a plain
 * ns/1e9 conversion lands a hair below the intended microsecond half of the time. Aiming at
 * the middle of the microsecond makes the truncation exact. Sub-microsecond digits are lost.
 */
export function utimesSeconds(ns: bigint | string): number {
  const us = BigInt(ns) / 1000n;
  return Number(us / 1000000n) + (Number(us % 1000000n) + 0.5) / 1e6;
}
