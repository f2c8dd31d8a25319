import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The URL of a worker thread script next to `base` (an import.meta.url). Worker threads load
 * compiled JavaScript; when the caller runs from the TypeScript sources (as under vitest), the
 * compiled copy under dist/ is used instead.
 */
export function workerUrl(base: string, file: string): URL {
  const here = new URL(`./${file}`, base);
  if (fs.existsSync(fileURLToPath(here))) return here;
  const src = fileURLToPath(base);
  const i = src.lastIndexOf('/src/');
  if (i >= 0) {
    const dist = src.slice(0, i) + '/dist/' + src.slice(i + 5);
    const alt = new URL(`./${file}`, 'file://' + dist);
    if (fs.existsSync(fileURLToPath(alt))) return alt;
  }
  throw new Error(`worker script ${file} not found next to ${src}: run "npm run build" first`);
}
