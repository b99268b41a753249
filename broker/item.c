//  item - one pipeline message inside the broker.
#include "item.h"

#include "zm_alloc.h"

zm_item_t *
zm_item_new(uint64_t id, zframe_t **body_p, zframe_t **producer_p, uint64_t seq)
{
    assert(body_p && *body_p);
    zm_item_t *self = zm_alloc(sizeof *self);
    self->id = id;
    self->body = *body_p;
    *body_p = NULL;
    self->size = zframe_size(self->body);
    if (producer_p) {
        self->producer = *producer_p;
        *producer_p = NULL;
    }
    self->seq = seq;
    return self;
}

void
zm_item_destroy(zm_item_t **self_p)
{
    assert(self_p);
    zm_item_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy(&self->body);
    zframe_destroy(&self->producer);
    free(self);
    *self_p = NULL;
}
