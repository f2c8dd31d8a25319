/* romix.c's one export, registered by blobcodec.c's init (the crypto addon). */
#ifndef SNAPFILL_ROMIX_H
#define SNAPFILL_ROMIX_H

#include <node_api.h>

napi_value snapfill_romix(napi_env env, napi_callback_info info);

#endif
