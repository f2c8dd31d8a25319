/*
 * The small Node-API helpers both addons use (livefs.c and read.c): one copy, included by each.
 * static: each addon is its own shared object, so each gets its own private copy at link time.
 */
#ifndef SNAPFILL_NAPI_UTIL_H
#define SNAPFILL_NAPI_UTIL_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* Throws a TypeError naming the expected call; returns NULL for the caller to return. */
static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value num(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

/* A typed array of the given type; its element count in *len. */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &t, len, data, &ab, &off) != napi_ok) return 0;
  return t == want;
}

#endif
