//  engine_internal - what the engine's files share: engine.c (RPC routing
//  and the common paths) and engine_pipe.c (pipelines). Not for the transport.
#ifndef ZM_ENGINE_INTERNAL_H_INCLUDED
#define ZM_ENGINE_INTERNAL_H_INCLUDED

#include "engine.h"

#define ZM_ENGINE_ID_MAX (2 * 255 + 1)  //  a routing id in hex, NUL included

//  Writes routing's bytes in hex into buffer (ZM_ENGINE_ID_MAX bytes); returns buffer.
const char *zm_engine_hex(char *buffer, zframe_t *routing);

//  Queues command for the peer *routing_p, taking the routing frame.
void zm_engine_emit(zm_engine_t *self, zframe_t **routing_p, zm_proto_t *command);

//  Queues command for routing, which the caller keeps.
void zm_engine_send(zm_engine_t *self, zframe_t *routing, zm_proto_t *command);

void zm_engine_disconnect(zm_engine_t *self, zframe_t *routing, uint32_t status,
                          const char *reason);

//  True, after answering DISCONNECT 400 and counting it, if a READY or a
//  CONSUME names a reserved zmesh.* service or pipeline (what: "service"...).
bool zm_engine_refuse_reserved(zm_engine_t *self, zframe_t *routing, const char *id,
                               const char *name, const char *what, int64_t now);

//  Counts a malformed message from a peer that holds no session.
void zm_engine_count_garbage(zm_engine_t *self, const char *id, int64_t now);

//  engine_pipe.c: pipelines (ZMP.md section 16).
void zm_engine_pipe_init(zm_engine_t *self);
void zm_engine_pipe_destroy(zm_engine_t *self);
//  PUSH or CONSUME from a connection with no session.
void zm_engine_pipe_on_push(zm_engine_t *self, zframe_t *routing, const char *id,
                            zm_proto_t *command, int64_t now);
void zm_engine_pipe_on_consume(zm_engine_t *self, zframe_t **routing_p, const char *id,
                               zm_proto_t *command, int64_t now);
//  A PUSH whose header was read but whose body or fields failed: REFUSE it.
void zm_engine_pipe_on_bad_push(zm_engine_t *self, zframe_t *routing, const char *id,
                                const zm_proto_t *command, uint32_t status, const char *reason,
                                int64_t now);
//  A message from a registered consumer, or one it sent that did not decode.
void zm_engine_pipe_on_consumer(zm_engine_t *self, zm_consumer_t *consumer,
                                zm_proto_t *command, int64_t now);
void zm_engine_pipe_kick(zm_engine_t *self, zm_consumer_t *consumer, uint32_t status,
                         const char *reason, int64_t now);
//  A send to routing failed: true if it was a consumer's (now retired).
bool zm_engine_pipe_send_failed(zm_engine_t *self, const char *id, bool full, int64_t now);
void zm_engine_pipe_tick(zm_engine_t *self, int64_t now);
//  Moves the ACCEPTs owed to producers into the outbox.
void zm_engine_pipe_report(zm_engine_t *self);

#endif
