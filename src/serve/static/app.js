// The snapfill web console: plain JS, no build step. Every view is a call to the JSON API of
// `snapfill serve`; no data is ever put into the page as HTML (text nodes only).
'use strict';

let csrf = null;
let me = null;

/** Builds an element: h('a', { href: '#', onclick: fn }, 'text', child...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, route, params, body) {
  const qs = params ? '?' + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null)) : '';
  const headers = {};
  if (method === 'POST') {
    headers['Content-Type'] = 'application/json';
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  const res = await fetch(route + qs, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  if (res.status === 401 && route !== '/api/login') {
    showLogin();
    throw new ApiError(401, 'log in first');
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || res.statusText);
  return data;
}

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${u[i]}`;
}

function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function age(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

const TYPE_CHAR = { file: '-', hardlink: '-', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 's' };
function modeString(type, mode) {
  const rwx = (b, special, ch) =>
    `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${special ? (b & 1 ? ch : ch.toUpperCase()) : b & 1 ? 'x' : '-'}`;
  return (TYPE_CHAR[type] || '?') + rwx(mode >> 6, mode & 0o4000, 's') + rwx(mode >> 3, mode & 0o2000, 's') + rwx(mode, mode & 0o1000, 't');
}

function short(id) {
  return id.slice(0, 8);
}

function hashParams() {
  const [route, query] = location.hash.slice(1).split('?');
  return { route: route || '/accounts', q: new URLSearchParams(query || '') };
}

function go(route, params) {
  location.hash = route + (params ? '?' + new URLSearchParams(params) : '');
}

function view(...children) {
  const v = $('view');
  v.replaceChildren(...children);
  return v;
}

function errorBox(e) {
  return h('p', { class: 'error', id: 'error' }, e.message);
}

function showLogin() {
  csrf = null;
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('view').replaceChildren();
  $('login').hidden = false;
  $('token').focus();
}

async function start() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      await api('POST', '/api/login', null, { token: $('token').value.trim() });
      $('token').value = '';
      await loggedIn();
    } catch (e) {
      $('login-error').textContent = e.message;
    }
  });
  $('logout').addEventListener('click', async () => {
    await api('POST', '/api/logout', null, {}).catch(() => {});
    showLogin();
  });
  window.addEventListener('hashchange', () => me && render());
  try {
    await loggedIn();
  } catch {
    /* showLogin was called */
  }
}

async function loggedIn() {
  me = await api('GET', '/api/session');
  csrf = me.csrf;
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${me.who}${me.readOnly ? ' · read-only' : ''}`;
  await render();
}

async function render() {
  const { route, q } = hashParams();
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.getAttribute('href') === '#' + route);
  const views = {
    '/accounts': accountsView,
    '/browse': browseView,
    '/versions': versionsView,
    '/diff': diffView,
    '/restore': restoreView,
    '/health': healthView,
  };
  const fn = views[route] || accountsView;
  view(h('p', { class: 'muted' }, 'Loading…'));
  try {
    await fn(q);
  } catch (e) {
    if (e.status !== 401) view(errorBox(e));
  }
}

// ---- Accounts -------------------------------------------------------------------------------

async function accountsView() {
  const data = await api('GET', '/api/accounts');
  const rows = data.accounts.map((a) =>
    h(
      'tr',
      { 'data-account': a.name },
      h(
        'td',
        {},
        h('a', { href: '#/browse?' + new URLSearchParams({ snapshot: a.snapshot.id, path: a.home }), class: 'account-link' }, a.name),
        ' ',
        a.present ? null : h('span', { class: 'badge gone' }, 'removed since'),
      ),
      h('td', { class: 'num' }, bytes(a.bytes)),
      h('td', { class: 'num' }, a.files),
      h(
        'td',
        {},
        when(a.snapshot.time),
        ' ',
        h('span', { class: 'muted mono' }, short(a.snapshot.id)),
        ' ',
        h('span', { class: 'muted' }, a.snapshot.host),
      ),
      h(
        'td',
        {},
        a.change
          ? `+${a.change.added} −${a.change.removed} ~${a.change.changed}${a.change.metadata ? ` (${a.change.metadata} metadata)` : ''}, ${a.change.bytes >= 0 ? '+' : '−'}${bytes(Math.abs(a.change.bytes))}`
          : h('span', { class: 'muted' }, 'first snapshot'),
      ),
      h('td', {}, h('a', { href: '#/restore?' + new URLSearchParams({ account: a.name, snapshot: a.snapshot.id }) }, 'Restore…')),
    ),
  );
  view(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, `Accounts in ${data.accountsRoot}`),
      data.accounts.length
        ? h(
            'table',
            { id: 'accounts' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, 'Account'),
                h('th', { class: 'num' }, 'Size'),
                h('th', { class: 'num' }, 'Files'),
                h('th', {}, 'Last snapshot'),
                h('th', {}, 'Change since previous'),
                h('th', {}, ''),
              ),
            ),
            h('tbody', {}, rows),
          )
        : h('p', { class: 'muted' }, `No snapshot holds ${data.accountsRoot}.`),
    ),
  );
}

// ---- Browse ---------------------------------------------------------------------------------

const PAGE = 200;

function parentOf(p) {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function crumbs(path, snapshot) {
  const parts = path.split('/').filter(Boolean);
  const out = [h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path: '/' }) }, '/')];
  let cur = '';
  for (const p of parts) {
    cur += '/' + p;
    out.push(h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path: cur }) }, p), '/');
  }
  return h('span', { class: 'crumbs mono' }, out);
}

async function snapshotSelect(path, selected, id) {
  const data = await api('GET', '/api/snapshots', { path });
  const sel = h(
    'select',
    { id },
    data.snapshots
      .slice()
      .reverse()
      .map((s) =>
        h('option', { value: s.id, selected: !!selected && s.id.startsWith(selected) }, `${when(s.time)} · ${short(s.id)} · ${s.host}`),
      ),
  );
  return { sel, snapshots: data.snapshots };
}

async function browseView(q) {
  const path = q.get('path') || me.accountsRoot;
  const offset = Number(q.get('offset') || 0);
  let snapshot = q.get('snapshot') || 'latest';
  const page = await api('GET', '/api/ls', { snapshot, path, offset, limit: PAGE });
  snapshot = page.snapshot.id;
  const { sel } = await snapshotSelect(path, snapshot, 'browse-snapshot');
  sel.addEventListener('change', () => go('/browse', { snapshot: sel.value, path }));
  const selected = new Set();
  const restoreBtn = h('button', { id: 'restore-selected', disabled: true }, 'Restore selected…');
  restoreBtn.addEventListener('click', () => go('/restore', { snapshot, paths: [...selected].join('\n') }));
  const rows = page.entries.map((e) => {
    const box = h('input', { type: 'checkbox', class: 'pick', 'data-path': e.path });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(e.path);
      else selected.delete(e.path);
      restoreBtn.disabled = selected.size === 0;
    });
    const isDir = e.type === 'dir';
    const isFile = e.type === 'file' || e.type === 'hardlink';
    const dl = '/api/download?' + new URLSearchParams({ snapshot, path: e.path });
    return h(
      'tr',
      { 'data-name': e.name },
      h('td', {}, box),
      h('td', { class: 'mono' }, modeString(e.type, e.mode)),
      h('td', {}, `${e.user || e.uid}:${e.group || e.gid}`),
      h('td', { class: 'num' }, isDir ? '' : bytes(e.size)),
      h('td', {}, when(e.mtime)),
      h(
        'td',
        { class: 'path' },
        isDir ? h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path: e.path }), class: 'dir-link' }, e.name + '/') : e.name,
        e.type === 'symlink' ? h('span', { class: 'muted' }, ` → ${e.target}`) : null,
      ),
      h(
        'td',
        {},
        isFile
          ? [
              h('a', { href: '#/versions?' + new URLSearchParams({ path: e.path }), class: 'versions-link' }, 'versions'),
              ' · ',
              h('a', { href: dl, download: e.name }, 'download'),
            ]
          : null,
      ),
    );
  });
  const nav = h(
    'div',
    { class: 'row' },
    offset > 0
      ? h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path, offset: Math.max(0, offset - PAGE) }) }, '← previous')
      : null,
    h('span', { class: 'muted' }, page.total ? `${offset + 1}–${offset + page.entries.length} of ${page.total}` : 'empty directory'),
    offset + PAGE < page.total
      ? h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path, offset: offset + PAGE }), id: 'next-page' }, 'next →')
      : null,
  );
  const diffTo = h(
    'select',
    { id: 'diff-other' },
    h('option', { value: '' }, 'compare with…'),
    [...sel.options].filter((o) => o.value !== snapshot).map((o) => h('option', { value: o.value }, o.textContent)),
  );
  diffTo.addEventListener('change', () => diffTo.value && go('/diff', { a: diffTo.value, b: snapshot, path }));
  view(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Browse'),
      h(
        'div',
        { class: 'row' },
        h('label', {}, 'Snapshot'),
        sel,
        h('label', {}, 'Path'),
        crumbs(path, snapshot),
        path !== '/' ? h('a', { href: '#/browse?' + new URLSearchParams({ snapshot, path: parentOf(path) }) }, '↑ up') : null,
      ),
      h(
        'div',
        { class: 'row' },
        restoreBtn,
        h('a', { href: '#/restore?' + new URLSearchParams({ snapshot, paths: path }), id: 'restore-here' }, 'Restore this directory…'),
        diffTo,
      ),
      page.damage.length
        ? h(
            'p',
            { class: 'warn' },
            `${page.damage.length} damaged entries below this path: ${page.damage[0].path}: ${page.damage[0].message}`,
          )
        : null,
      nav,
      h(
        'table',
        { id: 'listing' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, ''),
            h('th', {}, 'Mode'),
            h('th', {}, 'Owner'),
            h('th', { class: 'num' }, 'Size'),
            h('th', {}, 'Modified'),
            h('th', {}, 'Name'),
            h('th', {}, ''),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}

// ---- Versions -------------------------------------------------------------------------------

async function versionsView(q) {
  const path = q.get('path');
  const data = await api('GET', '/api/versions', { path });
  const f = data.found;
  const rows = f
    ? f.versions.map((v) =>
        h(
          'tr',
          { class: 'version' },
          h(
            'td',
            {},
            v.snapshots.map((s, i) => [i ? h('br') : null, `${when(s.time)} `, h('span', { class: 'muted mono' }, short(s.id))]),
          ),
          h('td', { class: 'num' }, bytes(v.size)),
          h('td', {}, when(v.mtime)),
          h('td', { class: 'mono' }, modeString(v.type, v.mode), ` ${v.user || v.uid}:${v.group || v.gid}`),
          h(
            'td',
            {},
            v.first
              ? h('span', { class: 'muted' }, 'first version')
              : v.changes.length
                ? v.changes.join(', ')
                : h('span', { class: 'muted' }, 'ctime only'),
          ),
          h(
            'td',
            {},
            h(
              'a',
              {
                href: '/api/download?' + new URLSearchParams({ snapshot: v.snapshots[v.snapshots.length - 1].id, path: f.path }),
                download: path.split('/').pop(),
              },
              'download',
            ),
            ' · ',
            h(
              'a',
              {
                href: '#/restore?' + new URLSearchParams({ snapshot: v.snapshots[v.snapshots.length - 1].id, paths: f.path }),
                class: 'restore-version',
              },
              'restore this version…',
            ),
          ),
        ),
      )
    : [];
  view(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Versions of ', h('span', { class: 'mono' }, path)),
      h('p', {}, h('a', { href: '#/browse?' + new URLSearchParams({ path: parentOf(path) }) }, '← back to ' + parentOf(path))),
      f
        ? h('p', { class: 'muted', id: 'version-count' }, `${f.versions.length} distinct versions`)
        : h('p', { class: 'muted' }, 'No snapshot holds this path.'),
      data.damage.length
        ? h('p', { class: 'warn' }, `damage that may hide versions: ${data.damage.map((d) => `${d.path}: ${d.message}`).join('; ')}`)
        : null,
      h(
        'table',
        { id: 'versions' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'In snapshots'),
            h('th', { class: 'num' }, 'Size'),
            h('th', {}, 'Modified'),
            h('th', {}, 'Mode, owner'),
            h('th', {}, 'What changed'),
            h('th', {}, ''),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}

// ---- Diff -----------------------------------------------------------------------------------

async function diffView(q) {
  const path = q.get('path') || '/';
  const data = await api('GET', '/api/diff', { a: q.get('a'), b: q.get('b'), path });
  const list = (kind, label) =>
    data.counts[kind]
      ? h(
          'div',
          {},
          h('h2', {}, `${label}: ${data.counts[kind]}`),
          h(
            'ul',
            { class: 'paths mono' },
            data.paths[kind].map((p) => h('li', {}, p)),
          ),
          data.counts[kind] > data.paths[kind].length
            ? h('p', { class: 'muted' }, `… and ${data.counts[kind] - data.paths[kind].length} more`)
            : null,
        )
      : null;
  view(
    h(
      'section',
      { class: 'card', id: 'diff' },
      h('h1', {}, 'Changes in ', h('span', { class: 'mono' }, data.path)),
      h('p', {}, `from ${when(data.a.time)} (${short(data.a.id)}) to ${when(data.b.time)} (${short(data.b.id)})`),
      list('added', 'Added'),
      list('removed', 'Removed'),
      list('changed', 'Content changed'),
      list('metadata', 'Metadata only'),
      Object.values(data.counts).every((n) => n === 0) ? h('p', { class: 'muted' }, 'No differences.') : null,
    ),
  );
}

// ---- Restore --------------------------------------------------------------------------------

function stagingDefault(q) {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  const who = (
    q.get('account') ||
    (q.get('paths') || 'restore').split('\n')[0].split('/').filter(Boolean).slice(-1)[0] ||
    'restore'
  ).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${who}-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}`;
}

async function restoreView(q) {
  const account = q.get('account') || '';
  const scopePath = account ? `${me.accountsRoot}/${account}` : (q.get('paths') || '').split('\n')[0] || me.accountsRoot;
  const { sel } = await snapshotSelect(scopePath, q.get('snapshot') || '', 'restore-snapshot');
  const form = {
    account: h('input', { type: 'text', id: 'restore-account', value: account, placeholder: 'account (optional)' }),
    paths: h('textarea', { id: 'restore-paths', placeholder: 'paths inside the snapshot, one per line' }, q.get('paths') || ''),
    mode: h('select', { id: 'restore-mode' }, [
      h('option', { value: 'missing' }, 'missing — put back what is gone, touch nothing else'),
      h('option', { value: 'changed' }, 'changed — also rewrite files that differ (not newer ones)'),
      h('option', { value: 'checksum' }, 'checksum — like changed, and compare content'),
      h('option', { value: 'metadata' }, 'metadata — owners, modes, times only'),
    ]),
    target: h(
      'select',
      { id: 'restore-target' },
      h('option', { value: 'staging' }, `staging directory under ${me.stagingRoot}`),
      h('option', { value: 'in-place' }, 'in place (the live files)'),
    ),
    staging: h('input', { type: 'text', id: 'restore-staging', value: stagingDefault(q) }),
    del: h('input', { type: 'checkbox', id: 'restore-delete' }),
    newer: h('input', { type: 'checkbox', id: 'restore-overwrite-newer' }),
  };
  form.target.addEventListener('change', () => (form.staging.disabled = form.target.value !== 'staging'));
  const out = h('div', { id: 'restore-out' });
  const preview = h('button', { id: 'preview' }, 'Preview');
  const request = () => ({
    snapshot: sel.value,
    account: form.account.value.trim() || undefined,
    paths: form.paths.value
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean),
    mode: form.mode.value,
    target: form.target.value,
    staging: form.target.value === 'staging' ? form.staging.value.trim() : undefined,
    delete: form.del.checked,
    overwriteNewer: form.newer.checked,
  });
  preview.addEventListener('click', async () => {
    out.replaceChildren(h('p', { class: 'muted' }, 'Planning (dry run)…'));
    try {
      const p = await api('POST', '/api/restore/plan', null, request());
      out.replaceChildren(planCard(p));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  });
  view(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Restore'),
      h('div', { class: 'row' }, h('label', {}, 'Snapshot'), sel),
      h('div', { class: 'row' }, h('label', {}, 'Account'), form.account, h('span', { class: 'muted' }, `(${me.accountsRoot}/<account>)`)),
      h('div', {}, h('label', { class: 'muted' }, 'Paths'), form.paths),
      h('div', { class: 'row' }, h('label', {}, 'Mode'), form.mode),
      h('div', { class: 'row' }, h('label', {}, 'Target'), form.target, form.staging),
      h(
        'div',
        { class: 'row' },
        h('label', {}, form.del, ' delete what the snapshot does not have (inside the scope)'),
        h('label', {}, form.newer, ' overwrite files modified after the snapshot'),
      ),
      h('div', { class: 'row' }, preview, me.readOnly ? h('span', { class: 'warn' }, 'read-only console: you can preview, not run') : null),
    ),
    out,
  );
}

function countsTable(planned) {
  const rows = Object.entries(planned)
    .sort()
    .map(([k, v]) =>
      h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, v.count), h('td', { class: 'num' }, v.bytes ? bytes(v.bytes) : '')),
    );
  return h(
    'table',
    { class: 'plan' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Action'), h('th', { class: 'num' }, 'Entries'), h('th', { class: 'num' }, 'Bytes'))),
    h('tbody', {}, rows),
  );
}

function pathList(title, list, cls) {
  if (!list.count) return null;
  return h(
    'div',
    {},
    h('h2', { class: cls }, `${title}: ${list.count}`),
    h(
      'ul',
      { class: 'paths mono' },
      list.first.map((p) => h('li', {}, typeof p === 'string' ? p : `${p.path}: ${p.message}`)),
    ),
    list.count > list.first.length ? h('p', { class: 'muted' }, `… and ${list.count - list.first.length} more`) : null,
  );
}

function summaryStats(r, verb) {
  return h(
    'div',
    { class: 'grid2' },
    h('div', { class: 'stat' }, h('b', { id: 'stat-files' }, r.files_restored), `files ${verb}`),
    h(
      'div',
      { class: 'stat' },
      h('b', {}, bytes(r.dry_run ? Object.values(r.planned).reduce((n, v) => n + v.bytes, 0) : r.bytes_written)),
      r.dry_run ? 'to write' : 'written',
    ),
    h('div', { class: 'stat' }, h('b', {}, r.dirs_created), 'directories created'),
    h('div', { class: 'stat' }, h('b', {}, r.metadata_fixed), 'metadata fixed'),
    h('div', { class: 'stat' }, h('b', {}, r.files_skipped), 'files skipped (already right)'),
    h('div', { class: 'stat' }, h('b', {}, r.deleted), verb === 'restored' ? 'deleted' : 'to delete'),
  );
}

function planCard(p) {
  const s = p.summary;
  const run = h('button', { id: 'run-restore', disabled: p.readOnly }, 'Run this restore');
  const card = h(
    'section',
    { class: 'card', id: 'plan' },
    h('h1', {}, 'Plan (dry run: nothing changed yet)'),
    h(
      'p',
      {},
      `Snapshot ${short(s.snapshot.id)} of ${when(s.snapshot.time)} (${s.snapshot.host}), mode ${s.mode}, into `,
      h('span', { class: 'mono' }, s.target),
      '.',
    ),
    h('p', { class: 'muted' }, 'Writes below: ', h('span', { class: 'mono' }, p.destinations.join(', '))),
    summaryStats(s, 'to restore'),
    countsTable(s.planned),
    pathList('Left alone: modified after the snapshot', s.skipped_newer, 'warn'),
    pathList('Would delete (absent from the snapshot)', s.deletes, 'warn'),
    pathList('Problems', s.errors, 'error'),
    h('div', { class: 'row' }, run, p.readOnly ? h('span', { class: 'warn' }, 'read-only console') : null),
  );
  run.addEventListener('click', async () => {
    run.disabled = true;
    try {
      const job = await api('POST', '/api/restore/run', null, { plan: p.plan });
      card.replaceWith(progressCard(job.id));
    } catch (e) {
      card.append(errorBox(e));
    }
  });
  return card;
}

function progressCard(id) {
  const bar = h('div', {});
  const line = h('p', { id: 'progress-line' }, 'Starting…');
  const body = h('div', {});
  const card = h('section', { class: 'card', id: 'progress' }, h('h1', {}, 'Restore running'), h('div', { class: 'bar' }, bar), line, body);
  const poll = async () => {
    let st;
    try {
      st = await api('GET', '/api/restore/status', { id });
    } catch (e) {
      body.replaceChildren(errorBox(e));
      return;
    }
    const pr = st.progress;
    if (pr) {
      const pct = pr.plannedBytes
        ? Math.min(100, (100 * pr.bytes) / pr.plannedBytes)
        : pr.plannedFiles
          ? Math.min(100, (100 * pr.files) / pr.plannedFiles)
          : 0;
      bar.style.width = `${pct.toFixed(0)}%`;
      line.textContent = `${pr.phase}: ${pr.files}/${pr.plannedFiles} files, ${bytes(pr.bytes)} of ${bytes(pr.plannedBytes)}`;
    }
    if (st.state === 'running') {
      setTimeout(poll, 500);
      return;
    }
    bar.style.width = '100%';
    card.querySelector('h1').textContent = st.state === 'done' ? 'Restore finished' : 'Restore failed';
    card.id = st.state === 'done' ? 'report' : 'report-failed';
    if (st.state === 'failed') {
      line.textContent = '';
      body.replaceChildren(h('p', { class: 'error' }, st.error));
      return;
    }
    const r = st.result;
    line.replaceChildren(
      h(
        'span',
        { class: r.errors.count ? 'warn' : 'ok' },
        r.errors.count ? `finished with ${r.errors.count} errors` : 'finished without errors',
      ),
      ` in ${r.duration_s.toFixed(1)} s, into `,
      h('span', { class: 'mono' }, r.target),
    );
    body.replaceChildren(
      summaryStats(r, 'restored'),
      pathList('Left alone: modified after the snapshot', r.skipped_newer, 'warn'),
      pathList('Errors', r.errors, 'error'),
    );
  };
  void poll();
  return card;
}

// ---- Health ---------------------------------------------------------------------------------

async function healthView() {
  const data = await api('GET', '/api/health');
  const hosts = data.hosts.map((x) =>
    h(
      'tr',
      {},
      h('td', {}, x.host),
      h('td', {}, when(x.newest.time), ' ', h('span', { class: 'muted mono' }, short(x.newest.id))),
      h('td', { class: x.ageS > 86400 ? 'warn' : '' }, age(x.ageS)),
      h('td', { class: 'num' }, x.snapshots),
      h('td', { class: 'num' }, x.newest.summary.files_total ?? ''),
      h('td', { class: x.newest.summary.errors ? 'error num' : 'num' }, x.newest.summary.errors ?? ''),
    ),
  );
  const lr = data.lastRun;
  const checkOut = h(
    'div',
    { id: 'check-out' },
    data.lastCheck ? checkResult(data.lastCheck) : h('p', { class: 'muted' }, 'No check run from this console yet.'),
  );
  const checkBtn = h('button', { id: 'run-check', class: 'secondary' }, 'Run repository check');
  checkBtn.addEventListener('click', async () => {
    checkBtn.disabled = true;
    checkOut.replaceChildren(h('p', { class: 'muted' }, 'Checking…'));
    try {
      checkOut.replaceChildren(checkResult(await api('POST', '/api/check', null, {})));
    } catch (e) {
      checkOut.replaceChildren(errorBox(e));
    }
    checkBtn.disabled = false;
  });
  view(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Snapshots per host'),
      h(
        'table',
        { id: 'hosts' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Host'),
            h('th', {}, 'Newest snapshot'),
            h('th', {}, 'Age'),
            h('th', { class: 'num' }, 'Snapshots'),
            h('th', { class: 'num' }, 'Files'),
            h('th', { class: 'num' }, 'Errors'),
          ),
        ),
        h('tbody', {}, hosts),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Last scheduled run on this machine'),
      lr
        ? h(
            'p',
            { id: 'last-run' },
            h('span', { class: lr.success ? 'ok' : 'error' }, lr.success ? 'succeeded' : 'FAILED'),
            ` at ${when(lr.ended)}; last success ${lr.lastSuccess ? when(lr.lastSuccess) : 'never'} `,
            h('span', { class: 'muted' }, `(from ${lr.source})`),
          )
        : h(
            'p',
            { class: 'muted' },
            data.lastRunProblem ||
              'No monitoring file configured (monitoring.prometheus_textfile / json_log in the config file), or no run yet.',
          ),
      data.errors.length
        ? h(
            'ul',
            { class: 'paths mono error' },
            data.errors.map((e) => h('li', {}, `${when(e.time)} ${e.msg}`)),
          )
        : null,
    ),
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Repository check'),
      h('div', { class: 'row' }, checkBtn, h('span', { class: 'muted' }, 'structure and indexes; no pack data read')),
      checkOut,
    ),
  );
}

function checkResult(c) {
  if (c.error) return h('p', { class: 'error' }, `${when(c.time)}: check failed: ${c.error}`);
  const r = c.result;
  return h(
    'div',
    {},
    h(
      'p',
      {},
      h('span', { class: r.ok ? 'ok' : 'error' }, r.ok ? 'OK' : 'PROBLEMS'),
      ` at ${when(c.time)} by ${c.who}: ${r.snapshots_checked} snapshots, ${r.trees_checked} trees, ${r.packs_checked} packs checked`,
    ),
    r.errors.length
      ? h(
          'ul',
          { class: 'paths mono error' },
          r.errors.slice(0, 50).map((e) => h('li', {}, `${e.path}: ${e.message}`)),
        )
      : null,
  );
}

document.addEventListener('DOMContentLoaded', () => void start());
