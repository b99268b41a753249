//  zm_alloc - allocation that aborts on out-of-memory.
#include "zm_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_out_of_memory(size_t size)
{
    fprintf(stderr, "zmesh: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
zm_alloc(size_t size)
{
    void *data = calloc(1, size ? size : 1);
    if (!data)
        s_out_of_memory(size);
    return data;
}

char *
zm_strdup(const char *string)
{
    return zm_strndup(string, strlen(string));
}

char *
zm_strndup(const char *data, size_t size)
{
    char *copy = zm_alloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    return copy;
}
