//  link - one producer connection on one pipeline.
#include "link.h"

#include "zm_alloc.h"

zm_link_t *
zm_link_new(const char *key, zframe_t **routing_p, struct zm_pipeline *pipeline, int64_t now)
{
    assert(key);
    assert(routing_p && *routing_p);
    assert(pipeline);
    zm_link_t *self = zm_alloc(sizeof *self);
    self->key = zm_strdup(key);
    self->routing = *routing_p;
    *routing_p = NULL;
    self->pipeline = pipeline;
    self->last_heard = now;
    return self;
}

void
zm_link_destroy(zm_link_t **self_p)
{
    assert(self_p);
    zm_link_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy(&self->routing);
    free(self->key);
    free(self);
    *self_p = NULL;
}
