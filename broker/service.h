//  service - one named service in the broker: a bounded queue of calls
//  waiting for a worker, and its workers with a free slot in least recently
//  used order. Pure logic: no sockets, no clock reads.
#ifndef ZM_SERVICE_H_INCLUDED
#define ZM_SERVICE_H_INCLUDED

#include "call.h"
#include "replset.h"
#include "worker.h"

typedef struct zm_service {
    char *name;                 //  owned
    zlistx_t *queue;            //  owned zm_call_t, oldest first
    size_t queued_bytes;        //  sum of queued bodies
    size_t max_queue;           //  bound on queued calls
    size_t max_queue_bytes;     //  bound on queued bytes
    zlistx_t *ready;            //  borrowed zm_worker_t with a free slot, LRU first
    size_t workers;             //  registered workers
    size_t slots;               //  sum of their slots
    size_t inflight;            //  calls its workers hold
    int64_t empty_since;        //  ms: when it last had no worker
    uint64_t calls;             //  calls received
    zm_replset_t *replset;      //  owned: a replicated service's replicas and writes, or NULL
} zm_service_t;

zm_service_t *zm_service_new(const char *name, size_t max_queue, size_t max_queue_bytes,
                             int64_t now);
void zm_service_destroy(zm_service_t **self_p);

//  Queues a call. Takes *call_p only on ZMESH_OK; on ZMESH_EAGAIN (full)
//  the caller keeps it to answer BUSY: nothing is dropped silently.
int zm_service_enqueue(zm_service_t *self, zm_call_t **call_p);

//  Puts back at the head of the queue a call whose worker was lost, to be
//  dispatched again before newer calls. Not bounded: it was admitted once.
void zm_service_requeue_call(zm_service_t *self, zm_call_t *call);

//  Takes call, which is queued here, out of the queue (its client cancelled
//  it). The caller owns it again. A walk of the queue: cancelling is rare.
void zm_service_remove_call(zm_service_t *self, zm_call_t *call);

//  The oldest queued call, removed from the queue; NULL if none.
zm_call_t *zm_service_dequeue(zm_service_t *self);

//  Moves into expired (owned zm_call_t) every queued call that must be
//  answered now: status 404 once the service has had no worker for
//  grace_ms since the call came, 408 once the caller's deadline passed.
//  The status is in each call's ticket field (a queued call has none).
void zm_service_expire(zm_service_t *self, int64_t now, int64_t grace_ms, zlistx_t *expired);

//  Worker membership and readiness.
void zm_service_attach(zm_service_t *self, zm_worker_t *worker);
void zm_service_detach(zm_service_t *self, zm_worker_t *worker, int64_t now);

//  Keeps the ready list true for this worker after a change of its slots:
//  on it while it has a free slot, off it when not. used (a call was just
//  dispatched to it) also moves it to the back, the most recently used end,
//  so dispatch goes round the free workers least recently used first.
void zm_service_requeue_worker(zm_service_t *self, zm_worker_t *worker, bool used);

//  The least recently used worker with a free slot, or NULL.
zm_worker_t *zm_service_next_worker(zm_service_t *self);

size_t zm_service_queued(const zm_service_t *self);

#endif
