//  call - one RPC call inside the broker, from CALL to its REPLY: queued in
//  its service, then in flight at one worker under a ticket.
#ifndef ZM_CALL_H_INCLUDED
#define ZM_CALL_H_INCLUDED

#include "zm_proto.h"

struct zm_worker;
struct zm_service;

typedef struct zm_call {
    zframe_t *client;           //  owned: routing id of the caller
    uint64_t request_id;        //  the caller's id, echoed in the REPLY
    uint64_t ticket;            //  0 while queued; the dispatch id once sent
    zframe_t *body;             //  owned while queued; NULL once sent
    int64_t queued_at;          //  ms
    int64_t deadline;           //  ms; 0 = the caller set no timeout
    uint32_t flags;             //  the CALL's flags (ZM_CALL_PROGRESS)
    uint32_t attempts;          //  dispatches so far
    char *key;                  //  owned: "routing:request id" while the engine's
                                //  table of unanswered calls holds it, else NULL
    bool answered;              //  in flight but already answered 408 (or cancelled):
                                //  the worker's slot stays taken until it replies
    bool cancelled;             //  its client cancelled it or left: answer nobody
    uint32_t timeout_ms;        //  the CALL's; a stream's deadline moves by it
    uint64_t granted;           //  streamed: parts the client allowed so far (0: not
                                //  streamed); the worker may send PART seq <= granted
    uint64_t parts;             //  streamed: PARTs forwarded, the last seq
    struct zm_service *service; //  borrowed: its service (alive while the call is queued)
    struct zm_worker *worker;   //  borrowed: who holds it while in flight
    void *worker_handle;        //  its place in worker->inflight
    void *queue_handle;         //  its place in service->queue while queued, else NULL
    bool sequenced;             //  a write (or quorum read) the replicas hold: its
                                //  service's replica set owns it
} zm_call_t;

//  Takes *client_p and command->body.
zm_call_t *zm_call_new(zframe_t **client_p, zm_proto_t *command, int64_t now);
void zm_call_destroy(zm_call_t **self_p);

#endif
