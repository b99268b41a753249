//  worker - the broker's side of a worker session (ZMP.md, "Worker session").
//
//      state   event                        next
//      READY   DISPATCH (last free slot)    BUSY
//      READY   DISPATCH (slots left)        READY
//      READY   REPLY / HEARTBEAT / STRAY    READY
//      BUSY    REPLY                        READY
//      BUSY    HEARTBEAT / STRAY            BUSY
//      any     DISCONNECT / EXPIRED         GONE
//      any     VIOLATION                    GONE, and the event is refused
//      GONE    anything                     refused
#include "worker.h"

#include "zm_alloc.h"

zm_worker_t *
zm_worker_new(zframe_t **routing_p, const char *id, struct zm_service *service,
              const zm_proto_t *ready, int64_t now)
{
    assert(routing_p && *routing_p);
    assert(id);
    assert(service);
    assert(ready && ready->cmd == ZM_CMD_READY);
    zm_worker_t *self = zm_alloc(sizeof *self);
    self->id = zm_strdup(id);
    self->routing = *routing_p;
    *routing_p = NULL;
    self->service = service;
    self->state = ZM_WORKER_READY;
    self->slots = ready->slots;
    zm_liveness_init(&self->peer, ready->heartbeat_ms, ready->liveness, now);
    self->idempotent = (ready->flags & ZM_READY_IDEMPOTENT) != 0;
    self->reads_attempt = ready->fields >= 7;
    self->inflight = zlistx_new();
    return self;
}

void
zm_worker_destroy(zm_worker_t **self_p)
{
    assert(self_p);
    zm_worker_t *self = *self_p;
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
zm_worker_free_slots(const zm_worker_t *self)
{
    assert(self);
    size_t held = zlistx_size(self->inflight);
    return held >= self->slots ? 0 : self->slots - (uint32_t) held;
}

bool
zm_worker_expired(const zm_worker_t *self, int64_t now)
{
    assert(self);
    return zm_liveness_expired(&self->peer, now);
}

bool
zm_worker_heartbeat_due(const zm_worker_t *self, int64_t now)
{
    assert(self);
    return zm_liveness_due(&self->peer, now);
}

//  The engine updates inflight before DISPATCH and REPLY; the state follows it.
static void
s_settle(zm_worker_t *self)
{
    self->state = zm_worker_free_slots(self) > 0 ? ZM_WORKER_READY : ZM_WORKER_BUSY;
}

bool
zm_worker_on_event(zm_worker_t *self, zm_worker_event_t event, int64_t now)
{
    assert(self);
    if (self->state == ZM_WORKER_GONE)
        return false;
    //  Superstate: valid in every live state.
    if (event == ZM_WORKER_DISCONNECT || event == ZM_WORKER_EXPIRED
        || event == ZM_WORKER_VIOLATION) {
        self->state = ZM_WORKER_GONE;
        return event != ZM_WORKER_VIOLATION;
    }
    if (event != ZM_WORKER_DISPATCH)
        self->peer.last_heard = now;        //  any traffic counts as a heartbeat
    switch (self->state) {
    case ZM_WORKER_READY:
        if (event == ZM_WORKER_DISPATCH || event == ZM_WORKER_REPLY) {
            if (event == ZM_WORKER_REPLY)
                self->served++;
            s_settle(self);
            return true;
        }
        return event == ZM_WORKER_HEARTBEAT || event == ZM_WORKER_STRAY;
    case ZM_WORKER_BUSY:
        if (event == ZM_WORKER_REPLY) {
            self->served++;
            s_settle(self);
            return true;
        }
        //  No free slot: a DISPATCH here is an engine bug, not wire input.
        assert(event != ZM_WORKER_DISPATCH);
        return event == ZM_WORKER_HEARTBEAT || event == ZM_WORKER_STRAY;
    case ZM_WORKER_GONE:
        break;
    }
    return false;
}

const char *
zm_worker_state_name(zm_worker_state_t state)
{
    switch (state) {
    case ZM_WORKER_READY: return "READY";
    case ZM_WORKER_BUSY: return "BUSY";
    case ZM_WORKER_GONE: return "GONE";
    }
    return "UNKNOWN";
}

const char *
zm_worker_event_name(zm_worker_event_t event)
{
    switch (event) {
    case ZM_WORKER_DISPATCH: return "DISPATCH";
    case ZM_WORKER_REPLY: return "REPLY";
    case ZM_WORKER_HEARTBEAT: return "HEARTBEAT";
    case ZM_WORKER_STRAY: return "STRAY";
    case ZM_WORKER_VIOLATION: return "VIOLATION";
    case ZM_WORKER_DISCONNECT: return "DISCONNECT";
    case ZM_WORKER_EXPIRED: return "EXPIRED";
    }
    return "UNKNOWN";
}
