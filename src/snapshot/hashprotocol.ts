/** Messages between the snapshot walk and its reader threads. Big numbers travel as decimal strings. */
export interface HashItem {
  p: string; // raw path
  size: string;
  mtime: string;
  ctime: string;
  ino: string;
}

export interface HashStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  ctime: string;
  ino: string;
  dev: string;
  nlink: number;
  isFile: boolean;
}

export type HashResult =
  | { code: 'ok'; fp: string; id: string | null; stored: Uint8Array | null; st: HashStat; torn: boolean; read: number }
  | { code: 'big' }
  | { code: 'error'; msg: string };
