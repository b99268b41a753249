//  item - one pipeline message inside the broker, from the PUSH that brought
//  it to the ACK that ends it: queued in its pipeline, then held by one
//  consumer, back at the head of the queue if that consumer is lost.
#ifndef ZM_ITEM_H_INCLUDED
#define ZM_ITEM_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

struct zm_consumer;

typedef struct zm_item {
    uint64_t id;                //  message id: the broker's, kept across deliveries
    zframe_t *body;             //  owned; a copy goes out with each delivery
    size_t size;                //  body bytes, as counted against the pipeline's bound
    uint32_t attempts;          //  deliveries so far
    zframe_t *producer;         //  owned: routing id to answer DONE to, or NULL
    uint64_t seq;               //  the producer's seq, for DONE
    struct zm_consumer *consumer;   //  borrowed: who holds it, NULL while queued
    void *consumer_handle;      //  its place in consumer->inflight
} zm_item_t;

//  Takes *body_p, and *producer_p when producer_p is not NULL (DONE wanted).
zm_item_t *zm_item_new(uint64_t id, zframe_t **body_p, zframe_t **producer_p, uint64_t seq);
void zm_item_destroy(zm_item_t **self_p);

#endif
