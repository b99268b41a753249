//  liveness - the heartbeat schedule: a binary min-heap of peers keyed by
//  check_at, each peer holding its own index so that it leaves in
//  O(log n) when it goes. Adding, popping and removing never allocate
//  once the array has grown to the number of peers.
#include "liveness.h"

#include "zm_alloc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct zm_liveness_sched {
    zm_liveness_t **heap;       //  borrowed peers, heap-ordered by check_at
    size_t size;                //  peers in heap
    size_t capacity;            //  room in heap
};

zm_liveness_sched_t *
zm_liveness_sched_new(void)
{
    zm_liveness_sched_t *self = zm_alloc(sizeof *self);
    return self;
}

void
zm_liveness_sched_destroy(zm_liveness_sched_t **self_p)
{
    assert(self_p);
    zm_liveness_sched_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        self->heap[i]->sched = NULL;
    free(self->heap);
    free(self);
    *self_p = NULL;
}

static void
s_place(zm_liveness_sched_t *self, size_t slot, zm_liveness_t *peer)
{
    self->heap[slot] = peer;
    peer->slot = slot;
}

static void
s_sift_up(zm_liveness_sched_t *self, size_t slot)
{
    zm_liveness_t *peer = self->heap[slot];
    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (self->heap[parent]->check_at <= peer->check_at)
            break;
        s_place(self, slot, self->heap[parent]);
        slot = parent;
    }
    s_place(self, slot, peer);
}

static void
s_sift_down(zm_liveness_sched_t *self, size_t slot)
{
    zm_liveness_t *peer = self->heap[slot];
    while (true) {
        size_t child = 2 * slot + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->heap[child + 1]->check_at < self->heap[child]->check_at)
            child++;
        if (peer->check_at <= self->heap[child]->check_at)
            break;
        s_place(self, slot, self->heap[child]);
        slot = child;
    }
    s_place(self, slot, peer);
}

void
zm_liveness_sched_add(zm_liveness_sched_t *self, zm_liveness_t *peer, void *owner)
{
    assert(self);
    assert(peer);
    assert(!peer->sched);
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? 2 * self->capacity : 64;
        zm_liveness_t **heap = realloc(self->heap, capacity * sizeof *heap);
        if (!heap) {
            fprintf(stderr, "zmesh: out of memory\n");
            abort();
        }
        self->heap = heap;
        self->capacity = capacity;
    }
    peer->sched = self;
    peer->owner = owner;
    peer->check_at = zm_liveness_next(peer);
    self->heap[self->size] = peer;
    peer->slot = self->size++;
    s_sift_up(self, peer->slot);
}

void
zm_liveness_sched_remove(zm_liveness_t *peer)
{
    assert(peer);
    zm_liveness_sched_t *self = peer->sched;
    if (!self)
        return;
    size_t slot = peer->slot;
    assert(slot < self->size && self->heap[slot] == peer);
    peer->sched = NULL;
    zm_liveness_t *last = self->heap[--self->size];
    if (last == peer)
        return;                         //  it was the last slot: nothing to fill
    s_place(self, slot, last);
    //  The peer that fills the hole may belong above it or below it.
    if (slot > 0 && self->heap[(slot - 1) / 2]->check_at > last->check_at)
        s_sift_up(self, slot);
    else
        s_sift_down(self, slot);
}

zm_liveness_t *
zm_liveness_sched_pop(zm_liveness_sched_t *self, int64_t now)
{
    assert(self);
    if (self->size == 0 || self->heap[0]->check_at > now)
        return NULL;
    zm_liveness_t *peer = self->heap[0];
    zm_liveness_sched_remove(peer);
    return peer;
}

size_t
zm_liveness_sched_size(const zm_liveness_sched_t *self)
{
    assert(self);
    return self->size;
}

int64_t
zm_liveness_sched_next(const zm_liveness_sched_t *self)
{
    assert(self);
    return self->size ? self->heap[0]->check_at : INT64_MAX;
}
