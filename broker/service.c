//  service - queueing and least-recently-used worker choice for one service.
#include "service.h"

#include "zm_alloc.h"
#include "zmesh.h"

static void
s_call_destroy(void **item_p)
{
    zm_call_destroy((zm_call_t **) item_p);
}

zm_service_t *
zm_service_new(const char *name, size_t max_queue, size_t max_queue_bytes, int64_t now)
{
    assert(name);
    zm_service_t *self = zm_alloc(sizeof *self);
    self->name = zm_strdup(name);
    self->queue = zlistx_new();
    zlistx_set_destructor(self->queue, s_call_destroy);
    self->max_queue = max_queue;
    self->max_queue_bytes = max_queue_bytes;
    self->ready = zlistx_new();
    self->empty_since = now;
    return self;
}

void
zm_service_destroy(zm_service_t **self_p)
{
    assert(self_p);
    zm_service_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->ready);
    zlistx_destroy(&self->queue);               //  destroys queued calls
    zm_replset_destroy(&self->replset);
    free(self->name);
    free(self);
    *self_p = NULL;
}

int
zm_service_enqueue(zm_service_t *self, zm_call_t **call_p)
{
    assert(self);
    assert(call_p && *call_p);
    size_t size = zframe_size((*call_p)->body);
    if (zlistx_size(self->queue) >= self->max_queue
        || self->queued_bytes + size > self->max_queue_bytes)
        return ZMESH_EAGAIN;
    (*call_p)->queue_handle = zlistx_add_end(self->queue, *call_p);
    self->queued_bytes += size;
    *call_p = NULL;
    return ZMESH_OK;
}

void
zm_service_requeue_call(zm_service_t *self, zm_call_t *call)
{
    assert(self);
    assert(call && call->body);
    call->queue_handle = zlistx_add_start(self->queue, call);
    self->queued_bytes += zframe_size(call->body);
}

void
zm_service_remove_call(zm_service_t *self, zm_call_t *call)
{
    assert(self);
    assert(call);
    //  Its handle, not a search: a client cancelling many queued calls costs O(1) each.
    assert(call->queue_handle);         //  an engine bug if the call is not queued
    zlistx_detach(self->queue, call->queue_handle);
    call->queue_handle = NULL;
    self->queued_bytes -= zframe_size(call->body);
}

zm_call_t *
zm_service_dequeue(zm_service_t *self)
{
    assert(self);
    zm_call_t *call = zlistx_detach(self->queue, NULL);
    if (call) {
        self->queued_bytes -= zframe_size(call->body);
        call->queue_handle = NULL;
    }
    return call;
}

void
zm_service_expire(zm_service_t *self, int64_t now, int64_t grace_ms, zlistx_t *expired)
{
    assert(self);
    assert(expired);
    zm_call_t *call = zlistx_first(self->queue);
    while (call) {
        void *handle = zlistx_cursor(self->queue);
        zm_call_t *next = zlistx_next(self->queue);
        uint64_t status = 0;
        int64_t waiting_since = call->queued_at > self->empty_since ? call->queued_at
                                                                     : self->empty_since;
        int64_t grace_end = waiting_since + grace_ms;
        bool deadline_first = call->deadline && call->deadline <= grace_end;
        //  Whichever end comes first decides the answer, even when one tick sees both.
        if (call->deadline && now >= call->deadline && (deadline_first || self->workers > 0))
            status = ZM_STATUS_EXPIRED;
        else if (self->workers == 0 && now >= grace_end)
            status = ZM_STATUS_NO_SERVICE;
        if (status) {
            self->queued_bytes -= zframe_size(call->body);
            zlistx_detach(self->queue, handle);
            call->queue_handle = NULL;
            call->ticket = status;
            zlistx_add_end(expired, call);
        }
        call = next;
    }
}

void
zm_service_attach(zm_service_t *self, zm_worker_t *worker)
{
    assert(self);
    assert(worker && worker->service == self);
    self->workers++;
    self->slots += worker->slots;
    zm_service_requeue_worker(self, worker, false);
}

void
zm_service_detach(zm_service_t *self, zm_worker_t *worker, int64_t now)
{
    assert(self);
    assert(worker && worker->service == self);
    assert(self->workers > 0);
    if (worker->ready_handle) {
        zlistx_delete(self->ready, worker->ready_handle);
        worker->ready_handle = NULL;
    }
    self->slots -= worker->slots;
    if (--self->workers == 0)
        self->empty_since = now;
}

void
zm_service_requeue_worker(zm_service_t *self, zm_worker_t *worker, bool used)
{
    assert(self);
    assert(worker);
    bool free_slot = zm_worker_free_slots(worker) > 0 && worker->state != ZM_WORKER_GONE
                     && !worker->withheld;
    if (worker->ready_handle && free_slot) {
        if (used)
            zlistx_move_end(self->ready, worker->ready_handle);
    }
    else if (worker->ready_handle) {
        zlistx_delete(self->ready, worker->ready_handle);
        worker->ready_handle = NULL;
    }
    else if (free_slot)
        worker->ready_handle = zlistx_add_end(self->ready, worker);
}

zm_worker_t *
zm_service_next_worker(zm_service_t *self)
{
    assert(self);
    return zlistx_first(self->ready);
}

size_t
zm_service_queued(const zm_service_t *self)
{
    assert(self);
    return zlistx_size(self->queue);
}
