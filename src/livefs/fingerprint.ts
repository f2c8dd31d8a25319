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
