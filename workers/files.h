//  files.h - the built-in files service of zmesh-worker (`--builtin files --root DIR`): stat,
//  list and read of the files under one root directory, read streamed in chunks with a SHA-1
//  of the bytes sent in the final reply. Paths that would leave the root are refused.
#ifndef ZW_FILES_H_INCLUDED
#define ZW_FILES_H_INCLUDED

#include <stddef.h>

#include "zmesh.h"

typedef struct zw_files zw_files_t;

//  Serves the directory root (resolved once, symbolic links included). Returns NULL, with the
//  reason in error, if it is not a directory that can be read.
zw_files_t *zw_files_new(const char *root, char *error, size_t error_size);
void zw_files_destroy(zw_files_t **self_p);

//  A zmesh_handler_fn; arg is the zw_files_t. Thread-safe: it keeps no state per request.
int zw_files_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg);

#endif
