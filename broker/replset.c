//  replset - a replicated service's members and write buffer (replset.h).
#include "replset.h"

#include "zm_alloc.h"
#include "zm_proto.h"

#include <string.h>

static void
s_member_destroy(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

zm_replset_t *
zm_replset_new(uint32_t replicas, uint32_t quorum)
{
    assert(replicas >= 1 && replicas <= ZM_REPLICAS_MAX);
    assert(quorum <= replicas);
    zm_replset_t *self = zm_alloc(sizeof *self);
    self->replicas = replicas;
    self->quorum = quorum;
    self->members = zlistx_new();
    zlistx_set_destructor(self->members, s_member_destroy);
    self->ring_size = 64;
    self->ring = zm_alloc(self->ring_size * sizeof *self->ring);
    self->first = 1;
    return self;
}

static void
s_write_free(zm_write_t **write_p)
{
    zm_write_t *write = *write_p;
    zframe_destroy(&write->body);
    zframe_destroy(&write->reply);
    zm_call_destroy(&write->call);
    free(write);
    *write_p = NULL;
}

void
zm_replset_destroy(zm_replset_t **self_p)
{
    assert(self_p);
    zm_replset_t *self = *self_p;
    if (!self)
        return;
    zlistx_t *orphans = zlistx_new();
    zm_replset_clear(self, orphans);
    for (zm_call_t *call = zlistx_first(orphans); call; call = zlistx_next(orphans))
        zm_call_destroy(&call);
    zlistx_destroy(&orphans);
    zlistx_destroy(&self->members);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

uint32_t
zm_replset_quorum(const zm_replset_t *self)
{
    return self->quorum ? self->quorum : self->replicas / 2 + 1;
}

uint32_t
zm_replset_start_count(const zm_replset_t *self)
{
    return self->replicas - zm_replset_quorum(self) + 1;
}

zm_member_t *
zm_replset_add(zm_replset_t *self, struct zm_worker *worker, uint64_t epoch, uint64_t seq)
{
    assert(self);
    if (zlistx_size(self->members) >= self->replicas)
        return NULL;
    zm_member_t *member = zm_alloc(sizeof *member);
    member->worker = worker;
    member->state = ZM_MEMBER_JOINED;
    member->joined_epoch = epoch;
    member->joined_seq = seq;
    uint32_t slot = 0;
    while (self->slots_used & (1ull << slot))
        slot++;
    member->slot = slot;
    self->slots_used |= 1ull << slot;
    zlistx_add_end(self->members, member);
    return member;
}

void
zm_replset_remove(zm_replset_t *self, zm_member_t *member)
{
    assert(self);
    assert(member);
    uint64_t bit = 1ull << member->slot;
    for (uint64_t seq = self->first; seq <= self->last; seq++) {
        zm_write_t *write = zm_replset_write(self, seq);
        if (write->call)
            write->acked_by &= ~bit;
    }
    self->slots_used &= ~bit;
    for (zm_member_t *other = zlistx_first(self->members); other;
         other = zlistx_next(self->members))
        if (other->donor == member)
            other->donor = NULL;
    void *handle = zlistx_find(self->members, member);
    assert(handle);
    zlistx_delete(self->members, handle);
}

size_t
zm_replset_count(const zm_replset_t *self, zm_member_state_t state)
{
    size_t count = 0;
    for (zm_member_t *member = zlistx_first(self->members); member;
         member = zlistx_next(self->members))
        if (member->state == state)
            count++;
    return count;
}

zm_write_t *
zm_replset_write(const zm_replset_t *self, uint64_t seq)
{
    if (seq < self->first || seq > self->last || self->ring_count == 0)
        return NULL;
    uint64_t offset = seq - self->first;
    return self->ring[(self->first + offset) & (self->ring_size - 1)];
}

static size_t
s_write_bytes(const zm_write_t *write)
{
    return zframe_size(write->body) + (write->reply ? zframe_size(write->reply) : 0);
}

//  Drops the oldest write (answered).
static void
s_drop_oldest(zm_replset_t *self)
{
    zm_write_t **slot = &self->ring[self->first & (self->ring_size - 1)];
    self->bytes -= s_write_bytes(*slot);
    s_write_free(slot);
    self->first++;
    self->ring_count--;
}

bool
zm_replset_room(zm_replset_t *self, size_t size)
{
    while (self->ring_count > 0
           && (self->ring_count >= ZM_REPLSET_WRITES_MAX
               || self->bytes + size > ZM_REPLSET_BYTES_MAX)) {
        zm_write_t *oldest = zm_replset_write(self, self->first);
        if (oldest->call)
            return false;               //  its client waits: never drop it
        s_drop_oldest(self);
    }
    return true;
}

//  Doubles the ring, keeping each write at seq & (size - 1).
static void
s_grow(zm_replset_t *self)
{
    size_t size = self->ring_size * 2;
    zm_write_t **ring = zm_alloc(size * sizeof *ring);
    for (uint64_t seq = self->first; seq <= self->last; seq++)
        ring[seq & (size - 1)] = self->ring[seq & (self->ring_size - 1)];
    free(self->ring);
    self->ring = ring;
    self->ring_size = size;
}

zm_write_t *
zm_replset_append(zm_replset_t *self, zm_call_t *call, uint32_t kind)
{
    assert(self);
    assert(call && call->body);
    assert(self->epoch);
    if (self->ring_count == self->ring_size)
        s_grow(self);
    zm_write_t *write = zm_alloc(sizeof *write);
    write->seq = ++self->last;
    write->write_id = call->request_id;
    write->kind = kind;
    write->body = call->body;
    call->body = NULL;
    write->call = call;
    if (self->ring_count == 0)
        self->first = write->seq;
    self->ring[write->seq & (self->ring_size - 1)] = write;
    self->ring_count++;
    self->bytes += s_write_bytes(write);
    self->unanswered++;
    self->writes++;
    return write;
}

void
zm_replset_clear(zm_replset_t *self, zlistx_t *orphans)
{
    while (self->ring_count > 0) {
        zm_write_t *oldest = zm_replset_write(self, self->first);
        if (oldest->call) {
            zlistx_add_end(orphans, oldest->call);
            oldest->call = NULL;
        }
        s_drop_oldest(self);
    }
    self->first = self->last + 1;
    self->bytes = 0;
    self->unanswered = 0;
}

uint32_t
zm_replset_acks(const zm_write_t *write)
{
    return (uint32_t) __builtin_popcountll(write->acked_by);
}

const char *
zm_member_state_name(zm_member_state_t state)
{
    switch (state) {
    case ZM_MEMBER_JOINED: return "joined";
    case ZM_MEMBER_CATCHING: return "catching up";
    case ZM_MEMBER_CURRENT: return "current";
    }
    return "unknown";
}
