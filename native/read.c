/*
 * livefs_read: small files read whole by name relative to a directory fd, a batch per call,
 * for the snapshot walk (issue 17). Synchronous: it runs inside the snapshot reader threads.
 *
 * Same rules as native/livefs.c: every buffer is bounded by lengths the caller passed (checked
 * here); nothing is allocated per entry; one entry's failure is its errno in the result, never a
 * throw. Only a malformed call throws. Names cross as in livefs.c: one Buffer of NUL-terminated
 * names plus a Uint32Array of n + 1 offsets.
 *
 * Per entry: fstatat(AT_SYMLINK_NOFOLLOW) first, and only a regular file is opened (a FIFO or a
 * device is never opened: opening one can block or have side effects); the open is
 * O_NOFOLLOW | O_NONBLOCK (| O_NOATIME while the kernel allows it), then read into the entry's
 * slot of the data buffer, then fstat on the open fd: the caller compares that "after" stat with
 * what it expected to detect a file that changed during the read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include "napi_util.h"
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGS 10
#define RU64 3 /* ino, dev, size */
#define RI64 2 /* mtime, ctime ns */
#define RU32 4 /* mode, uid, gid, nlink */
#define NOT_REGULAR (-1) /* errs[i]: the name is not a regular file; it was not opened */

static int get_buffer(napi_env env, napi_value v, char **p, size_t *n) {
  void *d;
  if (napi_get_buffer_info(env, v, &d, n) != napi_ok) return 0;
  *p = d;
  return 1;
}

static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* Cleared (once, for every thread) when the kernel refuses O_NOATIME: not the owner, not root. */
static int noatime = O_NOATIME;

static int open_file(int dfd, const char *name) {
  int extra = __atomic_load_n(&noatime, __ATOMIC_RELAXED);
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | extra);
  if (fd < 0 && errno == EPERM && extra) {
    __atomic_store_n(&noatime, 0, __ATOMIC_RELAXED);
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  }
  return fd;
}

/* One entry: 0 and *got bytes in [p, p + cap), or an errno (NOT_REGULAR when it is not a file). */
static int read_one(int dfd, const char *name, char *p, size_t cap, size_t *got, struct stat *after) {
  struct stat st;
  *got = 0;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno;
  if (!S_ISREG(st.st_mode)) {
    *after = st;
    return NOT_REGULAR;
  }
  int fd = open_file(dfd, name);
  if (fd < 0) return errno;
  int err = 0;
  while (*got < cap) {
    ssize_t r = read(fd, p + *got, cap - *got);
    if (r < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (r == 0) break;
    *got += (size_t)r;
  }
  if (!err && fstat(fd, after) < 0) err = errno;
  /* Swapped for something else between the fstatat and the open: not what the caller read. */
  if (!err && !S_ISREG(after->st_mode)) err = NOT_REGULAR;
  close(fd);
  return err;
}

/*
 * readFiles(dirFd, nameBuf, nameOffs, data, slots(Float64, n + 1), lens(Float64, n),
 *           u64(BigUint64 x3: ino dev size), i64(BigInt64 x2: mtime ctime ns),
 *           u32(Uint32 x4: mode uid gid nlink), errs(Int32)) -> number of entries that failed.
 * Entry i is read into data[slots[i] .. slots[i+1]); lens[i] is the bytes read. A file that
 * fills its slot may have more: the caller gives each slot one byte more than it expects.
 * The stat is taken on the open fd after the read (for NOT_REGULAR: the fstatat of the name).
 */
static napi_value read_files(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  size_t argc = MAX_ARGS, dn, ns, nl, n64, ni, n32, ne, nb;
  int32_t dfd;
  char *nbuf, *data;
  uint32_t *offs, *u32;
  double *slots, *lens;
  uint64_t *u64;
  int64_t *i64;
  int32_t *errs;
  size_t no;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 10 || napi_get_value_int32(env, a[0], &dfd) != napi_ok || !get_buffer(env, a[1], &nbuf, &nb) ||
      !get_typed(env, a[2], napi_uint32_array, (void **)&offs, &no) || !get_buffer(env, a[3], &data, &dn) ||
      !get_typed(env, a[4], napi_float64_array, (void **)&slots, &ns) || !get_typed(env, a[5], napi_float64_array, (void **)&lens, &nl) ||
      !get_typed(env, a[6], napi_biguint64_array, (void **)&u64, &n64) || !get_typed(env, a[7], napi_bigint64_array, (void **)&i64, &ni) ||
      !get_typed(env, a[8], napi_uint32_array, (void **)&u32, &n32) || !get_typed(env, a[9], napi_int32_array, (void **)&errs, &ne) || no == 0)
    return fail(env, "readFiles(dirFd, nameBuf, nameOffs, data, slots, lens, u64, i64, u32, errs)");
  size_t n = no - 1;
  if (ns != n + 1 || nl < n || n64 < RU64 * n || ni < RI64 * n || n32 < RU32 * n || ne < n) return fail(env, "readFiles: arrays do not match the batch");
  for (size_t i = 0; i < n; i++)
    if (offs[i] >= offs[i + 1] || offs[i + 1] > nb) return fail(env, "readFiles: name offsets out of range");
  for (size_t i = 0; i < n; i++)
    if (!(slots[i] >= 0 && slots[i] <= slots[i + 1] && slots[i + 1] <= (double)dn)) return fail(env, "readFiles: slots out of range");
  int64_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    const char *s = nbuf + offs[i];
    size_t len = offs[i + 1] - offs[i] - 1, got = 0;
    struct stat st;
    int err;
    memset(&st, 0, sizeof st);
    /* One path component only: never a path, never "." or "..". */
    if (s[len] != '\0' || len == 0 || len > NAME_MAX || strlen(s) != len || memchr(s, '/', len) || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
      err = EINVAL;
    else
      err = read_one(dfd, s, data + (size_t)slots[i], (size_t)slots[i + 1] - (size_t)slots[i], &got, &st);
    errs[i] = err;
    lens[i] = (double)got;
    u64[i * RU64] = st.st_ino, u64[i * RU64 + 1] = st.st_dev, u64[i * RU64 + 2] = (uint64_t)st.st_size;
    i64[i * RI64] = ts_ns(st.st_mtim), i64[i * RI64 + 1] = ts_ns(st.st_ctim);
    u32[i * RU32] = st.st_mode, u32[i * RU32 + 1] = st.st_uid, u32[i * RU32 + 2] = st.st_gid, u32[i * RU32 + 3] = (uint32_t)st.st_nlink;
    failed += err != 0;
  }
  return num(env, failed);
}

/*
 * raiseNofile() -> the soft limit of open files after raising it to the hard limit. The walk
 * keeps one fd per directory on its way down (plus a bounded look-ahead), so deep trees need more
 * than the usual 1024.
 */
static napi_value raise_nofile(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) < 0) return num(env, -errno);
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0) getrlimit(RLIMIT_NOFILE, &r);
  }
  return num(env, r.rlim_cur == RLIM_INFINITY ? INT32_MAX : (int64_t)r.rlim_cur);
}

/*
 * openRoot(pathBuf) -> fd or -errno: a walk's starting directory by absolute path, never through
 * a symlink at its last component (O_NOFOLLOW). Opened here rather than with fs.openSync in a
 * worker thread: Node closes at a worker's exit the fds that worker opened through fs, and this
 * fd outlives the worker's use of it (the main thread closes it), so that second close would hit
 * whatever reused the number. The path is NUL-terminated inside the buffer's length.
 */
static napi_value open_root(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  size_t argc = MAX_ARGS;
  char *p;
  size_t n;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 1 || !get_buffer(env, a[0], &p, &n) || n < 2 || p[0] != '/' || p[n - 1] != '\0' || strlen(p) != n - 1)
    return fail(env, "openRoot(absolute path as a NUL-terminated Buffer)");
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return num(env, fd < 0 ? -errno : fd);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f, v;
  if (napi_create_function(env, "openRoot", NAPI_AUTO_LENGTH, open_root, NULL, &f) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "openRoot", f);
  if (napi_create_function(env, "readFiles", NAPI_AUTO_LENGTH, read_files, NULL, &f) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "readFiles", f);
  if (napi_create_function(env, "raiseNofile", NAPI_AUTO_LENGTH, raise_nofile, NULL, &f) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "raiseNofile", f);
  napi_create_uint32(env, RU64 * 100 + RI64 * 10 + RU32, &v);
  napi_set_named_property(env, exports, "layout", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
