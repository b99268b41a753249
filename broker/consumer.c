//  consumer - one consumer session in the broker.
#include "consumer.h"

#include "zm_alloc.h"

zm_consumer_t *
zm_consumer_new(zframe_t **routing_p, const char *id, struct zm_pipeline *pipeline,
                const zm_proto_t *consume, int64_t now)
{
    assert(routing_p && *routing_p);
    assert(id);
    assert(pipeline);
    assert(consume && consume->cmd == ZM_CMD_CONSUME);
    zm_consumer_t *self = zm_alloc(sizeof *self);
    self->id = zm_strdup(id);
    self->routing = *routing_p;
    *routing_p = NULL;
    self->pipeline = pipeline;
    self->credit = consume->credit;
    zm_liveness_init(&self->peer, consume->heartbeat_ms, consume->liveness, now);
    self->inflight = zlistx_new();
    return self;
}

void
zm_consumer_destroy(zm_consumer_t **self_p)
{
    assert(self_p);
    zm_consumer_t *self = *self_p;
    if (!self)
        return;
    zm_liveness_sched_remove(&self->peer);     //  whatever ended it, it leaves the schedule
    zlistx_destroy(&self->inflight);
    zframe_destroy(&self->routing);
    free(self->key);
    free(self->id);
    free(self);
    *self_p = NULL;
}

uint32_t
zm_consumer_free_credit(const zm_consumer_t *self)
{
    assert(self);
    size_t held = zlistx_size(self->inflight);
    return held >= self->credit ? 0 : self->credit - (uint32_t) held;
}
