#!/usr/bin/env node
// Copies the web console's page (plain HTML/CSS/JS, no build step of its own) next to the
// compiled server: src/serve/static -> dist/serve/static. tsc compiles only .ts files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const from = path.join(root, 'src', 'serve', 'static');
const to = path.join(root, 'dist', 'serve', 'static');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(from, to, { recursive: true });
