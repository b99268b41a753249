//  engine - the broker's routing logic: it decodes what a peer sent, feeds
//  the service and worker state machines, and appends the messages to send
//  to an outbox. It never touches a socket or reads the clock: broker.c owns
//  both and passes `now`, so unit tests drive the engine with fabricated
//  messages and an explicit clock.
#ifndef ZM_ENGINE_H_INCLUDED
#define ZM_ENGINE_H_INCLUDED

#include "counters.h"
#include "keyring.h"
#include "pipeline.h"
#include "service.h"
#include "worker.h"
#include "zm_proto.h"

typedef struct {
    int64_t grace_ms;           //  how long a call waits for a service's first worker
    size_t max_queue;           //  queued calls per service
    size_t max_queue_bytes;     //  queued body bytes per service
    size_t max_services;        //  services (known names) at once
    uint32_t max_attempts;      //  dispatches of an idempotent call at most
    uint32_t max_garbage;       //  malformed messages per window before a kick; 0 = never
    int64_t garbage_window_ms;  //  the window
    uint32_t max_deliveries;    //  deliveries of a pipeline message at most
    size_t max_pipelines;       //  pipelines known at once
    size_t max_links;           //  producer links (connection x pipeline) at once
    int64_t link_idle_ms;       //  a link silent this long is forgotten
    zm_proto_limits_t limits;   //  body size, payload check, depth
    uint64_t epoch_base;        //  wall-clock ms at the broker's start: replicated services'
                                //  epochs are at least this, so no two starts share one
    uint64_t epoch_salt;        //  random at the broker's start (0 in tests): each epoch is
                                //  moved up by it modulo ZM_EPOCH_SALT_RANGE
} zm_engine_config_t;

typedef struct zm_engine {
    zm_engine_config_t config;
    zhashx_t *services;         //  name -> owned zm_service_t
    zhashx_t *workers;          //  hex routing id -> owned zm_worker_t
    zm_liveness_sched_t *worker_beats;      //  owned: the workers, by next liveness check
    zm_liveness_sched_t *consumer_beats;    //  owned: the consumers, likewise
    zmsg_t *heartbeat;          //  owned: HEARTBEAT encoded once, [empty][header]
    zhashx_t *calls;            //  ticket -> borrowed zm_call_t, calls in flight (the
                                //  holding worker's inflight list decides their fate)
    zhashx_t *unanswered;       //  call key -> borrowed zm_call_t, queued or held calls
                                //  not yet answered: a retried CALL finds its original
    zhashx_t *garbage;          //  hex routing id -> owned s_garbage_t, recent offenders
    bool kick;                  //  the last message's sender is to be disconnected
    zhashx_t *pipelines;        //  name -> owned zm_pipeline_t
    zhashx_t *consumers;        //  hex routing id -> owned zm_consumer_t
    zhashx_t *links;            //  "hex routing id/pipeline" -> owned zm_link_t
    zhashx_t *items;            //  message id -> owned zm_item_t, delivered, not acked
    zlistx_t *reports;          //  borrowed zm_link_t with an ACCEPT to send
    uint64_t next_message_id;   //  last message id given
    int64_t links_swept_at;     //  ms: the last sweep of idle links
    zframe_t *parked;           //  owned: push-endpoint body waiting for room
    zm_pipeline_t *parked_in;   //  borrowed: the full pipeline it waits for
    zlistx_t *outbox;           //  owned zmsg_t: [routing][empty][header][body?]
    uint64_t next_ticket;       //  last ticket given
    size_t open_streams;        //  streamed calls not yet answered (queued or held)
    uint64_t last_epoch;        //  the last epoch a replicated service started: never reused
    int64_t started_at;         //  ms
    zm_keyring_t *keyring;      //  borrowed: CURVE keys and their rights; NULL: open broker
    zm_key_t *sender;           //  borrowed: the key of the message being handled
    zm_counters_t counters;
} zm_engine_t;

#define ZM_EPOCH_SALT_RANGE (1u << 20)

#define ZM_ENGINE_ID_MAX (2 * 255 + 1)  //  a routing id in hex, NUL included

//  Writes routing's bytes in hex into buffer (ZM_ENGINE_ID_MAX bytes), the
//  form the engine keys peers by; returns buffer.
const char *zm_engine_hex(char *buffer, zframe_t *routing);

//  The defaults of ZMP.md's limits table.
void zm_engine_config_defaults(zm_engine_config_t *config);

zm_engine_t *zm_engine_new(const zm_engine_config_t *config, int64_t now);
void zm_engine_destroy(zm_engine_t **self_p);

//  Turns authorization on (ZMP.md section 18): from now on every message
//  must come with the public key of its sender (its ZAP User-Id), and each
//  command is checked against that key's rights in keyring (borrowed).
void zm_engine_set_keyring(zm_engine_t *self, zm_keyring_t *keyring);

//  Feeds one message as the ROUTER gave it: [routing id][empty][header]
//  [body?]. Takes *msg_p. user_id is the sender's public key (ignored, and
//  may be NULL, without a keyring). Every outcome is a message in the
//  outbox, a counter, or both.
void zm_engine_on_message(zm_engine_t *self, zmsg_t **msg_p, const char *user_id, int64_t now);

//  Feeds one message off the push endpoint, [header][body] (ZMP.md 16.7).
//  Takes *msg_p. A message that can never be taken is logged and counted;
//  one whose pipeline is full is kept until it fits, and meanwhile
//  zm_engine_push_blocked() is true: the transport stops reading the push
//  endpoint, so its producers block instead of the broker growing.
void zm_engine_on_push(zm_engine_t *self, zmsg_t **msg_p, const char *user_id, int64_t now);
bool zm_engine_push_blocked(const zm_engine_t *self);

//  Heartbeats, worker expiry, queued-call expiry and idle-service cleanup.
//  Call it at least every ZM_ENGINE_TICK_MS.
void zm_engine_on_tick(zm_engine_t *self, int64_t now);
#define ZM_ENGINE_TICK_MS 100

//  The transport could not deliver a message to routing (the peer is gone,
//  or its queue is full when full is true). A worker there is lost.
void zm_engine_on_send_failed(zm_engine_t *self, zframe_t *routing, bool full, int64_t now);

//  After the keyring changed: ends, with DISCONNECT 403, every worker and
//  consumer session whose key is gone or may no longer do what it does.
void zm_engine_recheck_keys(zm_engine_t *self, int64_t now);

//  The transport saw the connection of routing id id (hex) close: its
//  worker or consumer session ends now, its calls' answers and its producer
//  links are dropped, so that a peer that takes the routing id later gets
//  none of its traffic.
void zm_engine_on_gone(zm_engine_t *self, const char *id, int64_t now);

//  True if the sender of the message just fed to zm_engine_on_message has sent
//  max_garbage malformed messages within the window and must be disconnected
//  (ROUTER cannot do that: the transport closes the connection). Clears the flag.
bool zm_engine_take_kick(zm_engine_t *self);

//  The next message to send, owned by the caller; NULL when the outbox is
//  empty. ACCEPTs owed to producers are added once the rest has gone, so a
//  batch of PUSHes costs one ACCEPT per producer.
zmsg_t *zm_engine_outbox_pop(zm_engine_t *self);

//  The reply body of the reserved service "zmesh.status" (status.c).
zframe_t *zm_engine_status(const zm_engine_t *self, int64_t now);

#endif
