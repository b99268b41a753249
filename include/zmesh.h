//  zmesh.h - the C API of zmesh: RPC clients and workers that talk to a
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

//  How many times a call that gets no answer is sent again, with the same
//  request id (default 0). The call's timeout is shared out between the
//  attempts. A broker that still holds the call on the same connection
//  ignores the copy; a copy that reaches another broker, or the same one
//  after a reconnection, runs again. So retry only calls that are safe to
//  run twice (idempotent services).
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
//  worker died holding a call that is not idempotent), ZMESH_EINVAL,
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

//  Waits up to timeout_ms (0 polls, -1 forever) for one call to complete and
//  returns its outcome: *request_id_p is its id, and on ZMESH_OK *reply_p is
//  its reply. A call whose own deadline passed completes with
//  ZMESH_ETIMEDOUT. Returns ZMESH_EAGAIN, with *request_id_p = 0, when no
//  call completed within timeout_ms (or none is in flight).
int zmesh_client_recv(zmesh_client_t *self, int timeout_ms, uint64_t *request_id_p,
                      zmesh_msg_t **reply_p);

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

//  Stops the worker if it runs, frees it and sets *self_p to NULL.
void zmesh_worker_destroy(zmesh_worker_t **self_p);

//  Number of handler threads, and so of requests held at once (1..1024,
//  default 1). Call before zmesh_worker_run.
void zmesh_worker_set_threads(zmesh_worker_t *self, int threads);

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

//  Connects, registers and serves requests until zmesh_worker_stop() or
//  SIGINT/SIGTERM; reconnects and re-registers when the broker goes silent
//  or restarts. endpoint may be a comma-separated list: each reconnection
//  goes to the next broker of the list.
//  Returns ZMESH_OK when stopped, ZMESH_EPROTO if the broker refused it
//  (zmesh_worker_error() tells why), ZMESH_EINVAL if the endpoint is not one
//  libzmq can connect to, ZMESH_ESYS if a socket failed. On a stop it sends
//  DISCONNECT first, so the broker answers calls still running WORKER_LOST at
//  once; it then returns when every running handler has returned.
int zmesh_worker_run(zmesh_worker_t *self, zmesh_handler_fn *handler, void *arg);

//  Asks a running zmesh_worker_run to return. Safe to call from any
//  thread and from a signal handler.
void zmesh_worker_stop(zmesh_worker_t *self);

//  Text of the broker's last refusal, borrowed; "" if none.
const char *zmesh_worker_error(const zmesh_worker_t *self);

#ifdef __cplusplus
}
#endif

#endif
