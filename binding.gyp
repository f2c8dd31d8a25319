{
  "targets": [
    {
      "target_name": "livefs",
      "sources": ["native/livefs.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "livefs_read",
      "sources": ["native/read.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "blobcodec",
      "sources": ["native/blobcodec.c", "native/romix.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED"],
      "libraries": ["-ldeflate"]
    }
  ]
}
