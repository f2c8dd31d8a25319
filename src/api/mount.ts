import { loadFuse, mountSnapshots, type MountHandle, type MountOptions } from '../mount/fuse.js';
import type { Session } from './session.js';

export { unmountHint, MountUnavailableError, type MountHandle, type MountOptions } from '../mount/fuse.js';

/** Fails with the reason when FUSE cannot be used here: call it before opening the repository. */
export function checkMountAvailable(): void {
  loadFuse();
}

/** Mounts every snapshot read-only; keep the session open until `handle.unmount()`. */
export async function mount(s: Session, opts: MountOptions): Promise<{ handle: MountHandle; snapshots: number }> {
  const handle = await mountSnapshots(s, opts);
  return { handle, snapshots: s.catalog.listSnapshots().length };
}
