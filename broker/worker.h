//  worker - one worker session in the broker: a hand-written state machine
//  fed with events from the wire and the clock. Pure logic: no sockets and
//  no clock reads; the engine passes `now` and does the routing.
#ifndef ZM_WORKER_H_INCLUDED
#define ZM_WORKER_H_INCLUDED

#include "call.h"
#include "liveness.h"

#include <stdbool.h>

struct zm_service;

typedef enum {
    ZM_WORKER_READY,            //  registered, has a free slot
    ZM_WORKER_BUSY,             //  registered, every slot holds a call
    ZM_WORKER_GONE,             //  disconnected, expired or kicked: to be reaped
} zm_worker_state_t;

typedef enum {
    ZM_WORKER_DISPATCH,         //  the broker gave it a call
    ZM_WORKER_REPLY,            //  it answered one of its calls
    ZM_WORKER_HEARTBEAT,        //  it sent HEARTBEAT
    ZM_WORKER_STRAY,            //  it sent a REPLY for a ticket it does not hold
    ZM_WORKER_VIOLATION,        //  it sent a command a worker may not send now
    ZM_WORKER_DISCONNECT,       //  it sent DISCONNECT
    ZM_WORKER_EXPIRED,          //  silent past heartbeat x liveness
} zm_worker_event_t;

typedef struct zm_worker {
    char *id;                   //  owned: routing id in hex, for logs and lookups
    char *key;                  //  owned: the CURVE key it registered with, or NULL
    zframe_t *routing;          //  owned: routing id
    struct zm_service *service; //  borrowed: the service it serves
    zm_worker_state_t state;
    uint32_t slots;             //  calls it may hold at once
    zm_liveness_t peer;         //  heartbeats agreed at READY
    bool idempotent;            //  its calls may run again elsewhere if it dies
    bool reads_attempt;         //  its READY had the flags field: REQUEST may carry attempt
    bool streams;               //  READY flags bit 1: it takes streamed calls (PART, CREDIT,
                                //  CANCEL)
    struct zm_member *member;   //  borrowed: its replica set's record, if it is a replica
    bool withheld;              //  kept off the ready list though it has free slots (a
                                //  replica that is not current)
    uint64_t served;            //  calls it answered
    zlistx_t *inflight;         //  borrowed zm_call_t (the engine owns them), oldest first
    void *ready_handle;         //  its place in service->ready, NULL when not there
} zm_worker_t;

//  Takes *routing_p. ready is the decoded READY.
zm_worker_t *zm_worker_new(zframe_t **routing_p, const char *id, struct zm_service *service,
                           const zm_proto_t *ready, int64_t now);
void zm_worker_destroy(zm_worker_t **self_p);

//  Feeds one event. Returns false if the event is not allowed in the
//  current state: a protocol violation the engine answers by kicking it.
bool zm_worker_on_event(zm_worker_t *self, zm_worker_event_t event, int64_t now);

uint32_t zm_worker_free_slots(const zm_worker_t *self);
bool zm_worker_expired(const zm_worker_t *self, int64_t now);
bool zm_worker_heartbeat_due(const zm_worker_t *self, int64_t now);

const char *zm_worker_state_name(zm_worker_state_t state);
const char *zm_worker_event_name(zm_worker_event_t event);

#endif
