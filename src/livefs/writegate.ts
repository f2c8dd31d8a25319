import { setWriteGate } from './native.js';

/**
 * A gate between a run's worker threads and the live tree (issue 17). A restore's workers
 * start walking (reading the catalog, scanning directories, comparing) while the repository
 * key is still being derived (scrypt) and the repository lock taken; their first
 * write waits here until the main thread opens the gate. A wrong password therefore still
 * writes nothing: the gate is never opened, and the run is stopped with the workers waiting.
 *
 * Shared memory, not a message: a worker's walk is synchronous (one native call per directory),
 * so it blocks in Atomics.wait at its first write and goes on the moment the gate opens.
 * Layout: Int32 state, Int32 key length, then the key bytes (the blob key crosses with it).
 */
const CLOSED = 0;
const OPEN = 1;
const KEY_AT = 8;
const KEY_MAX = 64;

/** The main thread's side: create, hand `shared` to the workers, open once the run may write. */
export class WriteGate {
  readonly shared = new SharedArrayBuffer(KEY_AT + KEY_MAX);
  private readonly state = new Int32Array(this.shared, 0, 2);

  /** Lets every waiting and later write through; `key` is the blob key the workers read packs with. */
  open(key: Uint8Array | null): void {
    if (key) {
      if (key.length > KEY_MAX) throw new Error('internal error: blob key too long for the write gate');
      new Uint8Array(this.shared, KEY_AT, key.length).set(key);
      Atomics.store(this.state, 1, key.length);
    }
    Atomics.store(this.state, 0, OPEN);
    Atomics.notify(this.state, 0);
  }

  get isOpen(): boolean {
    return Atomics.load(this.state, 0) === OPEN;
  }
}

/**
 * A worker thread's side: holds its writes behind the gate in `shared` (null: no gate, writes
 * go through). Returns the blob key, which is known once the gate is open: call it only there.
 */
export function joinWriteGate(shared: SharedArrayBuffer | null): () => Uint8Array | null {
  if (!shared) {
    setWriteGate(null);
    return () => null;
  }
  const state = new Int32Array(shared, 0, 2);
  const pass = () => {
    // Never opened means never: the main thread stops the run (terminating this thread) instead.
    while (Atomics.load(state, 0) === CLOSED) Atomics.wait(state, 0, CLOSED);
    setWriteGate(null); // open for good: later writes skip the check
  };
  setWriteGate(pass);
  return () => {
    pass();
    const n = Atomics.load(state, 1);
    return n ? new Uint8Array(shared, KEY_AT, n).slice() : null;
  };
}
