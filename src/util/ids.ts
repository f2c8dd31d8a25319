import * as fs from 'node:fs';

/** uid/gid <-> name maps from /etc/passwd and /etc/group, read once (NSS lookups per file are too slow). */
export class IdNames {
  private users = new Map<number, string>();
  private groups = new Map<number, string>();
  private userIds = new Map<string, number>();
  private groupIds = new Map<string, number>();

  constructor(etc = '/etc') {
    this.load(`${etc}/passwd`, this.users, this.userIds);
    this.load(`${etc}/group`, this.groups, this.groupIds);
  }

  private load(file: string, byId: Map<number, string>, byName: Map<string, number>): void {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f.length < 3 || f[0].startsWith('#')) continue;
      const id = Number(f[2]);
      if (!Number.isInteger(id)) continue;
      if (!byId.has(id)) byId.set(id, f[0]);
      if (!byName.has(f[0])) byName.set(f[0], id);
    }
  }

  user(uid: number): string {
    return this.users.get(uid) ?? '';
  }
  group(gid: number): string {
    return this.groups.get(gid) ?? '';
  }
  uidOf(name: string): number | undefined {
    return name ? this.userIds.get(name) : undefined;
  }
  gidOf(name: string): number | undefined {
    return name ? this.groupIds.get(name) : undefined;
  }
}
