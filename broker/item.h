//  item - a pipeline message inside the broker, and the queue it waits in.
//  A message waiting for its first delivery is a compact record in its
//  queue (the body inline when it is small), with no CZMQ object of its own:
//  a broker holding a million small messages holds little more than their
//  bodies. A message becomes a zm_item_t when it is delivered; a consumer
//  that is lost or gives it back returns it to the queue as that item.
#ifndef ZM_ITEM_H_INCLUDED
#define ZM_ITEM_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

struct zm_consumer;

typedef struct zm_item {
    uint64_t id;                //  message id: the broker's, kept across deliveries
    size_t size;                //  body bytes, as counted against the pipeline's bound
    uint32_t attempts;          //  deliveries so far
    zframe_t *producer;         //  owned: routing id to answer DONE to, or NULL
    uint64_t seq;               //  the producer's seq, for DONE
    struct zm_consumer *consumer;   //  borrowed: who holds it, NULL while queued
    void *consumer_handle;      //  its place in consumer->inflight
    zframe_t *frame;            //  owned: the body when it is large, else NULL
    byte data[];                //  the body when it is small (frame NULL)
} zm_item_t;

void zm_item_destroy(zm_item_t **self_p);

//  The body's bytes.
const byte *zm_item_data(const zm_item_t *self);

//  A new frame with a copy of the body, to deliver: the item keeps its own
//  until the message is acknowledged.
zframe_t *zm_item_body(const zm_item_t *self);

//  The queue of messages waiting for a consumer, lowest message id first.
//  Fresh messages arrive in rising id order and wait as records packed in
//  chunks, a FIFO; messages put back (few: at most what consumers held) wait
//  as items in a short sorted list. Popping takes the lower id of the two
//  heads, so the queue is in id order whatever comes back from where.
typedef struct zm_itemq zm_itemq_t;

zm_itemq_t *zm_itemq_new(void);
//  Destroys every message in it.
void zm_itemq_destroy(zm_itemq_t **self_p);

//  Appends a message just taken: id is above every id appended before.
//  Takes *body_p (small bodies are copied in and the frame destroyed).
//  producer, if not NULL, is the routing id to answer DONE to, for seq; it
//  is copied.
void zm_itemq_append(zm_itemq_t *self, uint64_t id, zframe_t **body_p, zframe_t *producer,
                     uint64_t seq);

//  Takes item, held by no consumer, back into line by its id.
void zm_itemq_put_back(zm_itemq_t *self, zm_item_t *item);

//  Removes the message with the lowest id and returns it as an item owned
//  by the caller, attempts as they were (0 for a fresh one); NULL if empty.
zm_item_t *zm_itemq_pop(zm_itemq_t *self);

//  Messages waiting, and their body bytes.
size_t zm_itemq_size(const zm_itemq_t *self);
size_t zm_itemq_bytes(const zm_itemq_t *self);

//  Bytes of chunk memory the queue holds now, and has freed since the last
//  zm_itemq_take_freed (which resets it): for deciding when to trim the heap.
size_t zm_itemq_footprint(const zm_itemq_t *self);
size_t zm_itemq_freed(const zm_itemq_t *self);
size_t zm_itemq_take_freed(zm_itemq_t *self);

//  Walks the whole queue and recounts it: true if its size and bytes are
//  right, ids rise, and no item in it names a consumer. For tests and fuzzing.
bool zm_itemq_check(const zm_itemq_t *self);

#endif
