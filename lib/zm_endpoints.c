//  zm_endpoints - parsing and walking a list of broker endpoints.
#include "zm_endpoints.h"

#include "zm_alloc.h"

#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX 64                    //  brokers in one list

struct zm_endpoints {
    char *items[S_MAX];             //  owned
    size_t size;
    size_t current;                 //  index of the endpoint in use
};

void
zm_endpoints_destroy(zm_endpoints_t **self_p)
{
    assert(self_p);
    zm_endpoints_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        free(self->items[i]);
    free(self);
    *self_p = NULL;
}

zm_endpoints_t *
zm_endpoints_new(const char *list)
{
    if (!list)
        return NULL;
    zm_endpoints_t *self = zm_alloc(sizeof *self);
    const char *start = list;
    while (true) {
        const char *end = strchr(start, ',');
        size_t size = end ? (size_t) (end - start) : strlen(start);
        while (size > 0 && isspace((unsigned char) *start)) {
            start++;
            size--;
        }
        while (size > 0 && isspace((unsigned char) start[size - 1]))
            size--;
        if (size == 0 || self->size == S_MAX) {
            zm_endpoints_destroy(&self);
            return NULL;
        }
        self->items[self->size++] = zm_strndup(start, size);
        if (!end)
            return self;
        start = end + 1;
    }
}

const char *
zm_endpoints_current(const zm_endpoints_t *self)
{
    assert(self);
    return self->items[self->current];
}

const char *
zm_endpoints_next(zm_endpoints_t *self)
{
    assert(self);
    self->current = (self->current + 1) % self->size;
    return self->items[self->current];
}

size_t
zm_endpoints_size(const zm_endpoints_t *self)
{
    assert(self);
    return self->size;
}
