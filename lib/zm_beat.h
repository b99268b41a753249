//  zm_beat - the heartbeat timing that the worker and the consumer engine
//  threads share with the broker (ZMP.md section 10.1): a HEARTBEAT is due
//  heartbeat_ms after the last message sent, and the broker counts as gone
//  heartbeat_ms x liveness after the last message heard.
#ifndef ZM_BEAT_H_INCLUDED
#define ZM_BEAT_H_INCLUDED

#include <stdint.h>

//  When the engine next has something to do: the earlier of the two.
static inline int64_t
zm_beat_next(int64_t last_sent, int64_t last_heard, int64_t heartbeat_ms, int64_t liveness)
{
    int64_t due = last_sent + heartbeat_ms;
    int64_t dead = last_heard + heartbeat_ms * liveness;
    return dead < due ? dead : due;
}

#endif
