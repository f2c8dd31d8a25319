/*
 * blobcodec: a stored blob to its plain bytes in one crossing (issue 17): AES-256-GCM open with
 * the blob id as AAD (format version 2), then either the bytes are the plain content (their
 * SHA-256 is the id) or they are raw deflate that inflates to bytes whose SHA-256 is the id
 * (docs/FORMAT.md, src/pack/codec.ts openBlob: the same rules, this is its fast path).
 *
 * Why: a restore opens one blob per small file, and through node:crypto and node:zlib each
 * costs a Decipher, a Hash and a Zlib object plus three or four Buffers (measured at 200k
 * files: ~1.5 s per worker of object set-up, copies and garbage collection). Here the cipher,
 * digest and inflate states are made once per thread and reset per blob; the plain bytes go
 * straight into the caller's buffer.
 *
 * OpenSSL and zlib are Node's own (their symbols are exported by the node binary; the headers
 * ship with Node's headers). The snapshot's side also lives here: deflate() is libdeflate (the
 * system's libdeflate-dev; whole-buffer deflate at level 1 measured 2.4x faster than zlib's on a
 * hosting tree's small files, output as small, and any raw inflate reads it), sha256() and
 * seal() reuse this thread's OpenSSL contexts. Inflate stays zlib's (libdeflate was only 15%
 * faster there).
 *
 * romix() (native/romix.c) is the one lane of scrypt the key derivation runs in parallel
 * (src/pack/scrypt.ts): the repository's other native crypto, so it ships in this addon.
 *
 * Every buffer is bounded by the lengths of the buffers passed in; a blob that would not fit
 * reports TOO_SMALL (the caller grows its buffer up to its own limit: a decompression bomb stops
 * there).
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>
#include "napi_util.h"
#include "romix.h"

#define ABI 3
#define NONCE 12
#define TAG 16
#define ID 32

/* Results (negative lengths). */
enum { NOT_AUTHENTIC = -1, CORRUPT = -2, TOO_SMALL = -3, NO_MEMORY = -4 };
/* What the caller already knows of a blob it verified before: skip the hash. */
enum { UNKNOWN = 0, KNOWN_PLAIN = 1, KNOWN_DEFLATED = 2 };

/* libdeflate's compression levels: 1 (fastest) to 12. */
#define MAX_LEVEL 12

/* Per thread (each worker is its own Node-API environment): made once, freed with the environment. */
typedef struct {
  EVP_CIPHER *gcm;
  EVP_CIPHER_CTX *cctx;
  EVP_CIPHER_CTX *ectx; /* sealing (the snapshot's readers) */
  EVP_MD *sha;
  EVP_MD_CTX *mctx;
  z_stream z;
  int z_ready;
  unsigned char *scratch; /* the deflated form while it is inflated; grows, never per blob */
  size_t scratch_n;
  struct libdeflate_compressor *comp[MAX_LEVEL + 1]; /* per level, made when first used */
} state;

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  state *s = data;
  if (s->z_ready) inflateEnd(&s->z);
  for (int l = 0; l <= MAX_LEVEL; l++)
    if (s->comp[l]) libdeflate_free_compressor(s->comp[l]);
  EVP_CIPHER_CTX_free(s->cctx);
  EVP_CIPHER_CTX_free(s->ectx);
  EVP_CIPHER_free(s->gcm);
  EVP_MD_CTX_free(s->mctx);
  EVP_MD_free(s->sha);
  free(s->scratch);
  free(s);
}

static state *get_state(napi_env env) {
  state *s = NULL;
  if (napi_get_instance_data(env, (void **)&s) == napi_ok && s) return s;
  s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  s->cctx = EVP_CIPHER_CTX_new();
  s->ectx = EVP_CIPHER_CTX_new();
  s->sha = EVP_MD_fetch(NULL, "SHA256", NULL);
  s->mctx = EVP_MD_CTX_new();
  s->z_ready = inflateInit2(&s->z, -15) == Z_OK;
  if (!s->gcm || !s->cctx || !s->ectx || !s->sha || !s->mctx || !s->z_ready || napi_set_instance_data(env, s, free_state, NULL) != napi_ok) {
    free_state(env, s, NULL);
    return NULL;
  }
  return s;
}

static int sha_is(state *s, const unsigned char *p, size_t n, const unsigned char *id) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mn = 0;
  if (EVP_DigestInit_ex(s->mctx, s->sha, NULL) != 1 || EVP_DigestUpdate(s->mctx, p, n) != 1 || EVP_DigestFinal_ex(s->mctx, md, &mn) != 1)
    return 0;
  return mn == ID && memcmp(md, id, ID) == 0;
}

/* Decrypts a sealed item (nonce || ciphertext || tag) into `out` (room for its length - 28): 1 if authentic. */
static int gcm_open(state *s, const unsigned char *key, const unsigned char *in, size_t n, const unsigned char *id, unsigned char *out) {
  int l = 0, l2 = 0;
  const unsigned char *ct = in + NONCE;
  size_t cn = n - NONCE - TAG;
  if (EVP_DecryptInit_ex(s->cctx, s->gcm, NULL, key, in) != 1) return 0;
  if (EVP_DecryptUpdate(s->cctx, NULL, &l, id, ID) != 1) return 0;
  if (cn > 0 && EVP_DecryptUpdate(s->cctx, out, &l, ct, (int)cn) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(s->cctx, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(in + n - TAG)) != 1) return 0;
  return EVP_DecryptFinal_ex(s->cctx, out + l, &l2) == 1;
}

/* Seals `p` (n bytes) into `out` as nonce || ciphertext || tag, the id as AAD: 1 on success. */
static int gcm_seal(state *s, const unsigned char *key, const unsigned char *nonce, const unsigned char *id, const unsigned char *p, size_t n,
                    unsigned char *out) {
  int l = 0, l2 = 0;
  if (EVP_EncryptInit_ex(s->ectx, s->gcm, NULL, key, nonce) != 1) return 0;
  if (EVP_EncryptUpdate(s->ectx, NULL, &l, id, ID) != 1) return 0;
  memcpy(out, nonce, NONCE);
  l = 0;
  if (n > 0 && EVP_EncryptUpdate(s->ectx, out + NONCE, &l, p, (int)n) != 1) return 0;
  if (EVP_EncryptFinal_ex(s->ectx, out + NONCE + l, &l2) != 1 || (size_t)(l + l2) != n) return 0;
  return EVP_CIPHER_CTX_ctrl(s->ectx, EVP_CTRL_GCM_GET_TAG, TAG, out + NONCE + n) == 1;
}

/* Raw inflate of `in` into `out`: the plain length, TOO_SMALL, or CORRUPT. */
static int64_t inflate_into(state *s, const unsigned char *in, size_t n, unsigned char *out, size_t cap) {
  if (inflateReset(&s->z) != Z_OK) return CORRUPT;
  s->z.next_in = (unsigned char *)in;
  s->z.avail_in = (uInt)n;
  s->z.next_out = out;
  s->z.avail_out = (uInt)cap;
  int r = inflate(&s->z, Z_FINISH);
  if (r == Z_STREAM_END) return (int64_t)s->z.total_out;
  if (r == Z_BUF_ERROR && s->z.avail_out == 0) return TOO_SMALL;
  return CORRUPT;
}

static int grow_scratch(state *s, size_t n) {
  if (s->scratch_n >= n) return 1;
  unsigned char *p = realloc(s->scratch, n);
  if (!p) return 0;
  s->scratch = p;
  s->scratch_n = n;
  return 1;
}

/*
 * open(key (32 bytes, or empty: not encrypted), stored, id (32 bytes), out, known (0 unknown,
 * 1 plain, 2 deflated), result (Int32 x2: plain length or a negative code, 1 if it was deflated))
 * -> the plain length or a negative code.
 */
static napi_value open_blob(napi_env env, napi_callback_info info) {
  napi_value a[6];
  size_t argc = 6, nr;
  void *kp, *sp, *ip, *op;
  size_t kn, sn, in, on;
  int32_t known;
  int32_t *res;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 6 || napi_get_buffer_info(env, a[0], &kp, &kn) != napi_ok || napi_get_buffer_info(env, a[1], &sp, &sn) != napi_ok ||
      napi_get_buffer_info(env, a[2], &ip, &in) != napi_ok || napi_get_buffer_info(env, a[3], &op, &on) != napi_ok ||
      napi_get_value_int32(env, a[4], &known) != napi_ok || !get_typed(env, a[5], napi_int32_array, (void **)&res, &nr) || nr < 2 ||
      (kn != 0 && kn != 32) || in != ID || sn > 0x7fffffff || on > 0x7fffffff)
    return fail(env, "open(key, stored, id, out, known, result)");
  state *s = get_state(env);
  if (!s) return num(env, NO_MEMORY);
  const unsigned char *id = ip, *stored = sp;
  unsigned char *out = op;
  int64_t len;
  int deflated = 0;
  const unsigned char *enc = stored; /* the encoded form: plain or deflated */
  size_t en = sn;
  if (kn) {
    if (sn < NONCE + TAG) {
      len = NOT_AUTHENTIC;
      goto done;
    }
    en = sn - NONCE - TAG;
    /* Plain (or unknown): opened straight into `out`, where a plain blob stays; deflated: into scratch. */
    if (known != KNOWN_DEFLATED && en <= on) {
      if (!gcm_open(s, kp, stored, sn, id, out)) {
        len = NOT_AUTHENTIC;
        goto done;
      }
      if (known == KNOWN_PLAIN || sha_is(s, out, en, id)) {
        len = (int64_t)en;
        goto done;
      }
      if (!grow_scratch(s, en ? en : 1)) {
        len = NO_MEMORY;
        goto done;
      }
      memcpy(s->scratch, out, en);
    } else {
      if (!grow_scratch(s, en ? en : 1)) {
        len = NO_MEMORY;
        goto done;
      }
      if (!gcm_open(s, kp, stored, sn, id, s->scratch)) {
        len = NOT_AUTHENTIC;
        goto done;
      }
      if (known == KNOWN_PLAIN) {
        len = TOO_SMALL; /* plain, and `out` is shorter than it */
        goto done;
      }
      if (known == UNKNOWN && sha_is(s, s->scratch, en, id)) {
        len = TOO_SMALL;
        goto done;
      }
    }
    enc = s->scratch;
  } else if (known != KNOWN_DEFLATED && (known == KNOWN_PLAIN || sha_is(s, stored, sn, id))) {
    if (sn > on) len = TOO_SMALL;
    else {
      memcpy(out, stored, sn);
      len = (int64_t)sn;
    }
    goto done;
  }
  deflated = 1;
  len = inflate_into(s, enc, en, out, on);
  if (len >= 0 && known != KNOWN_DEFLATED && !sha_is(s, out, (size_t)len, id)) len = CORRUPT;
done:
  res[0] = (int32_t)len;
  res[1] = deflated;
  return num(env, len);
}

/*
 * deflate(plain, out, level 1..12) -> the length of the raw deflate of `plain` written to `out`,
 * or TOO_SMALL when it does not fit there (a caller that sizes `out` to the largest form worth
 * storing learns "keep it plain" at once), or NO_MEMORY.
 */
static napi_value deflate_blob(napi_env env, napi_callback_info info) {
  napi_value a[3];
  size_t argc = 3;
  void *pp, *op;
  size_t pn, on;
  int32_t level;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 3 || napi_get_buffer_info(env, a[0], &pp, &pn) != napi_ok || napi_get_buffer_info(env, a[1], &op, &on) != napi_ok ||
      napi_get_value_int32(env, a[2], &level) != napi_ok || level < 1 || level > MAX_LEVEL || pn > 0x7fffffff)
    return fail(env, "deflate(plain, out, level)");
  state *s = get_state(env);
  if (!s) return num(env, NO_MEMORY);
  if (!s->comp[level] && !(s->comp[level] = libdeflate_alloc_compressor(level))) return num(env, NO_MEMORY);
  size_t n = on ? libdeflate_deflate_compress(s->comp[level], pp, pn, op, on) : 0;
  return num(env, n ? (int64_t)n : TOO_SMALL);
}

/* sha256(data, out (32 bytes)) -> 0, or NO_MEMORY: the blob id, without a Hash object per blob. */
static napi_value sha256_blob(napi_env env, napi_callback_info info) {
  napi_value a[2];
  size_t argc = 2;
  void *dp, *op;
  size_t dn, on;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 2 || napi_get_buffer_info(env, a[0], &dp, &dn) != napi_ok || napi_get_buffer_info(env, a[1], &op, &on) != napi_ok || on != ID)
    return fail(env, "sha256(data, out32)");
  state *s = get_state(env);
  if (!s) return num(env, NO_MEMORY);
  unsigned int mn = 0;
  if (EVP_DigestInit_ex(s->mctx, s->sha, NULL) != 1 || EVP_DigestUpdate(s->mctx, dp, dn) != 1 || EVP_DigestFinal_ex(s->mctx, op, &mn) != 1 ||
      mn != ID)
    return num(env, NO_MEMORY);
  return num(env, 0);
}

/*
 * seal(key (32 bytes), nonce (12 bytes, fresh), id (32 bytes: the AAD), encoded, out (exactly
 * encoded + 28 bytes)) -> 0, or NO_MEMORY: a blob sealed as codec.ts sealBlob does, without a
 * Cipher object and three Buffers per blob.
 */
static napi_value seal_blob(napi_env env, napi_callback_info info) {
  napi_value a[5];
  size_t argc = 5;
  void *kp, *np, *ip, *ep, *op;
  size_t kn, nn, in, en, on;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 5 || napi_get_buffer_info(env, a[0], &kp, &kn) != napi_ok || napi_get_buffer_info(env, a[1], &np, &nn) != napi_ok ||
      napi_get_buffer_info(env, a[2], &ip, &in) != napi_ok || napi_get_buffer_info(env, a[3], &ep, &en) != napi_ok ||
      napi_get_buffer_info(env, a[4], &op, &on) != napi_ok || kn != 32 || nn != NONCE || in != ID || en > 0x7fffffff ||
      on != en + NONCE + TAG)
    return fail(env, "seal(key, nonce, id, encoded, out)");
  state *s = get_state(env);
  if (!s) return num(env, NO_MEMORY);
  return num(env, gcm_seal(s, kp, np, ip, ep, en, op) ? 0 : NO_MEMORY);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f, v;
  if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_blob, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "open", f) != napi_ok) return NULL;
  if (napi_create_function(env, "deflate", NAPI_AUTO_LENGTH, deflate_blob, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "deflate", f) != napi_ok) return NULL;
  if (napi_create_function(env, "sha256", NAPI_AUTO_LENGTH, sha256_blob, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sha256", f) != napi_ok) return NULL;
  if (napi_create_function(env, "seal", NAPI_AUTO_LENGTH, seal_blob, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "seal", f) != napi_ok) return NULL;
  if (napi_create_function(env, "romix", NAPI_AUTO_LENGTH, snapfill_romix, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "romix", f) != napi_ok) return NULL;
  napi_create_uint32(env, ABI, &v);
  napi_set_named_property(env, exports, "abi", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
