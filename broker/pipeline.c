//  pipeline - one named pipeline in the broker. It holds at most max_held
//  messages and max_bytes of bodies, counting the queued ones and those its
//  consumers hold, so its memory is bounded whatever its consumers do.
#include "pipeline.h"

#include "zm_alloc.h"

zm_pipeline_t *
zm_pipeline_new(const char *name, size_t max_held, size_t max_bytes, int64_t now)
{
    assert(name);
    assert(max_held > 0 && max_bytes > 0);
    zm_pipeline_t *self = zm_alloc(sizeof *self);
    self->name = zm_strdup(name);
    self->queue = zm_itemq_new();
    self->max_held = max_held;
    self->max_bytes = max_bytes;
    self->ready = zlistx_new();
    self->waiting = zlistx_new();
    self->idle_since = now;
    return self;
}

void
zm_pipeline_destroy(zm_pipeline_t **self_p)
{
    assert(self_p);
    zm_pipeline_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->waiting);
    zlistx_destroy(&self->ready);
    zm_itemq_destroy(&self->queue);
    free(self->name);
    free(self);
    *self_p = NULL;
}

uint32_t
zm_pipeline_fits(const zm_pipeline_t *self, size_t size)
{
    assert(self);
    if (size > self->max_bytes)
        return 413;
    if (self->held >= self->max_held || self->held_bytes + size > self->max_bytes)
        return 503;
    return 200;
}

bool
zm_pipeline_resumable(const zm_pipeline_t *self)
{
    assert(self);
    return self->held < self->max_held && self->held <= self->max_held - self->max_held / 4
           && self->held_bytes <= self->max_bytes - self->max_bytes / 4;
}

void
zm_pipeline_push(zm_pipeline_t *self, uint64_t id, zframe_t **body_p, zframe_t *producer,
                 uint64_t seq)
{
    assert(self);
    assert(body_p && *body_p);
    self->held++;
    self->held_bytes += zframe_size(*body_p);
    self->pushed++;
    zm_itemq_append(self->queue, id, body_p, producer, seq);
}

//  Puts item back where its message id says: ids rise in the order messages
//  were taken, so the queue stays in that order whatever comes back from where.
static void
s_put_back(zm_pipeline_t *self, zm_item_t *item)
{
    zm_itemq_put_back(self->queue, item);
}

void
zm_pipeline_requeue(zm_pipeline_t *self, zm_item_t *item)
{
    assert(self);
    assert(item && !item->consumer);
    s_put_back(self, item);
    self->redelivered++;
}

void
zm_pipeline_unpop(zm_pipeline_t *self, zm_item_t *item)
{
    assert(self);
    assert(item && !item->consumer && item->attempts > 0);
    item->attempts--;
    s_put_back(self, item);
}

zm_item_t *
zm_pipeline_pop(zm_pipeline_t *self)
{
    assert(self);
    return zm_itemq_pop(self->queue);
}

void
zm_pipeline_release(zm_pipeline_t *self, const zm_item_t *item)
{
    assert(self);
    assert(item);
    assert(self->held > 0 && self->held_bytes >= item->size);
    self->held--;
    self->held_bytes -= item->size;
}

size_t
zm_pipeline_queued(const zm_pipeline_t *self)
{
    assert(self);
    return zm_itemq_size(self->queue);
}

void
zm_pipeline_attach(zm_pipeline_t *self, zm_consumer_t *consumer)
{
    assert(self);
    assert(consumer && consumer->pipeline == self);
    self->consumers++;
    self->credit += consumer->credit;
    zm_pipeline_requeue_consumer(self, consumer, false);
}

void
zm_pipeline_detach(zm_pipeline_t *self, zm_consumer_t *consumer, int64_t now)
{
    assert(self);
    assert(consumer && consumer->pipeline == self);
    assert(self->consumers > 0);
    if (consumer->ready_handle) {
        zlistx_delete(self->ready, consumer->ready_handle);
        consumer->ready_handle = NULL;
    }
    self->credit -= consumer->credit;
    self->consumers--;
    self->idle_since = now;
}

void
zm_pipeline_requeue_consumer(zm_pipeline_t *self, zm_consumer_t *consumer, bool used)
{
    assert(self);
    assert(consumer);
    bool free_credit = zm_consumer_free_credit(consumer) > 0 && !consumer->gone;
    if (consumer->ready_handle && free_credit) {
        if (used)
            zlistx_move_end(self->ready, consumer->ready_handle);
    }
    else if (consumer->ready_handle) {
        zlistx_delete(self->ready, consumer->ready_handle);
        consumer->ready_handle = NULL;
    }
    else if (free_credit)
        consumer->ready_handle = zlistx_add_end(self->ready, consumer);
}

zm_consumer_t *
zm_pipeline_next_consumer(zm_pipeline_t *self)
{
    assert(self);
    return zlistx_first(self->ready);
}

void
zm_pipeline_wait(zm_pipeline_t *self, zm_link_t *link)
{
    assert(self);
    assert(link && link->pipeline == self);
    if (!link->waiting_handle)
        link->waiting_handle = zlistx_add_end(self->waiting, link);
}

void
zm_pipeline_unwait(zm_pipeline_t *self, zm_link_t *link)
{
    assert(self);
    assert(link);
    if (link->waiting_handle) {
        zlistx_delete(self->waiting, link->waiting_handle);
        link->waiting_handle = NULL;
    }
}

bool
zm_pipeline_idle(zm_pipeline_t *self, int64_t now, int64_t grace_ms)
{
    assert(self);
    if (self->consumers || self->held || self->links) {
        self->idle_since = now;
        return false;
    }
    return now - self->idle_since >= grace_ms;
}
