//  zmesh.h - the C API of zmesh: RPC clients and workers, pipeline producers
//  and consumers and the replicas of replicated services, that talk to a
//  zmesh broker with the ZMP protocol (schemas/ZMP.md), and helpers to build
//  MessagePack payloads. Self-contained: it includes only standard headers.
//
//  Conventions: every int-returning call returns ZMESH_OK (0) or a negative
//  zmesh_err_t. A `T **x_p` argument hands ownership over and NULLs the
//  caller's pointer only on ZMESH_OK. Objects are not thread-safe: use one
//  from one thread at a time.
#ifndef ZMESH_H_INCLUDED
#define ZMESH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZMESH_VERSION_MAJOR 0
#define ZMESH_VERSION_MINOR 1
#define ZMESH_VERSION_PATCH 0

//  Default broker endpoint of every program and of the examples.
#define ZMESH_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"
//  Default push endpoint of the broker, for plain PUSH sockets (ZMP.md 16.7).
#define ZMESH_DEFAULT_PUSH_ENDPOINT "tcp://127.0.0.1:5556"

typedef enum {
    ZMESH_OK = 0,
    ZMESH_EINVAL = -1,      //  bad argument, or the broker found the request malformed
    ZMESH_ETIMEDOUT = -2,   //  no reply before the deadline (or the broker expired the call)
    ZMESH_ENOSERVICE = -3,  //  no worker offered that service within the broker's grace
    ZMESH_EAGAIN = -4,      //  would block or busy: the service queue is full, retry later
    ZMESH_ECLOSED = -5,     //  the object is stopped or closed
    ZMESH_ETOOBIG = -6,     //  payload over the size limit
    ZMESH_EHANDLER = -7,    //  the worker's handler reported an error
    ZMESH_EWORKERLOST = -8, //  the worker died or left while holding the call
    ZMESH_EPROTO = -9,      //  the peer broke the protocol (or speaks another version)
    ZMESH_ESYS = -10,       //  a system or libzmq call failed (see errno)
    ZMESH_EUNREACHABLE = -11, //  no broker was connected to take the call
    ZMESH_EDENIED = -12,    //  the broker's rules deny this key that command (status 403)
} zmesh_err_t;

//  Returns a static, human-readable text for a zmesh_err_t value.
const char *zmesh_strerror(int err);

//  ---------------------------------------------------------------------
//  zmesh_msg: an owned, immutable MessagePack payload.

typedef struct zmesh_msg zmesh_msg_t;

//  Copies size bytes into a new message. Never NULL (aborts on OOM).
zmesh_msg_t *zmesh_msg_new(const void *data, size_t size);

//  Frees the message and sets *self_p to NULL; does nothing if *self_p is NULL.
void zmesh_msg_destroy(zmesh_msg_t **self_p);

//  The payload bytes, borrowed until the message is destroyed.
const void *zmesh_msg_data(const zmesh_msg_t *self);
size_t zmesh_msg_size(const zmesh_msg_t *self);

//  Checks that data holds exactly one well-formed MessagePack object with
//  at most max_depth levels of nesting (0, or more than 64, means 64).
//  Returns ZMESH_OK or ZMESH_EINVAL. Allocates nothing; safe on any bytes.
int zmesh_msgpack_check(const void *data, size_t size, int max_depth);

//  ---------------------------------------------------------------------
//  zmesh_pack: builds one MessagePack payload, value by value. A map of n
//  pairs is zmesh_pack_map(n) then 2n values; an array likewise.

typedef struct zmesh_pack zmesh_pack_t;

zmesh_pack_t *zmesh_pack_new(void);
void zmesh_pack_destroy(zmesh_pack_t **self_p);
void zmesh_pack_nil(zmesh_pack_t *self);
void zmesh_pack_bool(zmesh_pack_t *self, bool value);
void zmesh_pack_int(zmesh_pack_t *self, int64_t value);
void zmesh_pack_uint(zmesh_pack_t *self, uint64_t value);
void zmesh_pack_double(zmesh_pack_t *self, double value);
void zmesh_pack_str(zmesh_pack_t *self, const char *value);    //  NUL-terminated UTF-8
void zmesh_pack_strn(zmesh_pack_t *self, const char *value, size_t size);
void zmesh_pack_bin(zmesh_pack_t *self, const void *value, size_t size);
void zmesh_pack_array(zmesh_pack_t *self, uint32_t count);
void zmesh_pack_map(zmesh_pack_t *self, uint32_t count);

//  The bytes packed so far, borrowed until the next call on self.
const void *zmesh_pack_data(const zmesh_pack_t *self);
size_t zmesh_pack_size(const zmesh_pack_t *self);

//  Empties the builder so it can build the next payload.
void zmesh_pack_reset(zmesh_pack_t *self);

//  ---------------------------------------------------------------------
//  zmesh_curve: the CURVE keys a client, worker, producer or consumer uses
//  to reach a broker that runs CURVE (ZMP.md, "Security"): its own key pair,
//  from a secret certificate file made by `zmesh keygen`, and the broker's
//  public key. Every object made with it encrypts its connections and proves
//  its key to the broker, whose rules say what that key may do.

typedef struct zmesh_curve zmesh_curve_t;

//  Loads the secret certificate at secret_file and the broker's public key,
//  given as 40 characters of Z85 or as the path of the broker's certificate
//  file (public or secret: only its public key is read). Refuses a secret
//  file that group or others may read or write. Blocks only on reading the
//  files. Returns NULL with *err_p (may be NULL) set to ZMESH_EINVAL on any
//  error; zmesh_curve_error() then tells why.
zmesh_curve_t *zmesh_curve_new(const char *secret_file, const char *broker_key, int *err_p);

//  Frees the keys and sets *self_p to NULL; does nothing if *self_p is NULL.
//  Objects made with them keep their own copy: destroy them in any order.
void zmesh_curve_destroy(zmesh_curve_t **self_p);

//  This key pair's public key as 40 characters of Z85, borrowed.
const char *zmesh_curve_public_key(const zmesh_curve_t *self);

//  Why the last zmesh_curve_new of the calling thread failed ("" if it
//  succeeded), borrowed until that thread's next zmesh_curve_new.
const char *zmesh_curve_error(void);

//  ---------------------------------------------------------------------
//  zmesh_client: calls services through a broker. Many calls may be in
//  flight at once; each gets a request id. The connection is made in the
//  background and survives broker restarts (libzmq reconnects).

typedef struct zmesh_client zmesh_client_t;

//  Creates a client of the broker at endpoint (for example
//  "tcp://host:5555"), or of the first broker of a comma-separated list: it
//  uses one broker at a time, and moves to the next when the one in use
//  takes no call, or leaves a call's attempt unanswered. libzmq reconnects
//  with capped exponential backoff and jitter, resolving host names again
//  each time. Returns NULL if an endpoint is invalid; *err_p (may be NULL)
//  says why.
zmesh_client_t *zmesh_client_new(const char *endpoint, int *err_p);

//  As zmesh_client_new, with every connection a CURVE client of the broker
//  with curve's keys (copied; NULL: plain, as zmesh_client_new). A broker
//  that does not know the key, or a wrong broker key, shows up as calls that
//  no broker takes (ZMESH_EUNREACHABLE) or answers (ZMESH_ETIMEDOUT).
zmesh_client_t *zmesh_client_new_secure(const char *endpoint, const zmesh_curve_t *curve,
                                        int *err_p);

//  How many times a call that gets no answer is sent again, with the same
//  request id (default 0). The call's timeout is shared out between the
//  attempts. A broker that still holds the call on the same connection
//  ignores the copy; a copy that reaches another broker, or the same one
//  after a reconnection, runs again. So retry only calls that are safe to
//  run twice (idempotent services), and writes to a replicated service
//  (zmesh_client_write): the copy of a write keeps its request id, which is
//  its write id, and the replicas apply a write id once and answer a copy
//  with the first answer (for as long as they remember it: the service's
//  65536 most recent writes).
void zmesh_client_set_retries(zmesh_client_t *self, int retries);

//  Closes the client, dropping calls still in flight, and sets *self_p to NULL.
void zmesh_client_destroy(zmesh_client_t **self_p);

//  Calls service with a MessagePack request (copied) and blocks until the
//  reply or timeout_ms (> 0). On ZMESH_OK, *reply_p is a new message the
//  caller destroys. On an error reply, zmesh_client_error() tells the detail.
//  Replies to other calls in flight that arrive meanwhile are kept for
//  zmesh_client_recv. A handler's progress reports move the deadline out.
//  Errors: ZMESH_ETIMEDOUT (a broker took the call, no answer came),
//  ZMESH_EUNREACHABLE (no broker was there to take it), ZMESH_ENOSERVICE,
//  ZMESH_EAGAIN (busy), ZMESH_ETOOBIG, ZMESH_EHANDLER, ZMESH_EWORKERLOST (a
//  worker died holding a call that is not idempotent), ZMESH_EDENIED (the
//  broker's rules do not let this key call the service), ZMESH_EINVAL,
//  ZMESH_EPROTO.
int zmesh_client_call(zmesh_client_t *self, const char *service, const void *request,
                      size_t size, int timeout_ms, zmesh_msg_t **reply_p);

//  Sends a call; *request_id_p (may be NULL) gets its id. Blocks only while
//  no broker is connected, for at most one attempt's share of timeout_ms.
//  The broker and zmesh_client_recv give up on it after timeout_ms (> 0).
//  Returns ZMESH_OK, ZMESH_EINVAL (bad service name, or the request is not
//  one MessagePack object), ZMESH_ETOOBIG, ZMESH_EUNREACHABLE or ZMESH_ESYS.
int zmesh_client_send(zmesh_client_t *self, const char *service, const void *request,
                      size_t size, int timeout_ms, uint64_t *request_id_p);

//  Replicated services (ZMP.md section 20). The broker sequences the writes
//  of such a service: each gets the next sequence number, every replica
//  applies the writes in that order, and the client is answered once the
//  service's write quorum of replicas applied it. A plain call
//  (zmesh_client_call) to it is a read served by one replica, which may not
//  have applied the most recent acknowledged writes yet; a quorum read is
//  sequenced like a write, so it sees every write acknowledged before it was
//  sent. A service that is not replicated ignores both flags: a plain call.
//  A write's request id is its write id, the key the replicas deduplicate
//  by: a client's ids start at a random 63-bit value (from /dev/urandom),
//  so the ids of different clients do not collide, and every attempt of a
//  call keeps its id (zmesh_client_set_retries).
#define ZMESH_CALL_WRITE 4      //  a write: sequenced, applied by every replica
#define ZMESH_CALL_QUORUM 8     //  a quorum read: sequenced, answered like a write

//  As zmesh_client_call, as a write to a replicated service. The reply is
//  the first replica's answer. ZMESH_ETIMEDOUT does not tell whether the
//  write applied: sending it again with the same id (retries) is safe and
//  gives the first answer. While fewer replicas than the quorum are up, the
//  write waits at the broker (until its timeout).
int zmesh_client_write(zmesh_client_t *self, const char *service, const void *request,
                       size_t size, int timeout_ms, zmesh_msg_t **reply_p);

//  As zmesh_client_call, as a quorum read of a replicated service: it
//  reflects every write acknowledged before it was sent.
int zmesh_client_read_quorum(zmesh_client_t *self, const char *service, const void *request,
                             size_t size, int timeout_ms, zmesh_msg_t **reply_p);

//  As zmesh_client_send, with flags 0 (a plain call), ZMESH_CALL_WRITE or
//  ZMESH_CALL_QUORUM (not both), so many writes can be in flight at once;
//  their outcomes come from zmesh_client_recv. *request_id_p is the write
//  id. The broker decides the order of writes in flight together: a client
//  that needs one write applied before another waits for the first reply.
int zmesh_client_send_flags(zmesh_client_t *self, const char *service, const void *request,
                            size_t size, int timeout_ms, int flags, uint64_t *request_id_p);

//  Waits up to timeout_ms (0 polls, -1 forever) for one call to complete and
//  returns its outcome: *request_id_p is its id, and on ZMESH_OK *reply_p is
//  its reply. A call whose own deadline passed completes with
//  ZMESH_ETIMEDOUT. Returns ZMESH_EAGAIN, with *request_id_p = 0, when no
//  call completed within timeout_ms (or none is in flight).
int zmesh_client_recv(zmesh_client_t *self, int timeout_ms, uint64_t *request_id_p,
                      zmesh_msg_t **reply_p);

//  Sends a streamed call: the worker may answer it with any number of parts
//  and then a final reply, read in order with zmesh_client_next (never with
//  zmesh_client_recv). window (1..1024, 0: 16) is how many parts may come
//  before the application takes them: the client grants the worker credit
//  only as parts are taken, so a slow reader slows the worker down and
//  nothing piles up in the broker. timeout_ms (> 0) bounds the silence: the
//  stream fails with ZMESH_ETIMEDOUT when no part arrives, and no credit is
//  granted, for that long. Streamed calls are never resent. Errors as for
//  zmesh_client_send.
int zmesh_client_stream(zmesh_client_t *self, const char *service, const void *request,
                        size_t size, int timeout_ms, int window, uint64_t *request_id_p);

//  Waits up to timeout_ms (0 polls, -1 forever) for the next piece of the
//  stream request_id. Returns ZMESH_OK with *last_p false and *msg_p a part
//  (the caller destroys it); or, at the end, *last_p true and the outcome of
//  the call: ZMESH_OK with *msg_p the final reply, or the call's error (as
//  for zmesh_client_call; ZMESH_EWORKERLOST if the worker died mid-stream,
//  ZMESH_EPROTO if a part was lost on the way). After *last_p is true the
//  id is forgotten. ZMESH_EAGAIN (*last_p false): nothing came in time, the
//  stream goes on. ZMESH_EINVAL (*last_p true): no such stream.
//  Completions of other calls that arrive meanwhile are kept for
//  zmesh_client_recv.
int zmesh_client_next(zmesh_client_t *self, uint64_t request_id, int timeout_ms,
                      zmesh_msg_t **msg_p, bool *last_p);

//  Gives up the call request_id (streamed or not): the broker stops its
//  worker's stream, and whatever comes for it later is dropped. Returns
//  ZMESH_OK, or ZMESH_EINVAL if no such call is in flight. Closing the
//  client cancels its calls the same way.
int zmesh_client_cancel(zmesh_client_t *self, uint64_t request_id);

//  The largest request this client sends (16 bytes to 256 MiB; default
//  $ZMESH_MAX_BODY, else 1 MiB, the broker's default --max-body). A larger
//  one fails with ZMESH_ETOOBIG before anything is sent. Set it to the
//  broker's --max-body.
void zmesh_client_set_max_body(zmesh_client_t *self, size_t max_body);

//  How many calls are in flight (sent and not yet returned by recv).
size_t zmesh_client_pending(const zmesh_client_t *self);

//  Text of the last error reply (from the broker or a worker's handler),
//  borrowed until the next call on self; "" if none.
const char *zmesh_client_error(const zmesh_client_t *self);

//  ---------------------------------------------------------------------
//  zmesh_worker: serves one service. Requests are answered by a handler
//  callback that runs on one of N handler threads, so the worker holds up
//  to N requests at once (its slots); heartbeats go on while handlers run.

typedef struct zmesh_worker zmesh_worker_t;

//  Answers one request. Runs on a handler thread: it may block as long as
//  it needs. Set *reply_p to a new message (or leave it NULL for a nil
//  payload) and return ZMESH_OK; or return any other value to fail the
//  call with ZMESH_EHANDLER at the client, with *reply_p (if set) holding a
//  MessagePack string that says why. The worker destroys *reply_p.
typedef int(zmesh_handler_fn)(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg);

//  Creates a worker of service for the broker at endpoint. Does not
//  connect yet. Returns NULL on a bad argument; *err_p (may be NULL) says why.
zmesh_worker_t *zmesh_worker_new(const char *endpoint, const char *service, int *err_p);

//  As zmesh_worker_new, with every connection a CURVE client of the broker
//  with curve's keys (copied; NULL: plain).
zmesh_worker_t *zmesh_worker_new_secure(const char *endpoint, const char *service,
                                        const zmesh_curve_t *curve, int *err_p);

//  Stops the worker if it runs, frees it and sets *self_p to NULL.
void zmesh_worker_destroy(zmesh_worker_t **self_p);

//  Number of handler threads, and so of requests held at once (1..1024,
//  default 1). Call before zmesh_worker_run.
void zmesh_worker_set_threads(zmesh_worker_t *self, int threads);

//  Runs the handler in the worker's own thread instead (slots > 0; 0 turns
//  it off), and offers the broker slots requests at once (1..1024): they
//  wait at the worker and run one after another, with no hand-off between
//  threads and no round trip between them. For handlers that return quickly:
//  the worker heartbeats only between them, so one must not run for longer
//  than the heartbeat interval x liveness, and zmesh_worker_progress is not
//  available (ZMESH_EINVAL). Call before zmesh_worker_run.
void zmesh_worker_set_inline(zmesh_worker_t *self, int slots);

//  Heartbeat interval in ms (100..60000, default 1000) and liveness, the
//  number of silent intervals after which a peer is dead (2..100, default 3).
void zmesh_worker_set_heartbeat(zmesh_worker_t *self, int interval_ms, int liveness);

//  Declares the service's calls idempotent (default false): if this worker
//  dies holding one, the broker gives it to another worker (up to its
//  --max-attempts) instead of answering ZMESH_EWORKERLOST.
void zmesh_worker_set_idempotent(zmesh_worker_t *self, bool idempotent);

//  From inside a handler: the call needs extend_ms more. Moves the call's
//  deadline at the broker and at a zmesh client out to now + extend_ms.
//  Returns ZMESH_OK, or ZMESH_EINVAL when not called from a handler.
int zmesh_worker_progress(int extend_ms);

//  From inside a handler: true if the caller asked for a streamed reply
//  (zmesh_client_stream, `zmesh call --stream`), so the handler may send
//  parts before its final reply.
bool zmesh_worker_streaming(void);

//  From inside a handler of a streamed request: sends one part of the reply,
//  size bytes of data that must be one MessagePack object (copied), after
//  the parts sent before it and before the final reply. The worker may send
//  only while it has credit, which the client grants as it reads: this
//  blocks while there is none, up to timeout_ms (0: not at all, -1: no
//  limit). Returns ZMESH_OK; ZMESH_ECLOSED when the call is cancelled (the
//  client gave up, left or timed out, the broker was lost, or the worker
//  stops): stop streaming and return; ZMESH_EAGAIN (timeout_ms 0) or
//  ZMESH_ETIMEDOUT when no credit came in time; ZMESH_ETOOBIG over
//  $ZMESH_MAX_BODY (default 1 MiB); ZMESH_EINVAL when not called from a
//  handler thread of a streamed request, or data is not MessagePack.
//  Not available to inline handlers (zmesh_worker_set_inline).
int zmesh_worker_send_part(const void *data, size_t size, int timeout_ms);

//  From inside a handler: true once the call was cancelled (see
//  zmesh_worker_send_part); a long handler may poll it. Never blocks.
bool zmesh_worker_cancelled(void);

//  Connects, registers and serves requests until zmesh_worker_stop() or
//  SIGINT/SIGTERM; reconnects and re-registers when the broker goes silent
//  or restarts. endpoint may be a comma-separated list: each reconnection
//  goes to the next broker of the list.
//  Returns ZMESH_OK when stopped, ZMESH_EDENIED if the broker's rules do not
//  let this key serve the service, ZMESH_EPROTO if the broker refused it
//  otherwise (zmesh_worker_error() tells why for both), ZMESH_EINVAL if the endpoint is not one
//  libzmq can connect to, ZMESH_ESYS if a socket failed. On a stop it sends
//  DISCONNECT first, so the broker answers calls still running WORKER_LOST at
//  once; it then returns when every running handler has returned.
int zmesh_worker_run(zmesh_worker_t *self, zmesh_handler_fn *handler, void *arg);

//  Asks a running zmesh_worker_run to return. Safe to call from any
//  thread and from a signal handler.
void zmesh_worker_stop(zmesh_worker_t *self);

//  Text of the broker's last refusal, borrowed; "" if none.
const char *zmesh_worker_error(const zmesh_worker_t *self);

//  ---------------------------------------------------------------------
//  zmesh_replica: one replica of a replicated service (ZMP.md section 20).
//  The broker numbers the service's writes; every replica applies them in
//  that order, each write id once, and a write is answered once a quorum of
//  replicas applied it (made it durable, with a data directory). Reads go to
//  one replica. A replica that joins late, or lost its disk, catches up from
//  a snapshot of another. The service's state is the application's: the
//  replica drives it through zmesh_state_t.

typedef struct zmesh_replica zmesh_replica_t;

//  The service's state machine. handle runs one request: write is true for a
//  numbered write (the same on every replica, in the same order), false for
//  a read, which must change nothing. It returns ZMESH_OK with *reply_p a new
//  message (or NULL for nil), or an error (the call fails with
//  ZMESH_EHANDLER at the client, *reply_p, if set, a MessagePack string that
//  says why). Its outcome must depend only on the state and the request, so
//  that replicas agree. snapshot serialises the whole state into *data_p
//  (malloc'ed; the replica frees it); restore replaces the state with a
//  snapshot's and returns true, or false, the state unchanged, if the bytes
//  are not one. All three run on the thread of zmesh_replica_new (replaying
//  the data directory) and then on the thread of zmesh_replica_run.
typedef struct {
    int (*handle)(void *arg, bool write, const void *body, size_t size, zmesh_msg_t **reply_p);
    void (*snapshot)(void *arg, void **data_p, size_t *size_p);
    bool (*restore)(void *arg, const void *data, size_t size);
    void *arg;
} zmesh_state_t;

//  Creates a replica of service for the broker at endpoint (a comma-
//  separated list: each reconnection goes to the next). state is copied; its
//  arg is borrowed and must outlive the replica. replicas (1..16) is the
//  service's replication factor and quorum (0..replicas, 0 for a majority,
//  replicas / 2 + 1) how many replicas must apply a write before it is
//  answered; every replica of a service must give the same two. data_dir
//  (created if missing, one replica per directory) keeps the state across
//  restarts: its log is replayed into state here, and what cannot be read
//  back whole is set aside and fetched from the other replicas; NULL keeps
//  the state in memory only. Does not connect yet. Returns NULL with *err_p
//  (may be NULL) ZMESH_EINVAL for a bad argument, or ZMESH_ESYS when
//  data_dir cannot be used or another replica holds it (logged with why).
zmesh_replica_t *zmesh_replica_new(const char *endpoint, const char *service,
                                   const zmesh_state_t *state, int replicas, int quorum,
                                   const char *data_dir, int *err_p);

//  As zmesh_replica_new, with every connection a CURVE client of the broker
//  with curve's keys (copied; NULL: plain).
zmesh_replica_t *zmesh_replica_new_secure(const char *endpoint, const char *service,
                                          const zmesh_state_t *state, int replicas,
                                          int quorum, const char *data_dir,
                                          const zmesh_curve_t *curve, int *err_p);

//  Heartbeat interval in ms (100..60000, default 1000) and liveness (2..100,
//  default 3), as for workers. Call before zmesh_replica_run.
void zmesh_replica_set_heartbeat(zmesh_replica_t *self, int interval_ms, int liveness);

//  Connects, joins with the last write it holds, and serves in this thread:
//  applies the broker's writes (several at once, made durable together
//  before they are acknowledged), answers reads, sends snapshots to
//  replicas catching up and installs its own. Rejoins when the broker goes
//  silent, restarts or sends it away. Blocks until zmesh_replica_stop() or
//  SIGINT/SIGTERM (ZMESH_OK), or a fatal error: ZMESH_ESYS when a write or
//  a snapshot could not be made durable (nothing not durable is ever
//  acknowledged; the replica must be restarted, and serves no more until
//  then) or a socket failed, ZMESH_EDENIED or ZMESH_EPROTO when the broker
//  refused it for good, ZMESH_EINVAL when the endpoint is unusable.
//  zmesh_replica_error() tells why.
int zmesh_replica_run(zmesh_replica_t *self);

//  Asks a running zmesh_replica_run to return. Safe to call from any thread
//  and from a signal handler.
void zmesh_replica_stop(zmesh_replica_t *self);

//  Why the replica stopped or was refused, borrowed; "" if nothing went wrong.
const char *zmesh_replica_error(const zmesh_replica_t *self);

//  Frees the replica (closing its data directory) and sets *self_p to NULL.
//  Not while zmesh_replica_run runs.
void zmesh_replica_destroy(zmesh_replica_t **self_p);

//  ---------------------------------------------------------------------
//  zmesh_producer: sends one-way messages into a named pipeline (ZMP.md
//  section 16). The broker hands each message to one consumer of the
//  pipeline. A full pipeline slows the producer down: send blocks (or, asked
//  not to, returns ZMESH_EAGAIN); nothing is dropped. Every message is kept
//  and sent again until the broker accepted it, so a broker restart or a
//  lost message costs a resend, never the message.

typedef struct zmesh_producer zmesh_producer_t;

//  When zmesh_producer_send returns: the mode, per producer or per message.
#define ZMESH_QUEUED 1          //  in the local socket queue
#define ZMESH_ACCEPTED 2        //  the broker holds it (ACCEPT came)
#define ZMESH_PROCESSED 3       //  a consumer acknowledged it (DONE came)
#define ZMESH_MODE_MASK 0x0f
//  Send flags, or-ed with a mode.
#define ZMESH_ASYNC 0x10        //  don't wait for the receipt: zmesh_producer_flush does
#define ZMESH_DONTWAIT 0x20     //  never block: ZMESH_EAGAIN when the window is full

//  Creates a producer for pipeline at the broker at endpoint (a comma-
//  separated list is used one broker at a time, as by zmesh_client_new).
//  Does not block. Returns NULL on a bad endpoint or pipeline name; *err_p
//  (may be NULL) says why.
zmesh_producer_t *zmesh_producer_new(const char *endpoint, const char *pipeline, int *err_p);

//  As zmesh_producer_new, with every connection a CURVE client of the broker
//  with curve's keys (copied; NULL: plain).
zmesh_producer_t *zmesh_producer_new_secure(const char *endpoint, const char *pipeline,
                                            const zmesh_curve_t *curve, int *err_p);

//  Frees the producer and sets *self_p to NULL. Messages not yet accepted are
//  dropped: call zmesh_producer_flush first.
void zmesh_producer_destroy(zmesh_producer_t **self_p);

//  The mode of sends whose flags name none (default ZMESH_ACCEPTED).
void zmesh_producer_set_mode(zmesh_producer_t *self, int mode);

//  How many messages may be sent and not yet accepted at once (1..100000,
//  default 1000); a full window is what blocks a send.
void zmesh_producer_set_window(zmesh_producer_t *self, int window);

//  How long a blocking send may wait in all, in ms (-1, the default: no limit).
void zmesh_producer_set_timeout(zmesh_producer_t *self, int timeout_ms);

//  Sends one message: size bytes of data, which must be one MessagePack
//  object (copied). flags: a mode (0 = the producer's), ZMESH_ASYNC,
//  ZMESH_DONTWAIT. Returns ZMESH_OK once the mode is met (at once with ASYNC
//  or DONTWAIT); ZMESH_EAGAIN if the message could not enter the window in
//  time (not sent: retry); ZMESH_ETIMEDOUT if it was sent but its receipt
//  did not come in time (it stays tracked: flush waits for it);
//  ZMESH_EINVAL (not MessagePack) or ZMESH_ETOOBIG (refused by the broker);
//  ZMESH_EDENIED (the broker's rules do not let this key push to the
//  pipeline: the message is dropped, not sent again);
//  ZMESH_EWORKERLOST (PROCESSED: every consumer it was given to was lost);
//  ZMESH_ECLOSED after SIGINT/SIGTERM under CZMQ's signal handling. A signal
//  the application handles itself ends a blocking wait early: EAGAIN before
//  the message entered the window, ETIMEDOUT after (it stays tracked).
int zmesh_producer_send(zmesh_producer_t *self, const void *data, size_t size, int flags);

//  Waits up to timeout_ms (-1 forever) until every message sent has met its
//  mode (queued ones: accepted by the broker). Returns ZMESH_OK, or
//  ZMESH_ETIMEDOUT (also when a signal the application handles ends the
//  wait early), ZMESH_ECLOSED after SIGINT/SIGTERM under CZMQ's signal
//  handling, or the error of a message that failed since the last flush
//  (zmesh_producer_error says which and why).
int zmesh_producer_flush(zmesh_producer_t *self, int timeout_ms);

//  Messages sent whose mode is not met yet.
size_t zmesh_producer_pending(const zmesh_producer_t *self);

//  Text of the last refusal or failure, borrowed; "" if none.
const char *zmesh_producer_error(const zmesh_producer_t *self);

//  ---------------------------------------------------------------------
//  zmesh_consumer: receives the messages of one pipeline. A background
//  thread holds the session (registration, heartbeats, reconnection), so
//  the application may take as long as it needs over a message. The broker
//  gives it at most `credit` messages not yet acknowledged; a message it
//  does not acknowledge is given to another consumer if this one is lost.

typedef struct zmesh_consumer zmesh_consumer_t;

//  What came with a message.
typedef struct {
    uint64_t id;                //  message id: the same on every delivery of it
    uint32_t attempt;           //  1 for the first delivery
    bool redelivered;           //  attempt > 1: it may have been handled before
} zmesh_delivery_t;

//  Creates a consumer of pipeline at the broker at endpoint (a comma-
//  separated list: one broker at a time). Does not connect yet. Returns NULL
//  on a bad argument; *err_p (may be NULL) says why.
zmesh_consumer_t *zmesh_consumer_new(const char *endpoint, const char *pipeline, int *err_p);

//  As zmesh_consumer_new, with every connection a CURVE client of the broker
//  with curve's keys (copied; NULL: plain).
zmesh_consumer_t *zmesh_consumer_new_secure(const char *endpoint, const char *pipeline,
                                            const zmesh_curve_t *curve, int *err_p);

//  Messages held unacknowledged at once (1..1000, default 10). Call before
//  the first zmesh_consumer_recv.
void zmesh_consumer_set_credit(zmesh_consumer_t *self, int credit);

//  Heartbeat interval in ms (100..60000, default 1000) and liveness (2..100,
//  default 3), as for workers. Call before the first zmesh_consumer_recv.
void zmesh_consumer_set_heartbeat(zmesh_consumer_t *self, int interval_ms, int liveness);

//  Waits up to timeout_ms (0 polls, -1 forever) for a message; the first
//  call connects and registers. On ZMESH_OK *msg_p is the message (the
//  caller destroys it) and *delivery (may be NULL) tells its id and attempt.
//  Returns ZMESH_EAGAIN when none came in time, ZMESH_EDENIED if the
//  broker's rules do not let this key consume the pipeline, ZMESH_EPROTO if
//  the broker refused the consumer otherwise (zmesh_consumer_error says why;
//  both are final: every later recv returns the same), ZMESH_ECLOSED
//  after SIGINT/SIGTERM under CZMQ's signal handling (a signal the
//  application handles itself ends the wait early with ZMESH_EAGAIN).
int zmesh_consumer_recv(zmesh_consumer_t *self, int timeout_ms, zmesh_msg_t **msg_p,
                        zmesh_delivery_t *delivery);

//  Acknowledges a message by id once the application is done with it; it
//  frees one credit. Returns ZMESH_OK or ZMESH_EINVAL (id 0).
int zmesh_consumer_ack(zmesh_consumer_t *self, uint64_t id);

//  Tells the broker this consumer takes nothing more (RELEASE): messages it
//  received that the application has not yet had go back to the pipeline as
//  they were, not flagged. Acks still count afterwards. Call it before
//  acknowledging the last messages when the application knows it is done:
//  otherwise those acks free credit for messages that then come back
//  flagged as redelivered when the consumer leaves. recv returns
//  ZMESH_ECLOSED afterwards.
void zmesh_consumer_leave(zmesh_consumer_t *self);

//  Leaves (RELEASE, as zmesh_consumer_leave, then DISCONNECT: messages not
//  acknowledged go to other consumers, flagged as redelivered), frees the
//  consumer and sets *self_p to NULL.
void zmesh_consumer_destroy(zmesh_consumer_t **self_p);

//  Text of the broker's last refusal, borrowed; "" if none.
const char *zmesh_consumer_error(const zmesh_consumer_t *self);

#ifdef __cplusplus
}
#endif

#endif
