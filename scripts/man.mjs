#!/usr/bin/env node
// Writes docs/snapfill.1 from the built command definitions (dist/, `npm run build` first).
// `npm run man` runs it; `--stdout` prints the page instead (the test compares the two).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../dist/cli/program.js';
import { manPage } from '../dist/cli/man.js';
import { packageVersion } from '../dist/cli/cmd-version.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const page = manPage(await buildProgram(), packageVersion());
if (process.argv.includes('--stdout')) process.stdout.write(page);
else {
  const out = path.join(root, 'docs', 'snapfill.1');
  fs.writeFileSync(out, page);
  console.log(`wrote ${path.relative(root, out)}`);
}
