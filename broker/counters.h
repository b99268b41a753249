//  counters - the broker's per-reason counters, one list for the struct, the
//  status reply and the docs, so a new reason cannot be forgotten in one of them.
#ifndef ZM_COUNTERS_H_INCLUDED
#define ZM_COUNTERS_H_INCLUDED

#include <stdint.h>

#define ZM_COUNTERS(X)                                                                             \
    X(calls)                /*  CALLs received                                    */              \
    X(replies)              /*  successful REPLYs forwarded to clients            */              \
    X(rejected_malformed)   /*  answered 400                                      */              \
    X(rejected_too_big)     /*  answered 413                                      */              \
    X(rejected_bad_version) /*  answered 505                                      */              \
    X(rejected_busy)        /*  answered 503: queue or service table full         */              \
    X(rejected_no_service)  /*  answered 404 after the grace                      */              \
    X(expired)              /*  answered 408: deadline passed while queued        */              \
    X(worker_lost)          /*  answered 502: the worker died holding the call    */              \
    X(requeued)             /*  idempotent calls sent again after a worker died   */              \
    X(duplicate_calls)      /*  CALLs repeating one still unanswered (retries)    */              \
    X(progress)             /*  PROGRESS reports from handlers                    */              \
    X(handler_errors)       /*  worker REPLYs with status 500, forwarded          */              \
    X(streams)              /*  streamed calls dispatched to a worker that streams */             \
    X(parts)                /*  PARTs of streamed replies forwarded to clients    */              \
    X(cancelled)            /*  calls cancelled: CANCEL, or their client left     */              \
    X(dropped_late_part)    /*  PARTs of a call already answered or cancelled     */              \
    X(workers_expired)      /*  workers silent past heartbeat x liveness          */              \
    X(workers_kicked)       /*  workers disconnected for a protocol violation     */              \
    X(workers_unreachable)  /*  workers gone without DISCONNECT, seen on a send   */              \
    X(peers_kicked)         /*  connections closed for sending garbage            */              \
    X(dropped_unroutable)   /*  messages to a peer that is gone                   */              \
    X(dropped_peer_full)    /*  messages to a peer whose queue is full            */              \
    X(dropped_late_reply)   /*  worker REPLYs for an unknown or foreign ticket    */              \
    X(pushes)               /*  PUSHes received, on both sockets                  */              \
    X(pushes_accepted)      /*  messages taken into a pipeline                    */              \
    X(pushes_refused)       /*  REFUSE 400 or 413: the message failed for good    */              \
    X(refused_full)         /*  REFUSE 503: the pipeline or a table is full       */              \
    X(duplicate_pushes)     /*  resends of messages already settled               */              \
    X(skipped_pushes)       /*  PUSHes after a refused seq, to be resent          */              \
    X(deliveries)           /*  DELIVERs, redeliveries included                   */              \
    X(redeliveries)         /*  messages put back after their consumer was lost   */              \
    X(acks)                 /*  messages acknowledged by consumers                */              \
    X(stray_acks)           /*  ACK or RELEASE ids the sender did not hold        */              \
    X(released)             /*  messages consumers gave back unseen (RELEASE)     */              \
    X(consumers_expired)    /*  consumers silent past heartbeat x liveness        */              \
    X(consumers_kicked)     /*  consumers disconnected for a protocol violation   */              \
    X(consumers_unreachable) /* consumers gone without DISCONNECT, seen on a send */              \
    X(dropped_poison)       /*  messages given up after max-deliveries            */              \
    X(dropped_push_malformed) /* bad messages off the push endpoint (logged)      */ \
    X(denied)               /*  commands refused by the sender key's rights (403) */              \
    X(denied_unknown_key)   /*  messages from a key no longer in the keyring      */              \
    X(sessions_revoked)     /*  sessions ended: their key was removed or lost a right */          \
    X(sessions_replaced)    /*  sessions whose routing id came back on another connection */ \
    X(sessions_closed)      /*  sessions ended as the transport saw their connection close */ \
    X(writes)               /*  writes to replicated services sequenced           */              \
    X(quorum_reads)         /*  quorum reads sequenced                            */              \
    X(replica_divergence)   /*  replicas that answered a write unlike the first   */              \
    X(catchups)             /*  snapshots asked for replicas catching up          */              \
    X(catchup_resends)      /*  replicas sent the writes they missed (MISSING)    */              \
    X(stray_applied)        /*  APPLIED or SNAPSHOT chunks nobody waits for       */              \
    X(handshakes_failed)    /*  CURVE handshakes refused: unknown key, wrong broker key, another mechanism, bad bytes */

typedef struct {
#define ZM_COUNTER_FIELD(name) uint64_t name;
    ZM_COUNTERS(ZM_COUNTER_FIELD)
#undef ZM_COUNTER_FIELD
} zm_counters_t;

#endif
