import * as os from 'node:os';

/**
 * The host name snapshots are recorded under and a catalog follows by default: SNAPFILL_HOST
 * when set (several simulated or containerised hosts on one machine, or a machine renamed
 * that keeps its old lineages), else the machine's name.
 */
export function thisHost(): string {
  return process.env.SNAPFILL_HOST || os.hostname();
}
