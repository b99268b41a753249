//  replset - the broker's state of one replicated service (ZMP.md section
//  20): its replicas (members), the epoch and sequence numbers it gives
//  writes, and the bounded buffer of recent writes that resends and
//  catch-ups are served from. Pure data and bookkeeping: no sockets, no
//  clock, no messages; engine_repl.c drives it and does the talking.
#ifndef ZM_REPLSET_H_INCLUDED
#define ZM_REPLSET_H_INCLUDED

#include "call.h"
#include "zm_proto.h"

#include <stdbool.h>
#include <stdint.h>

#define ZM_REPLSET_MEMBERS_MAX ZM_REPLICAS_MAX  //  members at most (N at most)
#define ZM_REPLSET_WRITES_MAX 16384         //  writes the buffer holds at most
#define ZM_REPLSET_BYTES_MAX ((size_t) 64 << 20)    //  and their bytes
#define ZM_REPLSET_READ_SLOTS 32            //  reads one replica holds at once
#define ZM_REPLSET_RESEND_MAX 4096          //  a replica further behind gets a snapshot
#define ZM_REPLSET_SYNC_MS 10000            //  a donor silent this long is asked no more
#define ZM_REPLSET_WINDOW 1024              //  writes sent to a replica and not yet applied

struct zm_worker;

typedef enum {
    ZM_MEMBER_JOINED,           //  waiting for the set to start sequencing
    ZM_MEMBER_CATCHING,         //  getting a snapshot or the writes it misses
    ZM_MEMBER_CURRENT,          //  has every write up to a recent one: serves reads
} zm_member_state_t;

typedef struct zm_member {
    struct zm_worker *worker;   //  borrowed: its session; worker->member points back
    zm_member_state_t state;
    uint32_t slot;              //  its bit in each write's acked_by
    uint64_t replica_id;        //  the id its JOIN gave (0: none): one replica, one member
    uint64_t joined_epoch;      //  the (epoch, seq) it reported last (JOIN, then MISSING)
    uint64_t joined_seq;
    bool live;                  //  it is sent every new write
    uint64_t applied;           //  the last seq it applied (of this set's history)
    uint64_t sent;              //  live: the last seq sent to it (at most a window past applied)
    uint64_t current_at;        //  CATCHING and live: CURRENT once applied reaches it
    uint64_t token;             //  CATCHING: the snapshot it waits for (0: none asked)
    struct zm_member *donor;    //  borrowed: who makes that snapshot
    bool relaying;              //  chunks of the snapshot are on their way to it
    uint64_t holds;             //  writes up to this seq it holds without having acknowledged
                                //  them in this session (a snapshot, or what it joined with):
                                //  they count as acknowledged once it proves its state
    int64_t waiting_since;      //  ms: when the broker's tick first saw it waiting for its
                                //  snapshot with nothing relayed since (0: not yet seen)
} zm_member_t;

//  One sequenced write (or quorum read).
typedef struct {
    uint64_t seq;
    uint64_t write_id;
    uint32_t kind;              //  ZM_WRITE_KIND_*
    zframe_t *body;             //  owned: for resends and catch-ups
    zm_call_t *call;            //  owned until answered, then NULL
    uint64_t acked_by;          //  member slots that applied it
    bool replied;               //  the first APPLIED came: status and reply hold it
    uint32_t status;
    zframe_t *reply;            //  owned: the first APPLIED's body, to compare the others
} zm_write_t;

typedef struct zm_replset {
    uint32_t replicas;          //  N, fixed by the first JOIN
    uint32_t quorum;            //  W, as the JOIN gave it (0 = majority)
    uint64_t epoch;             //  0: not sequencing (waiting for replicas to join)
    uint64_t last;              //  the last seq given
    uint64_t committed;         //  the highest seq answered to a client
    uint64_t ref_epoch;         //  the (epoch, seq) the set started from
    uint64_t ref_seq;
    zlistx_t *members;          //  owned zm_member_t, in join order
    uint64_t slots_used;        //  bit per member slot taken
    zm_write_t **ring;          //  owned: writes first..last, oldest first
    size_t ring_size;           //  capacity, a power of two
    size_t ring_count;          //  writes held
    uint64_t first;             //  seq of the oldest write held (last + 1 when none)
    size_t bytes;               //  bodies and replies held
    size_t unanswered;          //  writes whose client waits
    uint64_t next_token;        //  last SYNC token given
    uint64_t writes;            //  writes and quorum reads sequenced
    uint64_t catchups;          //  snapshot catch-ups started
    bool replacing;             //  a member's old session is ending for its new one: the set
                                //  goes on meanwhile
} zm_replset_t;

zm_replset_t *zm_replset_new(uint32_t replicas, uint32_t quorum);
void zm_replset_destroy(zm_replset_t **self_p);

//  W: the quorum as a count of replicas.
uint32_t zm_replset_quorum(const zm_replset_t *self);

//  R = N - W + 1: replicas that must join before sequencing starts; any R
//  of them include one that holds every write a quorum acknowledged.
uint32_t zm_replset_start_count(const zm_replset_t *self);

//  A new member for worker; NULL if the set has its N members already (a
//  quorum of W out of more than N would not meet the N-W+1 a restarted
//  broker waits for).
zm_member_t *zm_replset_add(zm_replset_t *self, struct zm_worker *worker, uint64_t epoch,
                            uint64_t seq);

//  Removes member (freed): its acks of writes not yet answered no longer
//  count (a replica that is gone may have lost them), and members it was
//  a donor for lose their donor.
void zm_replset_remove(zm_replset_t *self, zm_member_t *member);

size_t zm_replset_count(const zm_replset_t *self, zm_member_state_t state);

//  The write seq if the buffer still holds it, else NULL.
zm_write_t *zm_replset_write(const zm_replset_t *self, uint64_t seq);

//  True if the buffer has room for one more write of size bytes, after
//  dropping the oldest writes that are answered.
bool zm_replset_room(zm_replset_t *self, size_t size);

//  Gives call the next seq and keeps it as a write (takes the call and its
//  body). The caller checked zm_replset_room.
zm_write_t *zm_replset_append(zm_replset_t *self, zm_call_t *call, uint32_t kind);

//  Forgets every write (the set stops sequencing); the calls still waiting
//  move to orphans (owned zm_call_t) for the caller to answer.
void zm_replset_clear(zm_replset_t *self, zlistx_t *orphans);

//  Bits set in a write's acked_by.
uint32_t zm_replset_acks(const zm_write_t *write);

const char *zm_member_state_name(zm_member_state_t state);

#endif
