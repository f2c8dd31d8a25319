/*
 * livefs: the live-file-system calls Node lacks (getdents64, fstatat, openat, mkdirat,
 * renameat, linkat, utimensat with nanoseconds), each a whole directory or a whole batch per
 * crossing from JavaScript. Synchronous: it runs inside the worker threads.
 *
 * Rules: every buffer is bounded by lengths the caller passed (checked here); nothing is
 * allocated per entry; a failure of one entry is its errno in the result, never a throw. Only
 * a malformed call (wrong argument types or sizes) throws.
 *
 * Names cross as one Buffer of NUL-terminated names plus a Uint32Array of offsets (n + 1):
 * name i is buf[offs[i] .. offs[i+1] - 1) and buf[offs[i+1] - 1] is its NUL.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <node_api.h>
#include "napi_util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_ARGS 8
#define ABI 3 /* bumped when a call's arguments change: native.ts refuses a stale build */
#define U64_PER_ENTRY 5 /* ino, dev, size, blocks, (spare) */
#define I64_PER_ENTRY 3 /* atime, mtime, ctime in ns */
#define U32_PER_ENTRY 5 /* mode, uid, gid, nlink, rdev */
#define ZERO_RUN 65536  /* an all-zero block of this size is left as a hole */

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

typedef struct {
  char *p;
  size_t n;
} bytes;

typedef struct {
  const char *buf;
  const uint32_t *offs;
  size_t count;
} names;

static int get_i32(napi_env env, napi_value v, int32_t *out) { return napi_get_value_int32(env, v, out) == napi_ok; }

static int get_buffer(napi_env env, napi_value v, bytes *out) {
  void *d;
  size_t n;
  if (napi_get_buffer_info(env, v, &d, &n) != napi_ok) return 0;
  out->p = d;
  out->n = n;
  return 1;
}

/* Names buffer + offsets; every offset is checked to lie inside the buffer, in order. */
static int get_names(napi_env env, napi_value vb, napi_value vo, names *out) {
  bytes b;
  void *o;
  size_t len;
  if (!get_buffer(env, vb, &b) || !get_typed(env, vo, napi_uint32_array, &o, &len) || len == 0) return 0;
  out->buf = b.p;
  out->offs = o;
  out->count = len - 1;
  for (size_t i = 0; i < out->count; i++)
    if (out->offs[i] >= out->offs[i + 1] || out->offs[i + 1] > b.n) return 0;
  return 1;
}

/* Name i, or NULL when it is not one path component (empty, ".", "..", '/', inner NUL, too long). */
static const char *name_at(const names *ns, size_t i) {
  const char *s = ns->buf + ns->offs[i];
  size_t n = ns->offs[i + 1] - ns->offs[i] - 1;
  if (s[n] != '\0' || n == 0 || n > NAME_MAX || strlen(s) != n || memchr(s, '/', n)) return NULL;
  if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return NULL;
  return s;
}

static size_t args(napi_env env, napi_callback_info info, napi_value *argv) {
  size_t argc = MAX_ARGS;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc;
}

static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }
static void fill_stat(const struct stat *st, uint64_t *o64, int64_t *oi, uint32_t *o32);

static struct timespec ns_ts(int64_t ns) {
  struct timespec t;
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

/*
 * scan(dirFd, nameBuf, nameOffs, u64, i64, u32, errs, flags) -> count, or -errno when the
 * directory cannot be read. flags: 1 = from the start, 2 = names only (no fstatat; ino and the
 * d_type's mode bits only, 0 when the file system does not say). Fills at most the capacity the arrays give; when it is full, the
 * directory offset is left after the last entry returned, so the next call continues.
 */
static napi_value scan(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t fd, restart;
  bytes nb;
  uint32_t *offs, *u32;
  uint64_t *u64;
  int64_t *i64;
  int32_t *errs;
  size_t no, n64, ni64, n32, ne;
  if (args(env, info, a) < 8 || !get_i32(env, a[0], &fd) || !get_buffer(env, a[1], &nb) ||
      !get_typed(env, a[2], napi_uint32_array, (void **)&offs, &no) || !get_typed(env, a[3], napi_biguint64_array, (void **)&u64, &n64) ||
      !get_typed(env, a[4], napi_bigint64_array, (void **)&i64, &ni64) || !get_typed(env, a[5], napi_uint32_array, (void **)&u32, &n32) ||
      !get_typed(env, a[6], napi_int32_array, (void **)&errs, &ne) || !get_i32(env, a[7], &restart) || no == 0)
    return fail(env, "scan(dirFd, nameBuf, nameOffs, u64, i64, u32, errs, restart)");
  size_t cap = no - 1;
  if (n64 / U64_PER_ENTRY < cap) cap = n64 / U64_PER_ENTRY;
  if (ni64 / I64_PER_ENTRY < cap) cap = ni64 / I64_PER_ENTRY;
  if (n32 / U32_PER_ENTRY < cap) cap = n32 / U32_PER_ENTRY;
  if (ne < cap) cap = ne;
  int names_only = restart & 2; /* existence only: no fstatat, the type from d_type */
  if ((restart & 1) && lseek(fd, 0, SEEK_SET) < 0) return num(env, -errno);
  char dbuf[32768] __attribute__((aligned(8)));
  size_t count = 0, used = 0;
  off_t next = lseek(fd, 0, SEEK_CUR); /* the cookie of the first entry not yet returned */
  offs[0] = 0;
  for (;;) {
    long got = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf);
    if (got < 0) return num(env, -errno);
    if (got == 0) return num(env, (int64_t)count);
    for (long pos = 0; pos < got;) {
      struct linux_dirent64 *d = (struct linux_dirent64 *)(dbuf + pos);
      pos += d->d_reclen;
      size_t len = strlen(d->d_name) + 1;
      if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0 && (count == cap || used + len > nb.n))
        return lseek(fd, next, SEEK_SET) < 0 ? num(env, -errno) : num(env, (int64_t)count); /* full: resume here */
      next = d->d_off;
      if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
      memcpy(nb.p + used, d->d_name, len);
      used += len;
      offs[count + 1] = (uint32_t)used;
      struct stat st;
      uint64_t *o64 = u64 + count * U64_PER_ENTRY;
      int64_t *oi = i64 + count * I64_PER_ENTRY;
      uint32_t *o32 = u32 + count * U32_PER_ENTRY;
      if (names_only) {
        errs[count] = 0;
        memset(o64, 0, U64_PER_ENTRY * 8), memset(oi, 0, I64_PER_ENTRY * 8), memset(o32, 0, U32_PER_ENTRY * 4);
        o64[0] = d->d_ino;
        o32[0] = d->d_type == DT_UNKNOWN ? 0 : DTTOIF(d->d_type);
      } else if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errs[count] = 0;
        fill_stat(&st, o64, oi, o32);
      } else {
        errs[count] = errno;
        memset(o64, 0, U64_PER_ENTRY * 8), memset(oi, 0, I64_PER_ENTRY * 8), memset(o32, 0, U32_PER_ENTRY * 4);
      }
      count++;
    }
  }
}

/* The (dirFd, names, index) arguments most small calls share: -errno when the name is not one component. */
static int one_name(napi_env env, napi_value vb, napi_value vo, const char **out) {
  names ns;
  if (!get_names(env, vb, vo, &ns) || ns.count != 1) return -EINVAL - 1000;
  *out = name_at(&ns, 0);
  return *out ? 0 : -EINVAL;
}

#define NAME_ARG(dst, ib, io)                                          \
  const char *dst;                                                     \
  {                                                                    \
    int rc_ = one_name(env, a[ib], a[io], &dst);                       \
    if (rc_ < -1000) return fail(env, "names: Buffer + Uint32Array"); \
    if (rc_ < 0) return num(env, rc_);                                 \
  }

/* openDir(parentFd, nameBuf, nameOffs) -> fd or -errno; a symlink in the way is ELOOP or ENOTDIR. */
static napi_value open_dir(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  if (args(env, info, a) < 3 || !get_i32(env, a[0], &dfd)) return fail(env, "openDir(parentFd, nameBuf, nameOffs)");
  NAME_ARG(name, 1, 2);
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return num(env, fd < 0 ? -errno : fd);
}

/* mkdirAt(dirFd, nameBuf, nameOffs, mode) -> 0 or -errno */
static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd, mode;
  if (args(env, info, a) < 4 || !get_i32(env, a[0], &dfd) || !get_i32(env, a[3], &mode)) return fail(env, "mkdirAt(dirFd, nameBuf, nameOffs, mode)");
  NAME_ARG(name, 1, 2);
  return num(env, mkdirat(dfd, name, (mode_t)mode) < 0 ? -errno : 0);
}

/* symlinkAt(targetBuf, dirFd, nameBuf, nameOffs) -> 0 or -errno; the target is any bytes without NUL. */
static napi_value symlink_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  bytes t;
  char target[PATH_MAX];
  if (args(env, info, a) < 4 || !get_buffer(env, a[0], &t) || !get_i32(env, a[1], &dfd)) return fail(env, "symlinkAt(target, dirFd, nameBuf, nameOffs)");
  NAME_ARG(name, 2, 3);
  if (t.n == 0 || t.n >= sizeof target || memchr(t.p, '\0', t.n)) return num(env, t.n ? -ENAMETOOLONG : -ENOENT);
  memcpy(target, t.p, t.n);
  target[t.n] = '\0';
  return num(env, symlinkat(target, dfd, name) < 0 ? -errno : 0);
}

/* mknodAt(dirFd, nameBuf, nameOffs, mode, rdev) -> 0 or -errno (FIFOs, devices) */
static napi_value mknod_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd, mode;
  int64_t rdev;
  if (args(env, info, a) < 5 || !get_i32(env, a[0], &dfd) || !get_i32(env, a[3], &mode) || napi_get_value_int64(env, a[4], &rdev) != napi_ok)
    return fail(env, "mknodAt(dirFd, nameBuf, nameOffs, mode, rdev)");
  NAME_ARG(name, 1, 2);
  return num(env, mknodat(dfd, name, (mode_t)mode, (dev_t)rdev) < 0 ? -errno : 0);
}

/* linkAt(oldDirFd, oldBuf, oldOffs, newDirFd, newBuf, newOffs) -> 0 or -errno; never follows, never clobbers. */
static napi_value link_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t ofd, nfd;
  if (args(env, info, a) < 6 || !get_i32(env, a[0], &ofd) || !get_i32(env, a[3], &nfd)) return fail(env, "linkAt(oldDirFd, oldBuf, oldOffs, newDirFd, newBuf, newOffs)");
  NAME_ARG(oldn, 1, 2);
  NAME_ARG(newn, 4, 5);
  return num(env, linkat(ofd, oldn, nfd, newn, 0) < 0 ? -errno : 0);
}

/* unlinkAt(dirFd, nameBuf, nameOffs, removeDir) -> 0 or -errno */
static napi_value unlink_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd, dir;
  if (args(env, info, a) < 4 || !get_i32(env, a[0], &dfd) || !get_i32(env, a[3], &dir)) return fail(env, "unlinkAt(dirFd, nameBuf, nameOffs, removeDir)");
  NAME_ARG(name, 1, 2);
  return num(env, unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0);
}

/*
 * Writes n bytes into a new, empty file, leaving all-zero runs of ZERO_RUN bytes as holes. The
 * length is set by ftruncate only when the data ends in a hole: otherwise the last write set it
 * (one syscall less per file, and most files are small).
 */
static int write_sparse(int fd, const char *p, size_t n) {
  static const char zero[ZERO_RUN];
  size_t end = 0; /* the end of the last byte written */
  for (size_t at = 0; at < n;) {
    size_t len = n - at < ZERO_RUN ? n - at : ZERO_RUN;
    if (n > ZERO_RUN && len == ZERO_RUN && memcmp(p + at, zero, len) == 0) {
      at += len;
      continue;
    }
    ssize_t w = pwrite(fd, p + at, len, (off_t)at);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    at += (size_t)w;
    end = at;
  }
  return end == n ? 0 : ftruncate(fd, (off_t)n); /* a trailing hole: the final size */
}

/*
 * Flags of an entry put in place: 1 chown; 2 no clobber (never replace: see place_new); 4 keep
 * newer (a final name modified after times[2] is left alone); 8 clear a leftover temp of an
 * interrupted run first; 16 created with its final permission bits (umask 0): fchmod only for
 * set-id and sticky bits.
 */
enum { F_CHOWN = 1, F_NOCLOBBER = 2, F_KEEP_NEWER = 4, F_CLEAR = 8, F_FINAL_MODE = 16, F_SAME_MODE = 32, F_SAME_TIMES = 64 };
enum { STEP_OPEN = 1, STEP_WRITE, STEP_CHOWN, STEP_CHMOD, STEP_TIMES, STEP_PLACE, STEP_NEWER, STEP_META };

/* Whether the final name holds an entry modified after `keep` (the customer's: left alone). */
static int newer_there(int dfd, const char *fin, int64_t keep) {
  struct stat st;
  return fstatat(dfd, fin, &st, AT_SYMLINK_NOFOLLOW) == 0 && ts_ns(st.st_mtim) > keep;
}

static int unsupported(int err) {
  return err == EINVAL || err == ENOSYS || err == ENOTSUP || err == EOPNOTSUPP;
}

static int no_noreplace; /* test hook: behave as where RENAME_NOREPLACE is unsupported */

/*
 * Gives a temp entry its final name only if that name is free (EEXIST otherwise): one atomic
 * rename with RENAME_NOREPLACE where the file system has it (ext4, xfs, btrfs, tmpfs); else a
 * link, which never clobbers either (NFS, some FUSE); where hard links are refused too, a
 * check-then-rename, a tiny window instead of none. 0 or errno; the temp is left to the caller.
 */
static int place_new(int dfd, const char *tmp, const char *fin, int *linked) {
  int err = EINVAL;
  if (!__atomic_load_n(&no_noreplace, __ATOMIC_RELAXED)) err = renameat2(dfd, tmp, dfd, fin, RENAME_NOREPLACE) == 0 ? 0 : errno;
  if (!unsupported(err)) return err;
  if (linkat(dfd, tmp, dfd, fin, 0) == 0) {
    *linked = 1;
    return 0;
  }
  err = errno;
  if (err != EPERM && err != EXDEV && err != ENOTSUP && err != EOPNOTSUPP && err != EMLINK) return err;
  struct stat st;
  if (fstatat(dfd, fin, &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
  return renameat(dfd, tmp, dfd, fin) == 0 ? 0 : errno;
}

/* Moves a finished temp entry to its final name; on any failure the temp is removed. */
static int place_one(int dfd, const char *tmp, const char *fin, uint32_t flags, int64_t keep, int *step) {
  *step = STEP_PLACE;
  int err, linked = 0;
  if ((flags & F_KEEP_NEWER) && newer_there(dfd, fin, keep)) {
    *step = STEP_NEWER;
    err = EEXIST;
  } else if (!(flags & F_NOCLOBBER)) {
    err = renameat(dfd, tmp, dfd, fin) == 0 ? 0 : errno;
  } else {
    err = place_new(dfd, tmp, fin, &linked);
  }
  /* Renamed: the temp name is gone. Linked, or failed: it is removed. */
  if (err || linked) unlinkat(dfd, tmp, 0);
  return err;
}

/* Length, owner, mode and times of an open temp file, then closed: 0 or errno (step set). */
static int seal_fd(int fd, int64_t size, const uint32_t *m, const int64_t *t, int *step) {
  int ok = 1;
  if (size >= 0) ok = (*step = STEP_WRITE, ftruncate(fd, (off_t)size) == 0);
  ok = ok && (*step = STEP_CHOWN, !(m[3] & F_CHOWN) || fchown(fd, m[1], m[2]) == 0);
  /* chown first: it clears set-id bits that the chmod then sets. */
  ok = ok && (*step = STEP_CHMOD, ((m[3] & F_FINAL_MODE) && !(m[0] & 07000)) || fchmod(fd, m[0] & 07777) == 0);
  if (ok) {
    struct timespec ts[2] = {ns_ts(t[0]), ns_ts(t[1])};
    *step = STEP_TIMES;
    ok = futimens(fd, ts) == 0;
  }
  int err = ok ? 0 : errno;
  if (close(fd) < 0 && ok) err = errno; /* a deferred write error (NFS, quota) */
  return err;
}

static int open_temp(int dfd, const char *tmp, const uint32_t *m) {
  if (m[3] & F_CLEAR) unlinkat(dfd, tmp, 0);
  return openat(dfd, tmp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, (m[3] & F_FINAL_MODE) ? (m[0] & 0777) : 0600);
}

/* One file: tmp created, written, owned, moded, timed, then placed; the tmp never survives a failure. */
static int install_one(int dfd, const char *tmp, const char *fin, const char *data, size_t n, const uint32_t *m, const int64_t *t, int *step) {
  *step = STEP_NEWER;
  if ((m[3] & F_KEEP_NEWER) && newer_there(dfd, fin, t[2])) return EEXIST;
  *step = STEP_OPEN;
  int fd = open_temp(dfd, tmp, m);
  if (fd < 0) return errno;
  int err = (*step = STEP_WRITE, write_sparse(fd, data, n) == 0) ? 0 : errno;
  if (err) close(fd);
  else err = seal_fd(fd, -1, m, t, step); /* write_sparse set the length */
  if (err) {
    unlinkat(dfd, tmp, 0);
    return err;
  }
  return place_one(dfd, tmp, fin, m[3], t[2], step);
}

/*
 * install(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, data, dataOffs(Float64, n + 1),
 *         meta(Uint32 x4: mode uid gid flags), times(BigInt64 x3: atime mtime keepNewerThan ns),
 *         result(Int32 x2: errno step)) -> number of entries that failed.
 */
static napi_value install(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS + 2];
  size_t argc = MAX_ARGS + 2, nd, nm, nt, nr;
  int32_t dfd;
  names tmp, fin;
  bytes data;
  double *doffs;
  uint32_t *meta;
  int64_t *times;
  int32_t *res;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 10 || !get_i32(env, a[0], &dfd) || !get_names(env, a[1], a[2], &tmp) || !get_names(env, a[3], a[4], &fin) ||
      !get_buffer(env, a[5], &data) || !get_typed(env, a[6], napi_float64_array, (void **)&doffs, &nd) ||
      !get_typed(env, a[7], napi_uint32_array, (void **)&meta, &nm) || !get_typed(env, a[8], napi_bigint64_array, (void **)&times, &nt) ||
      !get_typed(env, a[9], napi_int32_array, (void **)&res, &nr))
    return fail(env, "install(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, data, dataOffs, meta, times, result)");
  size_t n = fin.count;
  if (tmp.count != n || nd != 2 * n || nm < 4 * n || nt < 3 * n || nr < 2 * n) return fail(env, "install: arrays do not match the batch");
  for (size_t i = 0; i < n; i++)
    if (!(doffs[2 * i] >= 0 && doffs[2 * i + 1] >= 0 && doffs[2 * i] + doffs[2 * i + 1] <= (double)data.n))
      return fail(env, "install: data ranges out of bounds");
  int64_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    const char *t = name_at(&tmp, i), *f = name_at(&fin, i);
    int step = 0, err = EINVAL;
    if (t && f) err = install_one(dfd, t, f, data.p + (size_t)doffs[2 * i], (size_t)doffs[2 * i + 1], meta + 4 * i, times + 3 * i, &step);
    res[2 * i] = err;
    res[2 * i + 1] = err ? step : 0;
    failed += err != 0;
  }
  return num(env, failed);
}

/* openTemp(dirFd, tmpBuf, tmpOffs, meta(Uint32 x4)) -> fd or -errno: a temp file to be written from JavaScript, then seal()ed. */
static napi_value open_temp_js(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  uint32_t *meta;
  size_t nm;
  if (args(env, info, a) < 4 || !get_i32(env, a[0], &dfd) || !get_typed(env, a[3], napi_uint32_array, (void **)&meta, &nm) || nm < 4)
    return fail(env, "openTemp(dirFd, tmpBuf, tmpOffs, meta)");
  NAME_ARG(tmp, 1, 2);
  int fd = open_temp(dfd, tmp, meta);
  return num(env, fd < 0 ? -errno : fd);
}

/*
 * seal(fd, dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, size, meta(Uint32 x4), times(BigInt64 x3), result(Int32 x2))
 * -> 0 or 1 (failed, see result): the temp file's length, owner, mode, times, then into place.
 */
static napi_value seal(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS + 2];
  size_t argc = MAX_ARGS + 2, nm, nt, nr;
  int32_t fd, dfd;
  int64_t size;
  uint32_t *meta;
  int64_t *times;
  int32_t *res;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 10 || !get_i32(env, a[0], &fd) || !get_i32(env, a[1], &dfd) || napi_get_value_int64(env, a[6], &size) != napi_ok ||
      !get_typed(env, a[7], napi_uint32_array, (void **)&meta, &nm) || !get_typed(env, a[8], napi_bigint64_array, (void **)&times, &nt) ||
      !get_typed(env, a[9], napi_int32_array, (void **)&res, &nr) || nm < 4 || nt < 3 || nr < 2)
    return fail(env, "seal(fd, dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, size, meta, times, result)");
  NAME_ARG(tmp, 2, 3);
  NAME_ARG(fin, 4, 5);
  int step = 0;
  int err = seal_fd(fd, size, meta, times, &step);
  if (err) unlinkat(dfd, tmp, 0);
  else err = place_one(dfd, tmp, fin, meta[3], times[2], &step);
  res[0] = err;
  res[1] = err ? step : 0;
  return num(env, err != 0);
}

/* place(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, meta(Uint32 x4), times(BigInt64 x3), result) -> 0 or 1 */
static napi_value place(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  uint32_t *meta;
  int64_t *times;
  int32_t *res;
  size_t nm, nt, nr;
  if (args(env, info, a) < 8 || !get_i32(env, a[0], &dfd) || !get_typed(env, a[5], napi_uint32_array, (void **)&meta, &nm) ||
      !get_typed(env, a[6], napi_bigint64_array, (void **)&times, &nt) || !get_typed(env, a[7], napi_int32_array, (void **)&res, &nr) ||
      nm < 4 || nt < 3 || nr < 2)
    return fail(env, "place(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, meta, times, result)");
  NAME_ARG(tmp, 1, 2);
  NAME_ARG(fin, 3, 4);
  int step = 0;
  int err = place_one(dfd, tmp, fin, meta[3], times[2], &step);
  res[0] = err;
  res[1] = err ? step : 0;
  return num(env, err != 0);
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* the same number on every architecture (Linux 6.6) */
#endif

/* Set once a kernel without fchmodat2 answered ENOSYS: every later chmod goes the old way. */
static int no_fchmodat2;

/*
 * chmod of the inode an O_PATH fd pins (fchmod refuses O_PATH fds). fchmodat2 with
 * AT_EMPTY_PATH (Linux 6.6) acts on the fd itself, half the cost of resolving the magic link
 * /proc/self/fd/N (measured); an older kernel goes through the link, which is the pinned inode
 * too (never the name, which may have been swapped since).
 */
static int chmod_pinned(int fd, const char *proc, mode_t mode) {
  if (!__atomic_load_n(&no_fchmodat2, __ATOMIC_RELAXED)) {
    if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOSYS) return -1;
    __atomic_store_n(&no_fchmodat2, 1, __ATOMIC_RELAXED);
  }
  return chmod(proc, mode);
}

/* One entry's metadata through an O_PATH pin proven to be the inode the caller examined. */
static int meta_one(int dfd, const char *name, const uint32_t *m, const uint64_t *id, const int64_t *t) {
  int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = 0;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  struct timespec ts[2] = {ns_ts(t[0]), ns_ts(t[1])};
  if (fstat(fd, &st) < 0) err = errno;
  else if (st.st_ino != id[0] || st.st_dev != id[1] || st.st_nlink > (m[4] > 1 ? m[4] : 1)) err = ESTALE; /* swapped or foreign */
  else if ((m[3] & F_CHOWN) && fchownat(fd, "", m[1], m[2], AT_EMPTY_PATH) < 0) err = errno;
  /* chown clears set-id bits, so a chown is always followed by the chmod; F_SAME_*: the caller saw it equal */
  else if (!S_ISLNK(st.st_mode) && ((m[3] & F_CHOWN) || !(m[3] & F_SAME_MODE)) && chmod_pinned(fd, proc, m[0] & 07777) < 0) err = errno;
  else if (!(m[3] & F_SAME_TIMES) && utimensat(AT_FDCWD, proc, ts, 0) < 0) err = errno; /* the magic link is the pinned inode itself */
  close(fd);
  return err;
}

/*
 * applyMeta(dirFd, nameBuf, nameOffs, meta(Uint32 x5: mode uid gid flags recordedLinks),
 *           ids(BigUint64 x2: ino dev), times(BigInt64 x2), errs(Int32)) -> failures.
 * ESTALE: the name is no longer the inode examined, or has more links than recorded; untouched.
 */
static napi_value apply_meta(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  names ns;
  uint32_t *meta;
  uint64_t *ids;
  int64_t *times;
  int32_t *errs;
  size_t nm, ni, nt, ne;
  if (args(env, info, a) < 7 || !get_i32(env, a[0], &dfd) || !get_names(env, a[1], a[2], &ns) ||
      !get_typed(env, a[3], napi_uint32_array, (void **)&meta, &nm) || !get_typed(env, a[4], napi_biguint64_array, (void **)&ids, &ni) ||
      !get_typed(env, a[5], napi_bigint64_array, (void **)&times, &nt) || !get_typed(env, a[6], napi_int32_array, (void **)&errs, &ne))
    return fail(env, "applyMeta(dirFd, nameBuf, nameOffs, meta, ids, times, errs)");
  size_t n = ns.count;
  if (nm < 5 * n || ni < 2 * n || nt < 2 * n || ne < n) return fail(env, "applyMeta: arrays do not match the batch");
  int64_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name = name_at(&ns, i);
    errs[i] = name ? meta_one(dfd, name, meta + 5 * i, ids + 2 * i, times + 2 * i) : EINVAL;
    failed += errs[i] != 0;
  }
  return num(env, failed);
}

/*
 * special(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, target, meta(Uint32 x5: mode with type bits,
 *         uid gid flags rdev), times(BigInt64 x3), result(Int32 x2)) -> 0 or 1: a symlink, FIFO or
 * device made under its temp name, given its metadata through a pin, then put in place.
 */
static napi_value special(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS + 2];
  size_t argc = MAX_ARGS + 2, nm, nt, nr;
  int32_t dfd;
  bytes tb;
  uint32_t *meta;
  int64_t *times;
  int32_t *res;
  char target[PATH_MAX];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 9 || !get_i32(env, a[0], &dfd) || !get_buffer(env, a[5], &tb) || !get_typed(env, a[6], napi_uint32_array, (void **)&meta, &nm) ||
      !get_typed(env, a[7], napi_bigint64_array, (void **)&times, &nt) || !get_typed(env, a[8], napi_int32_array, (void **)&res, &nr) ||
      nm < 5 || nt < 3 || nr < 2)
    return fail(env, "special(dirFd, tmpBuf, tmpOffs, finalBuf, finalOffs, target, meta, times, result)");
  NAME_ARG(tmp, 1, 2);
  NAME_ARG(fin, 3, 4);
  int step = STEP_OPEN, err = 0;
  if (meta[3] & F_CLEAR) unlinkat(dfd, tmp, 0);
  if (S_ISLNK(meta[0])) {
    if (tb.n == 0 || tb.n >= sizeof target || memchr(tb.p, '\0', tb.n)) err = tb.n ? ENAMETOOLONG : ENOENT;
    else {
      memcpy(target, tb.p, tb.n);
      target[tb.n] = '\0';
      err = symlinkat(target, dfd, tmp) < 0 ? errno : 0;
    }
  } else if (S_ISFIFO(meta[0]) || S_ISCHR(meta[0]) || S_ISBLK(meta[0])) {
    err = mknodat(dfd, tmp, (mode_t)(meta[0] & (S_IFMT | 0777)), (dev_t)meta[4]) < 0 ? errno : 0;
  } else err = EINVAL;
  if (!err) {
    /* Pinned and proven to be what was just made (one link), so a swap of the temp name is refused. */
    struct stat st;
    uint32_t m[5] = {meta[0], meta[1], meta[2], meta[3], 1};
    step = STEP_META;
    if (fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0) err = errno;
    else if ((st.st_mode & S_IFMT) != (meta[0] & S_IFMT)) err = ESTALE;
    else {
      uint64_t id[2] = {st.st_ino, st.st_dev};
      int64_t t[2] = {times[0], times[1]};
      err = meta_one(dfd, tmp, m, id, t);
    }
    if (err) unlinkat(dfd, tmp, 0);
    else err = place_one(dfd, tmp, fin, meta[3], times[2], &step);
  }
  res[0] = err;
  res[1] = err ? step : 0;
  return num(env, err != 0);
}

static void fill_stat(const struct stat *st, uint64_t *o64, int64_t *oi, uint32_t *o32) {
  o64[0] = st->st_ino, o64[1] = st->st_dev, o64[2] = (uint64_t)st->st_size, o64[3] = (uint64_t)st->st_blocks, o64[4] = 0;
  oi[0] = ts_ns(st->st_atim), oi[1] = ts_ns(st->st_mtim), oi[2] = ts_ns(st->st_ctim);
  o32[0] = st->st_mode, o32[1] = st->st_uid, o32[2] = st->st_gid, o32[3] = (uint32_t)st->st_nlink, o32[4] = (uint32_t)st->st_rdev;
}

/* statAt(dirFd, nameBuf, nameOffs, u64, i64, u32) -> 0 or -errno: one entry, never followed, in scan's layout. */
static napi_value stat_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  uint64_t *u64;
  int64_t *i64;
  uint32_t *u32;
  size_t n64, ni, n32;
  if (args(env, info, a) < 6 || !get_i32(env, a[0], &dfd) || !get_typed(env, a[3], napi_biguint64_array, (void **)&u64, &n64) ||
      !get_typed(env, a[4], napi_bigint64_array, (void **)&i64, &ni) || !get_typed(env, a[5], napi_uint32_array, (void **)&u32, &n32) ||
      n64 < U64_PER_ENTRY || ni < I64_PER_ENTRY || n32 < U32_PER_ENTRY)
    return fail(env, "statAt(dirFd, nameBuf, nameOffs, u64, i64, u32)");
  NAME_ARG(name, 1, 2);
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return num(env, -errno);
  fill_stat(&st, u64, i64, u32);
  return num(env, 0);
}

/* readlinkAt(dirFd, nameBuf, nameOffs, out) -> length or -errno (ENAMETOOLONG when `out` is too small). */
static napi_value readlink_at(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t dfd;
  bytes out;
  if (args(env, info, a) < 4 || !get_i32(env, a[0], &dfd) || !get_buffer(env, a[3], &out)) return fail(env, "readlinkAt(dirFd, nameBuf, nameOffs, out)");
  NAME_ARG(name, 1, 2);
  ssize_t n = readlinkat(dfd, name, out.p, out.n);
  if (n < 0) return num(env, -errno);
  return num(env, (size_t)n == out.n ? -ENAMETOOLONG : n);
}

/* fdMeta(fd, meta(Uint32 x4: mode uid gid flags), times(BigInt64 x2)) -> 0 or -errno: an open directory's owner, mode, times. */
static napi_value fd_meta(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t fd;
  uint32_t *m;
  int64_t *t;
  size_t nm, nt;
  if (args(env, info, a) < 3 || !get_i32(env, a[0], &fd) || !get_typed(env, a[1], napi_uint32_array, (void **)&m, &nm) ||
      !get_typed(env, a[2], napi_bigint64_array, (void **)&t, &nt) || nm < 4 || nt < 2)
    return fail(env, "fdMeta(fd, meta, times)");
  struct timespec ts[2] = {ns_ts(t[0]), ns_ts(t[1])};
  if ((m[3] & F_CHOWN) && fchown(fd, m[1], m[2]) < 0) return num(env, -errno);
  if (fchmod(fd, m[0] & 07777) < 0) return num(env, -errno);
  return num(env, futimens(fd, ts) < 0 ? -errno : 0);
}

/* close(fd) -> 0 or -errno: fds opened here are closed here too, without a round trip through libuv. */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t fd;
  if (args(env, info, a) < 1 || !get_i32(env, a[0], &fd)) return fail(env, "close(fd)");
  return num(env, close(fd) < 0 ? -errno : 0);
}

/*
 * limitArenas(n) -> 0 or -1: caps glibc's malloc arenas for threads that allocate from now on.
 * glibc gives each thread its own arena (up to 8 per core); buffers a worker allocates and the
 * main thread frees (transferred results) come back to that worker's arena and fragment it.
 */
static napi_value limit_arenas(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  int32_t n;
  if (args(env, info, a) < 1 || !get_i32(env, a[0], &n) || n < 1) return fail(env, "limitArenas(n)");
  return num(env, mallopt(M_ARENA_MAX, n) == 1 ? 0 : -1);
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"scan", scan},       {"openDir", open_dir}, {"mkdirAt", mkdir_at},     {"symlinkAt", symlink_at}, {"mknodAt", mknod_at},
             {"linkAt", link_at}, {"unlinkAt", unlink_at}, {"install", install}, {"applyMeta", apply_meta}, {"close", close_fd},
             {"openTemp", open_temp_js}, {"seal", seal}, {"place", place}, {"special", special}, {"statAt", stat_at},
             {"readlinkAt", readlink_at}, {"fdMeta", fd_meta}, {"limitArenas", limit_arenas}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  /* Test hook: the path an older kernel takes (tests run where fchmodat2 exists). */
  if (getenv("SNAPFILL_TEST_NO_FCHMODAT2")) __atomic_store_n(&no_fchmodat2, 1, __ATOMIC_RELAXED);
  /* Test hook: the no-clobber placement of a file system without RENAME_NOREPLACE (NFS). */
  if (getenv("SNAPFILL_TEST_NO_RENAME_NOREPLACE")) __atomic_store_n(&no_noreplace, 1, __ATOMIC_RELAXED);
  napi_value v;
  napi_create_uint32(env, ABI * 1000 + U64_PER_ENTRY * 100 + I64_PER_ENTRY * 10 + U32_PER_ENTRY, &v);
  napi_set_named_property(env, exports, "layout", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
