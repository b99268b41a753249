//  liveness - the heartbeat bookkeeping a worker and a consumer session
//  share (ZMP.md section 10.1): the interval and liveness agreed when the
//  peer registered, when it was last heard from, and when it was last sent
//  anything; and the schedule that finds, without visiting every peer on
//  every tick, the peers whose HEARTBEAT or expiry is due. Pure logic: the
//  engine passes `now`, which never goes back.
#ifndef ZM_LIVENESS_H_INCLUDED
#define ZM_LIVENESS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zm_liveness_sched zm_liveness_sched_t;

typedef struct {
    uint32_t heartbeat_ms;      //  agreed at registration
    uint32_t liveness;          //  silent intervals before the peer is dead
    int64_t last_heard;         //  ms: last message from the peer
    int64_t last_sent;          //  ms: last message to the peer
    zm_liveness_sched_t *sched; //  borrowed: the schedule that holds it, NULL if none
    size_t slot;                //  its place in that schedule
    int64_t check_at;           //  ms: when that schedule looks at it next
    void *owner;                //  borrowed: the worker or consumer it belongs to
} zm_liveness_t;

static inline void
zm_liveness_init(zm_liveness_t *self, uint32_t heartbeat_ms, uint32_t liveness, int64_t now)
{
    self->heartbeat_ms = heartbeat_ms;
    self->liveness = liveness;
    self->last_heard = now;
    self->last_sent = now;
    self->sched = NULL;
    self->slot = 0;
    self->check_at = 0;
    self->owner = NULL;
}

//  True once the peer was silent for heartbeat_ms x liveness.
static inline bool
zm_liveness_expired(const zm_liveness_t *self, int64_t now)
{
    return now - self->last_heard >= (int64_t) self->heartbeat_ms * self->liveness;
}

//  True when the peer was sent nothing for heartbeat_ms: a HEARTBEAT is due.
static inline bool
zm_liveness_due(const zm_liveness_t *self, int64_t now)
{
    return now - self->last_sent >= (int64_t) self->heartbeat_ms;
}

//  The earliest time at which zm_liveness_expired or zm_liveness_due can
//  become true, given what was heard and sent so far.
static inline int64_t
zm_liveness_next(const zm_liveness_t *self)
{
    int64_t due = self->last_sent + (int64_t) self->heartbeat_ms;
    int64_t dead = self->last_heard + (int64_t) self->heartbeat_ms * self->liveness;
    return dead < due ? dead : due;
}

//  The schedule: peers ordered by check_at (a binary heap). Hearing from a
//  peer or sending it something only moves its timestamps, in O(1): the
//  entry keeps its earlier check_at, a lower bound of the real one, so a
//  peer is never checked late. When that time comes the engine pops the
//  peer, checks it against the timestamps (expired? HEARTBEAT due?) and,
//  if it lives on, adds it again at its real next check: each peer is
//  looked at about once per heartbeat interval, not on every tick.
zm_liveness_sched_t *zm_liveness_sched_new(void);
//  Peers still scheduled are left out of it (their sched becomes NULL).
void zm_liveness_sched_destroy(zm_liveness_sched_t **self_p);

//  Schedules peer (not scheduled yet) at zm_liveness_next(peer); owner is
//  what the engine gets back from it.
void zm_liveness_sched_add(zm_liveness_sched_t *self, zm_liveness_t *peer, void *owner);

//  Takes peer out of its schedule; does nothing if it is in none. A worker
//  or consumer being freed calls it, so no path can leave a freed peer in.
void zm_liveness_sched_remove(zm_liveness_t *peer);

//  The next peer whose check_at has come by now, taken out of the
//  schedule; NULL when there is none. The caller checks it and adds it
//  again if it lives on.
zm_liveness_t *zm_liveness_sched_pop(zm_liveness_sched_t *self, int64_t now);

//  Peers scheduled.
size_t zm_liveness_sched_size(const zm_liveness_sched_t *self);

//  When the schedule next has a peer to check; INT64_MAX when it is empty.
int64_t zm_liveness_sched_next(const zm_liveness_sched_t *self);

#endif
