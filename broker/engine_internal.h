//  engine_internal - what the engine's files share: engine.c (RPC routing
//  and the common paths) and engine_pipe.c (pipelines). Not for the transport.
#ifndef ZM_ENGINE_INTERNAL_H_INCLUDED
#define ZM_ENGINE_INTERNAL_H_INCLUDED

#include "engine.h"


//  Queues command for the peer *routing_p, taking the routing frame.
void zm_engine_emit(zm_engine_t *self, zframe_t **routing_p, zm_proto_t *command);

//  Queues a HEARTBEAT for routing, which the caller keeps.
void zm_engine_heartbeat(zm_engine_t *self, zframe_t *routing);

//  Queues command for routing, which the caller keeps.
void zm_engine_send(zm_engine_t *self, zframe_t *routing, zm_proto_t *command);

//  Answers a CALL (request_id) with an error REPLY.
void zm_engine_reply_error(zm_engine_t *self, zframe_t *client, uint64_t request_id,
                           uint32_t status, const char *reason);

//  Ends a worker session: its calls are requeued or answered 502.
void zm_engine_retire_worker(zm_engine_t *self, zm_worker_t *worker, const char *why,
                             int64_t now);

void zm_engine_disconnect(zm_engine_t *self, zframe_t *routing, uint32_t status,
                          const char *reason);

//  True, after answering DISCONNECT 400 and counting it, if a READY or a
//  CONSUME names a reserved zmesh.* service or pipeline (what: "service"...).
bool zm_engine_refuse_reserved(zm_engine_t *self, zframe_t *routing, const char *id,
                               const char *name, const char *what, int64_t now);

//  Counts a malformed message from a peer that holds no session.
void zm_engine_count_garbage(zm_engine_t *self, const char *id, int64_t now);

//  engine_auth.c: who may do what (ZMP.md section 18), with a keyring only.
//  Checks the key of a message's sender before it is decoded; false (counted,
//  the connection to be closed) if the key is not in the keyring. A session
//  that routing id held under another key is ended first.
bool zm_engine_auth_sender(zm_engine_t *self, const char *id, const char *user_id, int64_t now);
//  Checks a decoded command from a peer without a session against the
//  sender's rights; false, after answering 403 and counting it, if denied.
bool zm_engine_auth_admit(zm_engine_t *self, zframe_t *routing, const char *id,
                          zm_proto_t *command, int64_t now);
//  Checks a push-endpoint PUSH; false (logged and counted) if denied.
bool zm_engine_auth_push(zm_engine_t *self, const char *user_id, const char *pipeline);

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
//  Ends a consumer session: what it held goes back in line.
void zm_engine_pipe_retire(zm_engine_t *self, zm_consumer_t *consumer, const char *why,
                           int64_t now);
void zm_engine_pipe_kick(zm_engine_t *self, zm_consumer_t *consumer, uint32_t status,
                         const char *reason, int64_t now);
//  Forgets the producer links of the connection with routing id id (closed).
void zm_engine_pipe_forget_links(zm_engine_t *self, const char *id);
//  A send to routing failed: true if it was a consumer's (now retired).
bool zm_engine_pipe_send_failed(zm_engine_t *self, const char *id, bool full, int64_t now);
void zm_engine_pipe_tick(zm_engine_t *self, int64_t now);
//  Moves the ACCEPTs owed to producers into the outbox.
void zm_engine_pipe_report(zm_engine_t *self);

//  Ends a worker session with DISCONNECT 400 for a protocol violation.
void zm_engine_kick_worker(zm_engine_t *self, zm_worker_t *worker, const char *reason,
                           int64_t now);

//  The call has its answer or is dropped: a retry of it is a new call now.
void zm_engine_settle(zm_engine_t *self, zm_call_t *call);

//  Answers call with status (200 or 500) and *body_p (taken; NULL: nil),
//  counts it, and settles the call. Its routing frame goes with the REPLY.
void zm_engine_answer(zm_engine_t *self, zm_call_t *call, uint32_t status, zframe_t **body_p);

//  The service name, made known if it is not (NULL: the table is full).
zm_service_t *zm_engine_service_require(zm_engine_t *self, const char *name, int64_t now);

//  Sends the service's queued calls to free workers (or sequences them).
void zm_engine_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now);

//  Hands call (out of the queue) to worker, which has a free slot.
void zm_engine_send_call(zm_engine_t *self, zm_service_t *service, zm_call_t *call,
                         zm_worker_t *worker, int64_t now);

//  engine_repl.c: replicated services (ZMP.md section 20).
//  A JOIN from a connection with no session.
void zm_engine_repl_on_join(zm_engine_t *self, zframe_t **routing_p, const char *id,
                            zm_proto_t *command, int64_t now);
//  APPLIED, MISSING or SNAPSHOT from a replica.
void zm_engine_repl_on_member(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command,
                              int64_t now);
//  The replica's session ends (called before the worker is freed).
void zm_engine_repl_forget(zm_engine_t *self, zm_worker_t *worker, int64_t now);
//  Dispatch for a replicated service: writes sequenced, reads to a current replica.
void zm_engine_repl_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now);
//  Answers 408 for writes whose deadline passed.
void zm_engine_repl_tick(zm_engine_t *self, zm_service_t *service, int64_t now);

#endif
