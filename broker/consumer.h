//  consumer - one consumer session in the broker (ZMP.md section 16.5): the
//  pipeline it reads, the credit it granted, the messages it holds, and its
//  liveness. Pure logic: no sockets, no clock reads.
#ifndef ZM_CONSUMER_H_INCLUDED
#define ZM_CONSUMER_H_INCLUDED

#include "item.h"
#include "liveness.h"
#include "zm_proto.h"

#include <stdbool.h>

struct zm_pipeline;

typedef struct zm_consumer {
    char *id;                   //  owned: routing id in hex
    char *key;                  //  owned: the CURVE key it registered with, or NULL
    zframe_t *routing;          //  owned
    struct zm_pipeline *pipeline;   //  borrowed: the pipeline it reads
    uint32_t credit;            //  messages it may hold unacknowledged
    zm_liveness_t peer;         //  heartbeats agreed at CONSUME
    uint64_t acked;             //  messages it acknowledged
    bool gone;                  //  its session is ending: never ready again
    zlistx_t *inflight;         //  borrowed zm_item_t, in delivery order
    void *ready_handle;         //  its place in pipeline->ready, NULL when not there
} zm_consumer_t;

//  Takes *routing_p. consume is the decoded CONSUME.
zm_consumer_t *zm_consumer_new(zframe_t **routing_p, const char *id,
                               struct zm_pipeline *pipeline, const zm_proto_t *consume,
                               int64_t now);
void zm_consumer_destroy(zm_consumer_t **self_p);

uint32_t zm_consumer_free_credit(const zm_consumer_t *self);

#endif
