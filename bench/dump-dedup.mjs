#!/usr/bin/env node
// Dedup of shifting data (issue 14): 21 daily dumps of a mysqldump-shaped SQL file, snapshotted
// in the same run by snapfill (version 2, content-defined chunks), restic, and snapfill with
// fixed 8 MiB chunks (a version-2 repository initialised with `chunker: null`, otherwise the
// same: encrypted, compressed). Reports the repository sizes after the last day and the ratios.
// Targets: snapfill <= restic, snapfill <= 0.3x fixed chunks.
//
//   node bench/dump-dedup.mjs                            # 500 MB x 21 days, under /dev/shm
//   node bench/dump-dedup.mjs --size-mb 50 --days 5      # quick
//   node bench/dump-dedup.mjs --only snapfill,restic --json
//   node bench/dump-dedup.mjs --net-buffer 0             # one INSERT per row (--skip-extended-insert)
//   node bench/dump-dedup.mjs --chunker 256,512,8192     # snapfill's min,avg,max in KiB (default: the repository default)
//
// The dump (deterministic PRNG, --seed): tables one after another, each a DROP/CREATE TABLE and
// extended INSERT statements of up to --net-buffer bytes, cut where mysqldump cuts them (a row
// that would overflow starts the next statement). Each day: rows appended to 3 tables (every later
// byte shifts), then ~100 rows per 500 MB (--ops) at random positions updated (60%) or deleted (40%). A deleted or
// resized row moves where the following statements of its table are cut, as in a real dump.
// Needs `npm run build` (dist/) and restic on PATH. Works in --dir (default /dev/shm).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freezeBuild } from './freeze-build.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
// A private copy of the build: a `tsc` in the working tree must not swap it halfway through.
const BIN = process.argv.includes('--help') || process.argv.includes('-h') ? '' : freezeBuild(ROOT);
const DIST = path.join(path.dirname(path.dirname(BIN)), 'dist');
const PASSWORD = 'snapfill-bench-fixed-password';

const o = {
  chunker: null,
  sizeMb: 500,
  days: 21,
  dir: null,
  seed: 14,
  netBuffer: 1047551,
  only: null,
  json: false,
  keep: false,
  ops: null,
  tables: 60,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  if (a === '--size-mb') o.sizeMb = Number(v());
  else if (a === '--days') o.days = Number(v());
  else if (a === '--dir') o.dir = v();
  else if (a === '--seed') o.seed = Number(v());
  else if (a === '--net-buffer') o.netBuffer = Number(v());
  else if (a === '--ops') o.ops = Number(v());
  else if (a === '--tables') o.tables = Number(v());
  else if (a === '--only') o.only = v().split(',');
  else if (a === '--chunker')
    o.chunker = v()
      .split(',')
      .map((x) => Math.round(Number(x) * 1024));
  else if (a === '--json') o.json = true;
  else if (a === '--keep') o.keep = true;
  else if (a === '--help' || a === '-h') {
    console.log(
      fs
        .readFileSync(fileURLToPath(import.meta.url), 'utf8')
        .split('\n')
        .slice(1, 20)
        .join('\n'),
    );
    process.exit(0);
  } else {
    console.error(`unknown option ${a} (see --help)`);
    process.exit(2);
  }
}
// ~100 edited rows a day in a 500 MB dump; a smaller dump gets proportionally fewer (same density).
o.ops ??= Math.max(1, Math.round((100 * o.sizeMb) / 500));
const TOOLS = (o.only ?? ['snapfill', 'restic', 'snapfill_fixed']).filter((t) => ['snapfill', 'restic', 'snapfill_fixed'].includes(t));

// ---- deterministic generator -------------------------------------------------------------

/** mulberry32: a small, fast 32-bit PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}
const mix = (...xs) => xs.reduce((h, x) => Math.imul(h ^ (x >>> 0), 0x9e3779b1) ^ (h >>> 15), 0x12345678 ^ o.seed) >>> 0;

const SYL = [
  'ka',
  'lo',
  'mi',
  'ne',
  'ru',
  'sa',
  'ti',
  'vo',
  'ze',
  'ban',
  'cor',
  'del',
  'fin',
  'gar',
  'hol',
  'jen',
  'mar',
  'nor',
  'pel',
  'quin',
  'ros',
  'stan',
  'tor',
  'ul',
  'wen',
];
const wr = rng(o.seed);
const WORDS = Array.from({ length: 600 }, () => {
  let w = '';
  for (let k = 1 + (wr() % 3); k >= 0; k--) w += SYL[wr() % SYL.length];
  return w;
});
const STATUS = ['active', 'pending', 'closed', 'hold', 'refunded', 'shipped'];
const LEVELS = ['INFO', 'WARN', 'ERROR', 'DEBUG'];
const pad = (n) => (n < 10 ? '0' + n : '' + n);
const date = (r) =>
  `'20${pad(18 + (r() % 8))}-${pad(1 + (r() % 12))}-${pad(1 + (r() % 28))} ${pad(r() % 24)}:${pad(r() % 60)}:${pad(r() % 60)}'`;
const words = (r, n) => {
  let s = WORDS[r() % WORDS.length];
  for (let i = 1; i < n; i++) s += ' ' + WORDS[r() % WORDS.length];
  return s;
};

/** Table kinds: column list and one row's SQL text from its PRNG. */
const KINDS = [
  {
    name: 'users',
    cols: '`id` int NOT NULL AUTO_INCREMENT,\n  `login` varchar(60) NOT NULL,\n  `email` varchar(100) NOT NULL,\n  `display_name` varchar(250) NOT NULL,\n  `registered` datetime NOT NULL,\n  `status` varchar(20) NOT NULL',
    row: (id, r) =>
      `(${id},'${WORDS[r() % 600]}${r() % 1000}','${WORDS[r() % 600]}@${WORDS[r() % 600]}.com','${words(r, 2)}',${date(r)},'${STATUS[r() % 6]}')`,
  },
  {
    name: 'orders',
    cols: '`id` int NOT NULL AUTO_INCREMENT,\n  `user_id` int NOT NULL,\n  `total` decimal(10,2) NOT NULL,\n  `currency` char(3) NOT NULL,\n  `created` datetime NOT NULL,\n  `status` varchar(20) NOT NULL,\n  `note` text',
    row: (id, r) =>
      `(${id},${r() % 200000},${r() % 100000}.${pad(r() % 100)},'${['EUR', 'USD', 'GBP'][r() % 3]}',${date(r)},'${STATUS[r() % 6]}',${r() % 4 ? 'NULL' : `'${words(r, 3 + (r() % 8))}'`})`,
  },
  {
    name: 'posts',
    cols: '`id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `author` bigint unsigned NOT NULL,\n  `title` text NOT NULL,\n  `content` longtext NOT NULL,\n  `date` datetime NOT NULL',
    row: (id, r) => `(${id},${1 + (r() % 50)},'${words(r, 3 + (r() % 6))}','${words(r, 20 + (r() % 120))}',${date(r)})`,
  },
  {
    name: 'log',
    cols: '`id` bigint NOT NULL AUTO_INCREMENT,\n  `ts` datetime NOT NULL,\n  `level` varchar(8) NOT NULL,\n  `ip` varchar(45) NOT NULL,\n  `message` varchar(1000) NOT NULL',
    row: (id, r) =>
      `(${id},${date(r)},'${LEVELS[r() % 4]}','${r() % 256}.${r() % 256}.${r() % 256}.${r() % 256}','${words(r, 4 + (r() % 14))}')`,
  },
  {
    name: 'options',
    cols: '`option_id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `option_name` varchar(191) NOT NULL,\n  `option_value` longtext NOT NULL,\n  `autoload` varchar(20) NOT NULL',
    row: (id, r) =>
      `(${id},'${WORDS[r() % 600]}_${WORDS[r() % 600]}','a:${r() % 9}:{s:${r() % 40}:\\"${words(r, 2 + (r() % 10))}\\";}','${r() % 2 ? 'yes' : 'no'}')`,
  },
];

/** A table: its kind, live row ids in key order, and each row's edit count (0 = as inserted). */
function makeTables(targetBytes) {
  const r = rng(mix(1));
  const tables = [];
  // Skewed sizes, as in real databases: a few big tables, many small ones.
  const weights = Array.from({ length: o.tables }, (_, i) => 1 / (1 + i) ** 1.1 + (r() % 100) / 20000);
  const wsum = weights.reduce((a, b) => a + b, 0);
  const avgRow = [95, 110, 560, 120, 110];
  for (let i = 0; i < o.tables; i++) {
    const kind = KINDS[(i * 7 + (r() % 3)) % KINDS.length];
    const k = KINDS.indexOf(kind);
    const rows = Math.max(3, Math.round(((targetBytes * weights[i]) / wsum / avgRow[k]) * 1.0));
    const ids = Array.from({ length: rows }, (_, j) => j + 1);
    tables.push({ name: `wp${(i % 9) + 1}_${kind.name}_${i}`, kind, ids, next: rows + 1, edits: new Map() });
  }
  return tables;
}

function rowText(t, ti, id) {
  return t.kind.row(id, rng(mix(ti, id, t.edits.get(id) ?? 0)));
}

/** Writes the whole dump to `file`, mysqldump-shaped. Returns its size. */
function writeDump(tables, file, day) {
  const fd = fs.openSync(file, 'w');
  const BUF = 4 << 20;
  let out = Buffer.allocUnsafe(BUF);
  let n = 0;
  let size = 0;
  const put = (s) => {
    if (n + s.length * 3 > BUF) {
      fs.writeSync(fd, out, 0, n);
      size += n;
      n = 0;
      if (s.length * 3 > BUF) out = Buffer.allocUnsafe(s.length * 3 + BUF);
    }
    n += out.write(s, n);
  };
  put(
    `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: hosting_db\n-- ------------------------------------------------------\n-- Server version\t8.0.36\n\n`,
  );
  put(
    `/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!50503 SET NAMES utf8mb4 */;\n/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n`,
  );
  tables.forEach((t, ti) => {
    put(
      `--\n-- Table structure for table \`${t.name}\`\n--\n\nDROP TABLE IF EXISTS \`${t.name}\`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n`,
    );
    put(
      `CREATE TABLE \`${t.name}\` (\n  ${t.kind.cols},\n  PRIMARY KEY (\`${t.kind.cols.match(/`(\w+)`/)[1]}\`)\n) ENGINE=InnoDB AUTO_INCREMENT=${t.next} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n`,
    );
    put(
      `/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table \`${t.name}\`\n--\n\nLOCK TABLES \`${t.name}\` WRITE;\n/*!40000 ALTER TABLE \`${t.name}\` DISABLE KEYS */;\n`,
    );
    const head = `INSERT INTO \`${t.name}\` VALUES `;
    let stmt = 0; // bytes of the open statement; 0: none open
    for (const id of t.ids) {
      const row = rowText(t, ti, id);
      if (stmt && (o.netBuffer <= 0 || stmt + row.length + 1 > o.netBuffer)) {
        put(';\n');
        stmt = 0;
      }
      if (!stmt) {
        put(head + row);
        stmt = head.length + row.length;
      } else {
        put(',' + row);
        stmt += row.length + 1;
      }
    }
    if (stmt) put(';\n');
    put(`/*!40000 ALTER TABLE \`${t.name}\` ENABLE KEYS */;\nUNLOCK TABLES;\n\n`);
  });
  put(`/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n\n-- Dump completed on 2026-11-${pad(1 + (day % 28))} 03:00:0${day % 10}\n`);
  fs.writeSync(fd, out, 0, n);
  size += n;
  fs.closeSync(fd);
  return size;
}

/** One day of changes: appends in 3 tables, then `ops` row updates or deletes at random positions. */
function mutate(tables, day) {
  const r = rng(mix(2, day));
  const total = tables.reduce((a, t) => a + t.ids.length, 0);
  for (let k = 0; k < 3; k++) {
    const t = tables[r() % Math.min(tables.length, 20)];
    const add = 50 + (r() % Math.max(1, Math.round(t.ids.length * 0.004)));
    for (let j = 0; j < add; j++) t.ids.push(t.next++);
  }
  for (let k = 0; k < o.ops; k++) {
    // A position uniform over all rows of the dump (so big tables get most edits).
    let pick = r() % total;
    let t = tables[0];
    for (const tt of tables) {
      if (pick < tt.ids.length) {
        t = tt;
        break;
      }
      pick -= tt.ids.length;
    }
    if (!t.ids.length) continue;
    const at = pick % t.ids.length;
    if (r() % 10 < 4 && t.ids.length > 3) {
      const id = t.ids[at];
      t.ids.splice(at, 1);
      t.edits.delete(id);
    } else {
      const id = t.ids[at];
      t.edits.set(id, (t.edits.get(id) ?? 0) + 1);
    }
  }
}

// ---- tools -------------------------------------------------------------------------------

function run(cmd, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 << 20 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
  return { s, stdout: r.stdout };
}

function dirBytes(d) {
  let n = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.lstatSync(p).size;
  }
  return n;
}

async function initTools(work) {
  const pwFile = path.join(work, 'password');
  fs.writeFileSync(pwFile, PASSWORD + '\n', { mode: 0o600 });
  const { LocalStore } = await import(path.join(DIST, 'store', 'local.js'));
  const { Repository } = await import(path.join(DIST, 'repo', 'repository.js'));
  const tools = {};
  for (const name of TOOLS) {
    const repo = path.join(work, `repo-${name}`);
    if (name === 'restic') {
      const env = { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
      run('restic', ['-r', repo, 'init', '--repository-version', '2'], env);
      tools[name] = {
        repo,
        snapshot: (src) => run('restic', ['-r', repo, 'backup', '--json', '--host', 'bench', src], env),
      };
    } else {
      fs.mkdirSync(repo);
      // The library's init: the fixed-chunk repository is the same format with `chunker: null`.
      const chunker =
        name === 'snapfill_fixed'
          ? null
          : o.chunker
            ? { type: 'fastcdc', min: o.chunker[0], avg: o.chunker[1], max: o.chunker[2], threshold: 1 << 20 }
            : undefined;
      const r = await Repository.init(new LocalStore(repo), { password: PASSWORD, chunker });
      const env = { SNAPFILL_REPO: repo, SNAPFILL_CACHE: path.join(work, `cache-${name}`), SNAPFILL_PASSWORD_FILE: pwFile };
      tools[name] = {
        repo,
        config: r.config,
        snapshot: (src) => run(process.execPath, [BIN, '--json', 'snapshot', '--host', 'bench', src], env),
      };
    }
  }
  return tools;
}

// ---- main --------------------------------------------------------------------------------

const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const work = fs.mkdtempSync(path.join(o.dir ?? shm, 'snapfill-dump-dedup-'));
if (!o.keep) process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130)); // runs the cleanup above
const src = path.join(work, 'src');
fs.mkdirSync(src);
const dump = path.join(src, 'hosting_db.sql');
const tools = await initTools(work);
const tables = makeTables(o.sizeMb * 1_000_000);
const days = [];
const t0 = Date.now();
for (let day = 0; day < o.days; day++) {
  if (day) mutate(tables, day);
  const tmp = path.join(work, 'next.sql');
  const g0 = Date.now();
  const size = writeDump(tables, tmp, day);
  fs.renameSync(tmp, dump);
  // Dumps run nightly: each gets its own mtime (a same-second rewrite must not look unchanged).
  const when = new Date(Date.UTC(2026, 10, 1 + day, 3, 0, 0));
  fs.utimesSync(dump, when, when);
  const row = { day: day + 1, dump_bytes: size, gen_s: (Date.now() - g0) / 1000 };
  for (const [name, t] of Object.entries(tools)) {
    const r = t.snapshot(src);
    row[`${name}_s`] = r.s;
    row[`${name}_repo`] = dirBytes(t.repo);
  }
  days.push(row);
  console.error(
    `day ${row.day}: dump ${(size / 1e6).toFixed(1)} MB` +
      Object.keys(tools)
        .map((n) => `, ${n} ${(row[`${n}_repo`] / 1e6).toFixed(1)} MB (${row[`${n}_s`].toFixed(1)} s)`)
        .join(''),
  );
}
const last = days[days.length - 1];
const sizeOf = (n) => last[`${n}_repo`];
const result = {
  command: `node bench/dump-dedup.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${work.startsWith('/dev/shm') ? 'tmpfs' : 'disk'}`,
  restic: spawnSync('restic', ['version'], { encoding: 'utf8' }).stdout?.trim(),
  params: { size_mb: o.sizeMb, days: o.days, net_buffer: o.netBuffer, ops: o.ops, tables: o.tables, seed: o.seed },
  chunker: tools.snapfill?.config?.chunker ?? null,
  dumps_total_bytes: days.reduce((a, d) => a + d.dump_bytes, 0),
  repo_bytes: Object.fromEntries(Object.keys(tools).map((n) => [n, sizeOf(n)])),
  ratio_snapfill_restic: tools.snapfill && tools.restic ? sizeOf('snapfill') / sizeOf('restic') : null,
  ratio_snapfill_fixed: tools.snapfill && tools.snapfill_fixed ? sizeOf('snapfill') / sizeOf('snapfill_fixed') : null,
  snapshot_s_total: Object.fromEntries(Object.keys(tools).map((n) => [n, days.reduce((a, d) => a + d[`${n}_s`], 0)])),
  wall_s: (Date.now() - t0) / 1000,
  days,
};
if (o.json) console.log(JSON.stringify(result, null, 2));
else {
  const MB = (b) => (b / 1e6).toFixed(1);
  console.log(`\n${result.command}\n${result.machine}; ${result.restic}`);
  console.log(`${o.days} dumps of ~${MB(days[0].dump_bytes)} MB, ${MB(result.dumps_total_bytes)} MB in all\n`);
  console.log('| tool | repository after last day (MB) | x of dumps total | snapshot time, all days (s) |');
  console.log('|---|---:|---:|---:|');
  for (const n of Object.keys(tools))
    console.log(
      `| ${n} | ${MB(sizeOf(n))} | ${(sizeOf(n) / result.dumps_total_bytes).toFixed(3)} | ${result.snapshot_s_total[n].toFixed(1)} |`,
    );
  if (result.ratio_snapfill_restic !== null) console.log(`\nsnapfill / restic: ${result.ratio_snapfill_restic.toFixed(3)} (target <= 1)`);
  if (result.ratio_snapfill_fixed !== null)
    console.log(`snapfill / fixed 8 MiB chunks: ${result.ratio_snapfill_fixed.toFixed(3)} (target <= 0.3)`);
}
