//  pipeline - one named pipeline in the broker (ZMP.md section 16): a queue
//  of messages waiting for a consumer, its consumers with free credit in
//  least recently used order, the producers waiting for RESUME, and a bound
//  on what it holds. Pure logic: no sockets, no clock reads.
#ifndef ZM_PIPELINE_H_INCLUDED
#define ZM_PIPELINE_H_INCLUDED

#include "consumer.h"
#include "item.h"
#include "link.h"

typedef struct zm_pipeline {
    char *name;                 //  owned
    zm_itemq_t *queue;          //  owned: messages waiting, the next to deliver first
    size_t held;                //  messages queued or delivered and not acknowledged
    size_t held_bytes;          //  their body bytes
    size_t max_held;            //  bounds on both
    size_t max_bytes;
    zlistx_t *ready;            //  borrowed zm_consumer_t with free credit, LRU first
    zlistx_t *waiting;          //  borrowed zm_link_t refused for lack of room
    size_t consumers;           //  registered consumers
    size_t credit;              //  sum of their credit
    size_t inflight;            //  messages they hold
    size_t links;               //  producer links on it
    int64_t idle_since;         //  ms: when it last had nothing at all
    uint64_t pushed;            //  messages taken
    uint64_t delivered;         //  deliveries, redeliveries included
    uint64_t acked;
    uint64_t redelivered;       //  messages put back after a consumer was lost
    uint64_t refused_full;      //  REFUSE 503 sent, and push-endpoint waits
    uint64_t dropped_poison;    //  given up after max-deliveries
    uint64_t dropped_push_malformed;    //  bad messages off the push endpoint
} zm_pipeline_t;

zm_pipeline_t *zm_pipeline_new(const char *name, size_t max_held, size_t max_bytes, int64_t now);
//  Destroys the queued messages; the engine frees the ones in flight.
void zm_pipeline_destroy(zm_pipeline_t **self_p);

//  Whether a message of size bytes can be taken now: 200 yes, 503 not now
//  (full), 413 never (its body alone is over the byte bound).
uint32_t zm_pipeline_fits(const zm_pipeline_t *self, size_t size);

//  True when a quarter of the room is free again: time to RESUME producers.
bool zm_pipeline_resumable(const zm_pipeline_t *self);

//  Takes a message at the tail of the queue and counts it as held: id is
//  above every id taken before, *body_p is taken, producer (the routing id
//  to answer DONE to, for seq) is copied when not NULL.
void zm_pipeline_push(zm_pipeline_t *self, uint64_t id, zframe_t **body_p, zframe_t *producer,
                      uint64_t seq);

//  Puts a message its consumer lost back in line (still held): before every
//  message taken after it, so redelivered messages go first, in order.
void zm_pipeline_requeue(zm_pipeline_t *self, zm_item_t *item);

//  Puts a message its consumer gave back unseen (RELEASE) back in line, as
//  zm_pipeline_requeue does, its delivery undone: not a redelivery.
void zm_pipeline_unpop(zm_pipeline_t *self, zm_item_t *item);

//  The next message to deliver, removed from the queue (still held); NULL if none.
zm_item_t *zm_pipeline_pop(zm_pipeline_t *self);

//  A message left for good (acknowledged or dropped): no longer held.
void zm_pipeline_release(zm_pipeline_t *self, const zm_item_t *item);

size_t zm_pipeline_queued(const zm_pipeline_t *self);

//  Consumer membership and readiness, as zm_service_* does for workers.
void zm_pipeline_attach(zm_pipeline_t *self, zm_consumer_t *consumer);
void zm_pipeline_detach(zm_pipeline_t *self, zm_consumer_t *consumer, int64_t now);
void zm_pipeline_requeue_consumer(zm_pipeline_t *self, zm_consumer_t *consumer, bool used);
zm_consumer_t *zm_pipeline_next_consumer(zm_pipeline_t *self);

//  Producers refused for lack of room, to be told RESUME.
void zm_pipeline_wait(zm_pipeline_t *self, zm_link_t *link);
void zm_pipeline_unwait(zm_pipeline_t *self, zm_link_t *link);

//  True if it has had no consumer, message or link for grace_ms. Called
//  every tick: a pipeline in use restarts its idle time.
bool zm_pipeline_idle(zm_pipeline_t *self, int64_t now, int64_t grace_ms);

#endif
