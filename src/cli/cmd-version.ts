import * as fs from 'node:fs';
import type { Command } from 'commander';
import { action } from './action.js';
import { info, printJson } from './output.js';

/** The version in package.json (two levels up from dist/cli/), so a release bump is the one edit. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function register(program: Command): void {
  program
    .command('version')
    .description('print the version of snapfill and of the Node.js running it')
    .action(
      action(async (g) => {
        const v = { version: packageVersion(), node: process.versions.node, platform: `${process.platform}/${process.arch}` };
        if (g.json) printJson(v);
        else info(g, `snapfill ${v.version} (node ${v.node}, ${v.platform})`);
      }),
    );
}
