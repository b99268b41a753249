//  liveness - the heartbeat bookkeeping a worker and a consumer session
//  share (ZMP.md section 10.1): the interval and liveness agreed when the
//  peer registered, when it was last heard from, and when it was last sent
//  anything. Pure logic: the engine passes `now`.
#ifndef ZM_LIVENESS_H_INCLUDED
#define ZM_LIVENESS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t heartbeat_ms;      //  agreed at registration
    uint32_t liveness;          //  silent intervals before the peer is dead
    int64_t last_heard;         //  ms: last message from the peer
    int64_t last_sent;          //  ms: last message to the peer
} zm_liveness_t;

static inline void
zm_liveness_init(zm_liveness_t *self, uint32_t heartbeat_ms, uint32_t liveness, int64_t now)
{
    self->heartbeat_ms = heartbeat_ms;
    self->liveness = liveness;
    self->last_heard = now;
    self->last_sent = now;
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

#endif
