//  zm_alloc - allocation that aborts on out-of-memory, so no caller carries an
//  untestable OOM branch (as CZMQ's zmalloc and Redis's zmalloc do).
#ifndef ZM_ALLOC_H_INCLUDED
#define ZM_ALLOC_H_INCLUDED

#include <stddef.h>

//  Returns size zeroed bytes; never NULL.
void *zm_alloc(size_t size);

//  Returns a copy of string; never NULL.
char *zm_strdup(const char *string);

//  Returns a NUL-terminated copy of the first size bytes of data; never NULL.
char *zm_strndup(const char *data, size_t size);

#endif
