//  zmesh_client - calls services through a broker over one DEALER socket.
//  Given a list of brokers it uses one at a time, and moves to the next
//  when the one in use takes no call or leaves an attempt unanswered. Each call gets a request id and a deadline; replies are matched
//  by id, so many calls can be in flight, and a reply that arrives after its
//  call gave up is recognised and discarded. A call may be sent again with
//  the same id when an attempt goes unanswered (Lazy Pirate); PROGRESS from
//  a handler moves its deadline. The client never blocks past a deadline.
//  A streamed call collects its parts in order, at most its window of them:
//  the client grants credit back only as the application takes parts, so a
//  slow reader slows the worker down instead of filling any queue. A write
//  or quorum read of a replicated service is a call with a flag; its request
//  id is the write id the replicas deduplicate by, so ids start at a random
//  63-bit value (two clients do not share ids) and every attempt keeps it.
#include "zm_alloc.h"
#include "zm_endpoints.h"
#include "zm_hash.h"
#include "zm_msg.h"
#include "zm_pack.h"
#include "zm_proto.h"
#include "zm_random.h"
#include "zm_secure.h"

#include <czmq.h>
#include <fcntl.h>
#include <unistd.h>

//  The public flags are the wire's (ZMP.md section 6.2).
_Static_assert(ZMESH_CALL_WRITE == ZM_CALL_WRITE, "write flag");
_Static_assert(ZMESH_CALL_QUORUM == ZM_CALL_QUORUM, "quorum read flag");

//  Largest reply the client accepts; the broker enforces its own, smaller limit.
#define S_REPLY_MAX ((size_t) 256 << 20)

//  A completed call not yet returned by zmesh_client_recv (or, for a
//  stream, by zmesh_client_next).
typedef struct {
    uint64_t id;
    int rc;                     //  ZMESH_OK or the call's error
    zmesh_msg_t *reply;         //  owned; set when rc == ZMESH_OK
    char error[ZM_REASON_MAX + 1];
} s_done_t;

//  A call in flight.
typedef struct {
    uint64_t id;
    int64_t deadline;           //  zclock_mono() ms: this attempt's end
    int64_t final;              //  ms: the call's own end (progress moves both)
    void *handle;               //  its place in by_deadline
    int retries_left;           //  attempts still allowed after this one
    int attempt_ms;             //  length of one attempt
    char *service;              //  owned, for a retry; NULL without retries
    zframe_t *body;             //  owned copy of the request, for a retry
    uint32_t flags;             //  ZMESH_CALL_WRITE or _QUORUM (or 0), sent with every attempt
    bool reached;               //  some attempt was taken by a broker
    uint32_t connection;        //  the connection its last attempt went out on
    bool stream;                //  a streamed call, read with zmesh_client_next
    uint32_t window;            //  stream: parts let in before the application takes them
    uint32_t owed;              //  stream: parts taken and not yet granted back by CREDIT
    uint64_t credit;            //  stream: credit granted minus parts received
    uint32_t timeout_ms;        //  stream: each PART and CREDIT moves its deadline this far
    uint64_t next_seq;          //  stream: the PART seq expected next
    zlistx_t *parts;            //  stream: owned zframe_t received, not yet taken
    s_done_t *end;              //  stream: owned final outcome once known, after the parts
} s_call_t;

struct zmesh_client {
    zsock_t *sock;              //  owned DEALER to the broker in use
    zm_endpoints_t *endpoints;  //  owned: the brokers, in the order to try them
    zmesh_curve_t *curve;       //  owned copy of the CURVE keys; NULL: plain connections
    uint32_t connection;        //  counts the connections opened (failovers)
    uint64_t next_id;           //  last request id used; starts at a random 63-bit value
    int retries;                //  resends of an unanswered call (zmesh_client_set_retries)
    zhashx_t *pending;          //  id -> owned s_call_t
    zlistx_t *by_deadline;      //  borrowed s_call_t, earliest deadline first
    zlistx_t *done;             //  owned s_done_t, oldest first
    size_t max_body;            //  largest request sent (zmesh_client_set_max_body)
    char error[ZM_REASON_MAX + 1];
};

static void s_done_destroy(void **item_p);

static void
s_frame_destroy(void **item_p)
{
    zframe_destroy((zframe_t **) item_p);
}

static void
s_call_destroy(void **item_p)
{
    s_call_t *call = *item_p;
    if (call) {
        zframe_destroy(&call->body);
        free(call->service);
        zlistx_destroy(&call->parts);
        s_done_destroy((void **) &call->end);
    }
    free(call);
    *item_p = NULL;
}

static void
s_done_destroy(void **item_p)
{
    s_done_t *done = *item_p;
    if (done)
        zmesh_msg_destroy(&done->reply);
    free(done);
    *item_p = NULL;
}

static int
s_deadline_compare(const void *a, const void *b)
{
    int64_t x = ((const s_call_t *) a)->deadline, y = ((const s_call_t *) b)->deadline;
    return x < y ? -1 : x > y;
}

static void s_failover(zmesh_client_t *self);

//  Sends one attempt of a call: a CALL of id for service with body (taken),
//  whose timeout is the time left until final. Waits at most wait_ms for a
//  broker to take it: with ZMQ_IMMEDIATE, libzmq keeps a message only for a
//  connected broker, so a send that times out means the broker is out of
//  reach. Given a list, the wait is cut into slices and each slice goes to
//  the next broker, so a dead first broker costs one slice, not the attempt.
static int
s_send_call(zmesh_client_t *self, uint64_t id, const char *service, zframe_t **body_p,
            int64_t final, int wait_ms, uint32_t window, uint32_t flags)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = id;
    int64_t now = zclock_mono();
    command.timeout_ms = final > now ? (uint32_t) (final - now) : 1;
    command.flags = ZM_CALL_PROGRESS | (window ? ZM_CALL_STREAM : 0) | flags;
    command.window = window;
    snprintf(command.service, sizeof command.service, "%s", service);
    command.body = *body_p;
    *body_p = NULL;
    zmsg_t *msg = zm_proto_encode(&command);
    //  A wait at or past its end is a poll: a negative SNDTIMEO would be
    //  refused by libzmq, leaving an older, blocking one in force.
    wait_ms = wait_ms > 0 ? wait_ms : 0;
    size_t brokers = zm_endpoints_size(self->endpoints);
    int slice = brokers > 1 ? wait_ms / (int) (2 * brokers) : wait_ms;
    slice = slice < 100 && brokers > 1 ? 100 : slice;
    int64_t until = now + wait_ms;
    int rc = ZMESH_EUNREACHABLE;
    do {
        int64_t left = until - zclock_mono();
        zsock_set_sndtimeo(self->sock, (int) (left < slice ? (left > 0 ? left : 0) : slice));
        //  The first frame goes with REUSE: if no broker takes it, the
        //  message is still ours for the next broker; once it went, the
        //  rest of the message always follows.
        zframe_t *first = zmsg_first(msg);
        if (zframe_send(&first, self->sock, ZFRAME_REUSE | ZFRAME_MORE) == 0) {
            first = zmsg_pop(msg);
            zframe_destroy(&first);
            rc = zmsg_send(&msg, self->sock) == 0 ? ZMESH_OK : ZMESH_ESYS;
            break;
        }
        if (errno != EAGAIN) {
            rc = ZMESH_ESYS;
            break;
        }
        snprintf(self->error, sizeof self->error, "no broker took the call within %d ms (%s)",
                 wait_ms, zm_endpoints_current(self->endpoints));
        s_failover(self);
    } while (zclock_mono() < until);
    zmsg_destroy(&msg);
    return rc;
}

//  A DEALER to endpoint, a CURVE client with curve (may be NULL), or NULL
//  if libzmq refuses the endpoint.
static zsock_t *
s_open(const char *endpoint, const zmesh_curve_t *curve)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    assert(sock);
    zm_secure_apply(curve, sock);
    //  libzmq reconnects with exponential backoff and jitter up to the cap,
    //  resolving host names again on every attempt (containers move).
    zsock_set_reconnect_ivl_max(sock, 2000);
    //  Queue calls only on a connection that is up, so that a broker that
    //  is down does not swallow them, and "unreachable" can be told apart.
    zsock_set_immediate(sock, 1);
    if (zsock_connect(sock, "%s", endpoint) != 0)
        zsock_destroy(&sock);
    return sock;
}

//  Moves to the next broker of the list. Replies still owed on the old
//  connection are lost with it: their calls time out, or are sent again by
//  their next attempt. With one broker there is nothing to move to.
static void
s_failover(zmesh_client_t *self)
{
    if (zm_endpoints_size(self->endpoints) < 2)
        return;
    zsock_t *sock = s_open(zm_endpoints_next(self->endpoints), self->curve);
    if (sock) {
        zsock_destroy(&self->sock);
        self->sock = sock;
        self->connection++;
    }
}

zmesh_client_t *
zmesh_client_new(const char *endpoint, int *err_p)
{
    return zmesh_client_new_secure(endpoint, NULL, err_p);
}

zmesh_client_t *
zmesh_client_new_secure(const char *endpoint, const zmesh_curve_t *curve, int *err_p)
{
    zm_endpoints_t *endpoints = zm_endpoints_new(endpoint);
    bool valid = endpoints != NULL;
    for (size_t i = 0; valid && i < zm_endpoints_size(endpoints); i++) {
        zsock_t *probe = s_open(zm_endpoints_next(endpoints), curve);    //  check each, once
        valid = probe != NULL;
        zsock_destroy(&probe);
    }
    zsock_t *sock = valid ? s_open(zm_endpoints_current(endpoints), curve) : NULL;
    if (err_p)
        *err_p = sock ? ZMESH_OK : ZMESH_EINVAL;
    if (!sock) {
        zm_endpoints_destroy(&endpoints);
        return NULL;
    }
    zmesh_client_t *self = zm_alloc(sizeof *self);
    self->endpoints = endpoints;
    self->curve = zm_secure_dup(curve);
    self->sock = sock;
    self->pending = zm_hash_new_u64();
    zhashx_set_destructor(self->pending, s_call_destroy);
    self->by_deadline = zlistx_new();
    zlistx_set_comparator(self->by_deadline, s_deadline_compare);
    self->done = zlistx_new();
    zlistx_set_destructor(self->done, s_done_destroy);
    self->max_body = zm_max_body_default();
    self->next_id = zm_random_id(self);
    return self;
}

void
zmesh_client_destroy(zmesh_client_t **self_p)
{
    assert(self_p);
    zmesh_client_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->done);
    zlistx_destroy(&self->by_deadline);
    zhashx_destroy(&self->pending);
    zsock_destroy(&self->sock);
    zm_endpoints_destroy(&self->endpoints);
    zmesh_curve_destroy(&self->curve);
    free(self);
    *self_p = NULL;
}

//  Sends a call, streamed when window > 0 (never retried: its parts cannot
//  be taken back), a write or quorum read as flags say.
static int
s_send(zmesh_client_t *self, const char *service, const void *request, size_t size,
       int timeout_ms, uint32_t window, uint32_t flags, uint64_t *request_id_p)
{
    if (!zm_proto_valid_name(service, strlen(service))) {
        snprintf(self->error, sizeof self->error, "bad service name");
        return ZMESH_EINVAL;
    }
    if (size > self->max_body) {
        //  Checked here: the broker would refuse it (413), or libzmq would drop
        //  the connection (past ZMQ_MAXMSGSIZE) and nothing would answer.
        snprintf(self->error, sizeof self->error,
                 "the request is %zu bytes, over the limit of %zu (ZMESH_MAX_BODY, which must "
                 "match the broker's --max-body)", size, self->max_body);
        return ZMESH_ETOOBIG;
    }
    if (zm_pack_check(request, size, 0) != ZMESH_OK) {
        snprintf(self->error, sizeof self->error, "the request is not one MessagePack object");
        return ZMESH_EINVAL;
    }
    int64_t now = zclock_mono();
    s_call_t *call = zm_alloc(sizeof *call);
    call->id = self->next_id + 1;
    call->final = now + timeout_ms;
    call->flags = flags;
    if (window) {
        call->stream = true;
        call->window = window;
        call->credit = window;
        call->timeout_ms = (uint32_t) timeout_ms;
        call->next_seq = 1;
        call->parts = zlistx_new();
        zlistx_set_destructor(call->parts, s_frame_destroy);
    }
    //  A stream is never resent, so its one attempt is the whole timeout.
    call->retries_left = window ? 0 : self->retries;
    call->attempt_ms = timeout_ms / (call->retries_left + 1);
    call->attempt_ms = call->attempt_ms > 0 ? call->attempt_ms : 1;
    call->deadline = now + call->attempt_ms;
    zframe_t *body = zframe_new(request, size);
    if (call->retries_left > 0) {
        call->service = zm_strdup(service);
        call->body = zframe_dup(body);          //  kept for the next attempts
    }
    int rc = s_send_call(self, call->id, service, &body, call->final, call->attempt_ms,
                         call->window, call->flags);
    if (rc != ZMESH_OK && call->retries_left == 0) {
        s_call_destroy((void **) &call);
        return rc;                              //  no broker took it, and no retry will
    }
    call->reached = rc == ZMESH_OK;
    call->connection = self->connection;
    self->next_id++;
    zhashx_insert(self->pending, ZM_HASH_KEY(call->id), call);
    call->handle = zlistx_insert(self->by_deadline, call, false);    //  usually the tail
    if (request_id_p)
        *request_id_p = call->id;
    return ZMESH_OK;
}

int
zmesh_client_send(zmesh_client_t *self, const char *service, const void *request, size_t size,
                  int timeout_ms, uint64_t *request_id_p)
{
    assert(self);
    assert(service);
    assert(request || size == 0);
    assert(timeout_ms > 0);
    return s_send(self, service, request, size, timeout_ms, 0, 0, request_id_p);
}

int
zmesh_client_send_flags(zmesh_client_t *self, const char *service, const void *request,
                        size_t size, int timeout_ms, int flags, uint64_t *request_id_p)
{
    assert(self);
    assert(service);
    assert(request || size == 0);
    assert(timeout_ms > 0);
    assert(flags == 0 || flags == ZMESH_CALL_WRITE || flags == ZMESH_CALL_QUORUM);
    return s_send(self, service, request, size, timeout_ms, 0, (uint32_t) flags, request_id_p);
}

int
zmesh_client_stream(zmesh_client_t *self, const char *service, const void *request, size_t size,
                    int timeout_ms, int window, uint64_t *request_id_p)
{
    assert(self);
    assert(service);
    assert(request || size == 0);
    assert(timeout_ms > 0);
    assert(window >= 0 && window <= ZM_WINDOW_MAX);
    return s_send(self, service, request, size, timeout_ms,
                  window ? (uint32_t) window : ZM_WINDOW_DEFAULT, 0, request_id_p);
}

//  Ends the call id with rc and, on success, its reply body. A stream keeps
//  its outcome behind its parts, for zmesh_client_next, and returns NULL.
static s_done_t *
s_complete(zmesh_client_t *self, s_call_t *call, int rc, zframe_t **body_p, const char *error)
{
    s_done_t *done = zm_alloc(sizeof *done);
    done->id = call->id;
    done->rc = rc;
    if (rc == ZMESH_OK && body_p && *body_p)
        done->reply = zm_msg_adopt(body_p);
    snprintf(done->error, sizeof done->error, "%s", error ? error : "");
    if (call->handle)
        zlistx_delete(self->by_deadline, call->handle);
    call->handle = NULL;
    if (call->stream) {
        call->end = done;
        return NULL;
    }
    zhashx_delete(self->pending, ZM_HASH_KEY(call->id));     //  frees call
    return done;
}

//  Sends CANCEL (c) or CREDIT (count) for a stream. Never blocks: a lost
//  one stalls the stream until a deadline ends it.
static void
s_send_stream_command(zmesh_client_t *self, zm_cmd_t cmd, uint64_t id, uint32_t count)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    command.id = id;
    command.window = count;
    zmsg_t *msg = zm_proto_encode(&command);
    zsock_set_sndtimeo(self->sock, 0);
    zmsg_send(&msg, self->sock);
    zmsg_destroy(&msg);
}

//  A stream went wrong on our side (a part missing or beyond credit, or its deadline): the
//  worker is told to stop and the stream ends with rc after its parts.
static void
s_stream_fail(zmesh_client_t *self, s_call_t *call, int rc, const char *error)
{
    s_send_stream_command(self, ZM_CMD_CANCEL, call->id, 0);
    s_complete(self, call, rc, NULL, error);
}

//  A PART of a stream: kept in order; one out of order means one was lost
//  on the way, and a stream with a hole must never pass for a whole one.
//  One beyond the credit granted fails the stream: the parts kept stay
//  within the window whatever the other side does.
static void
s_on_part(zmesh_client_t *self, zm_proto_t *part)
{
    s_call_t *call = zm_hash_lookup(self->pending, part->id);
    if (!call || !call->stream || call->end)
        return;                                 //  late: the stream is over
    if (part->seq != call->next_seq) {
        char text[ZM_REASON_MAX + 1];
        snprintf(text, sizeof text, "part %" PRIu64 " of the stream came where %" PRIu64
                 " was due: the stream lost a part", part->seq, call->next_seq);
        s_stream_fail(self, call, ZMESH_EPROTO, text);
        return;
    }
    if (call->credit == 0) {
        //  Past the credit we granted: we would have to buffer without bound.
        char text[ZM_REASON_MAX + 1];
        snprintf(text, sizeof text, "part %" PRIu64 " of the stream came beyond the credit "
                 "granted", part->seq);
        s_stream_fail(self, call, ZMESH_EPROTO, text);
        return;
    }
    call->credit--;
    call->next_seq++;
    zlistx_add_end(call->parts, part->body);
    part->body = NULL;
    call->deadline = call->final = zclock_mono() + call->timeout_ms;
    zlistx_reorder(self->by_deadline, call->handle, false);
}

//  The reason text of an error reply (a msgpack str), or a fallback.
static void
s_reason(zframe_t *body, char *text, size_t text_size)
{
    zm_reader_t reader;
    const char *data;
    size_t size;
    zm_reader_init(&reader, body ? zframe_data(body) : NULL, body ? zframe_size(body) : 0);
    if (body && zm_reader_str(&reader, &data, &size) && zm_reader_done(&reader))
        snprintf(text, text_size, "%.*s", (int) size, data);
    else
        snprintf(text, text_size, "(the reply gave no reason)");
}

//  A handler needs extend_ms more for call id: both its deadlines move out.
static void
s_on_progress(zmesh_client_t *self, uint64_t id, uint32_t extend_ms)
{
    s_call_t *call = zm_hash_lookup(self->pending, id);
    if (!call)
        return;
    int64_t until = zclock_mono() + extend_ms;
    if (call->final < until)
        call->final = until;
    if (call->deadline < until) {
        call->deadline = until;
        zlistx_reorder(self->by_deadline, call->handle, false);
    }
}

//  The attempt of call ended unanswered: sends it again with the same id,
//  or ends it when no retry or time is left. Returns the completion, or NULL
//  if the call goes on.
static s_done_t *
s_attempt_over(zmesh_client_t *self, s_call_t *call, int64_t now, int64_t until)
{
    if (call->stream && call->reached) {
        s_stream_fail(self, call, ZMESH_ETIMEDOUT, "the stream was silent past its timeout");
        return NULL;
    }
    if (call->retries_left == 0 || call->final <= now)
        return call->reached
                   ? s_complete(self, call, ZMESH_ETIMEDOUT, NULL, "no reply before the deadline")
                   : s_complete(self, call, ZMESH_EUNREACHABLE, NULL, "no broker was reachable");
    //  An attempt taken and not answered: that broker may be gone. Only if
    //  the client still uses it: calls of one dead broker all time out
    //  together, and the first of them already moved on.
    if (call->reached && call->connection == self->connection)
        s_failover(self);
    call->retries_left--;
    int64_t end = now + call->attempt_ms < call->final ? now + call->attempt_ms : call->final;
    int64_t wait_until = end < until ? end : until;     //  never block past the caller's wait
    zframe_t *copy = zframe_dup(call->body);
    if (s_send_call(self, call->id, call->service, &copy, call->final,
                    (int) (wait_until - now), 0, call->flags) == ZMESH_OK)
        call->reached = true;
    call->connection = self->connection;
    call->deadline = end;
    zlistx_reorder(self->by_deadline, call->handle, false);
    return NULL;
}

//  Reads one message from the broker; returns the call it completes, or
//  NULL for a late, unknown or malformed reply (discarded).
static s_done_t *
s_read_reply(zmesh_client_t *self)
{
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg)
        return NULL;
    zm_proto_t reply;
    zm_proto_init(&reply);
    zm_proto_error_t error;
    zm_proto_limits_t limits = {.max_body = S_REPLY_MAX, .check_body = false};
    s_done_t *done = NULL;
    bool decoded = zm_proto_decode(&reply, msg, &limits, &error);
    if (decoded && reply.cmd == ZM_CMD_PROGRESS)
        s_on_progress(self, reply.id, reply.extend_ms);
    else if (decoded && reply.cmd == ZM_CMD_PART)
        s_on_part(self, &reply);
    else if (decoded && reply.cmd == ZM_CMD_REPLY) {
        s_call_t *call = zm_hash_lookup(self->pending, reply.id);
        if (call) {
            char text[ZM_REASON_MAX + 1] = "";
            int rc = zm_proto_status_error(reply.status);
            if (rc != ZMESH_OK)
                s_reason(reply.body, text, sizeof text);
            done = s_complete(self, call, rc, &reply.body, text);
        }
    }
    zm_proto_reset(&reply);
    zmsg_destroy(&msg);
    return done;
}

//  True when the stream has something for zmesh_client_next.
static bool
s_stream_ready(const s_call_t *call)
{
    return call && (zlistx_size(call->parts) > 0 || call->end);
}

//  Waits until `until` (zclock_mono ms) for the next call to complete, by a
//  reply or by its deadline, or for the stream watch (may be NULL) to have
//  something. Returns NULL if no call completed.
static s_done_t *
s_next_completion(zmesh_client_t *self, int64_t until, const s_call_t *watch)
{
    while (true) {
        //  What already arrived counts first: a REPLY or a PROGRESS waiting in
        //  the socket must not lose to a deadline just because the caller
        //  came late to read it.
        while (zsock_events(self->sock) & ZMQ_POLLIN) {
            s_done_t *done = s_read_reply(self);
            if (done)
                return done;
            if (s_stream_ready(watch))
                return NULL;
        }
        int64_t now = zclock_mono();
        s_call_t *first = zlistx_first(self->by_deadline);
        if (first && first->deadline <= now) {
            s_done_t *done = s_attempt_over(self, first, now, until);
            if (done)
                return done;
            if (s_stream_ready(watch))
                return NULL;
            continue;
        }
        if (!first || now >= until) {
            if (!(zsock_events(self->sock) & ZMQ_POLLIN))
                return NULL;
        }
        int64_t wake = first && first->deadline < until ? first->deadline : until;
        zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
        long wait = wake > now ? (long) (wake - now) : 0;
        if (zmq_poll(&item, 1, wait) < 0 && errno != EINTR)
            return NULL;
        if (item.revents & ZMQ_POLLIN) {
            s_done_t *done = s_read_reply(self);
            if (done)
                return done;
            if (s_stream_ready(watch))
                return NULL;
        }
        else if (zsys_interrupted || now >= until)
            return NULL;
    }
}

//  Hands a completion to the caller and keeps its error text.
static int
s_deliver(zmesh_client_t *self, s_done_t *done, uint64_t *request_id_p, zmesh_msg_t **reply_p)
{
    int rc = done->rc;
    if (request_id_p)
        *request_id_p = done->id;
    if (rc == ZMESH_OK && reply_p) {
        *reply_p = done->reply;
        done->reply = NULL;
    }
    snprintf(self->error, sizeof self->error, "%s", done->error);
    s_done_destroy((void **) &done);
    return rc;
}

int
zmesh_client_recv(zmesh_client_t *self, int timeout_ms, uint64_t *request_id_p,
                  zmesh_msg_t **reply_p)
{
    assert(self);
    if (request_id_p)
        *request_id_p = 0;
    s_done_t *done = zlistx_detach(self->done, NULL);
    if (!done && zhashx_size(self->pending) > 0) {
        int64_t until = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
        done = s_next_completion(self, until, NULL);
    }
    if (!done)
        return ZMESH_EAGAIN;
    return s_deliver(self, done, request_id_p, reply_p);
}

//  Sends a call with flags and waits for its outcome.
static int
s_call(zmesh_client_t *self, const char *service, const void *request, size_t size,
       int timeout_ms, int flags, zmesh_msg_t **reply_p)
{
    assert(reply_p);
    uint64_t id;
    int rc = zmesh_client_send_flags(self, service, request, size, timeout_ms, flags, &id);
    if (rc != ZMESH_OK)
        return rc;
    //  The call's own deadline ends the wait; other completions are kept.
    while (true) {
        s_done_t *done = s_next_completion(self, INT64_MAX, NULL);
        if (!done) {
            //  Interrupted (SIGINT): give the call up rather than hang.
            s_call_t *call = zm_hash_lookup(self->pending, id);
            if (call) {
                s_done_t *given_up = s_complete(self, call, ZMESH_ECLOSED, NULL, NULL);
                s_done_destroy((void **) &given_up);
            }
            return ZMESH_ECLOSED;
        }
        if (done->id == id)
            return s_deliver(self, done, NULL, reply_p);
        zlistx_add_end(self->done, done);
    }
}

int
zmesh_client_call(zmesh_client_t *self, const char *service, const void *request, size_t size,
                  int timeout_ms, zmesh_msg_t **reply_p)
{
    return s_call(self, service, request, size, timeout_ms, 0, reply_p);
}

int
zmesh_client_write(zmesh_client_t *self, const char *service, const void *request, size_t size,
                   int timeout_ms, zmesh_msg_t **reply_p)
{
    return s_call(self, service, request, size, timeout_ms, ZMESH_CALL_WRITE, reply_p);
}

int
zmesh_client_read_quorum(zmesh_client_t *self, const char *service, const void *request,
                         size_t size, int timeout_ms, zmesh_msg_t **reply_p)
{
    return s_call(self, service, request, size, timeout_ms, ZMESH_CALL_QUORUM, reply_p);
}

void
zmesh_client_set_retries(zmesh_client_t *self, int retries)
{
    assert(self);
    assert(retries >= 0 && retries <= 100);
    self->retries = retries;
}

size_t
zmesh_client_pending(const zmesh_client_t *self)
{
    assert(self);
    return zhashx_size(self->pending) + zlistx_size(self->done);
}

const char *
zmesh_client_error(const zmesh_client_t *self)
{
    assert(self);
    return self->error;
}

void
zmesh_client_set_max_body(zmesh_client_t *self, size_t max_body)
{
    assert(self);
    assert(max_body >= 16 && max_body <= S_REPLY_MAX);
    self->max_body = max_body;
}

//  Takes the next part of a stream and grants credit back in batches of a
//  quarter of the window, so CREDIT costs one message per few parts.
static zmesh_msg_t *
s_take_part(zmesh_client_t *self, s_call_t *call)
{
    zframe_t *frame = zlistx_detach(call->parts, NULL);
    zmesh_msg_t *part = zm_msg_adopt(&frame);
    call->owed++;
    uint32_t batch = call->window / 4 ? call->window / 4 : 1;
    if (!call->end && call->owed >= batch) {
        s_send_stream_command(self, ZM_CMD_CREDIT, call->id, call->owed);
        call->credit += call->owed;
        call->owed = 0;
        if (call->handle) {
            call->deadline = call->final = zclock_mono() + call->timeout_ms;
            zlistx_reorder(self->by_deadline, call->handle, false);
        }
    }
    return part;
}

int
zmesh_client_next(zmesh_client_t *self, uint64_t request_id, int timeout_ms, zmesh_msg_t **msg_p,
                  bool *last_p)
{
    assert(self);
    assert(msg_p);
    assert(last_p);
    *msg_p = NULL;
    *last_p = true;
    s_call_t *call = zm_hash_lookup(self->pending, request_id);
    if (!call || !call->stream)
        return ZMESH_EINVAL;
    *last_p = false;
    int64_t until = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    while (!s_stream_ready(call)) {
        s_done_t *done = s_next_completion(self, until, call);
        if (done)
            zlistx_add_end(self->done, done);   //  another call's: kept for recv
        else if (!s_stream_ready(call)) {
            if (zsys_interrupted) {
                zmesh_client_cancel(self, request_id);
                *last_p = true;
                return ZMESH_ECLOSED;
            }
            if (zclock_mono() >= until)
                return ZMESH_EAGAIN;
        }
    }
    if (zlistx_size(call->parts) > 0) {
        *msg_p = s_take_part(self, call);
        return ZMESH_OK;
    }
    *last_p = true;
    s_done_t *done = call->end;
    call->end = NULL;
    zhashx_delete(self->pending, ZM_HASH_KEY(request_id));      //  frees call
    return s_deliver(self, done, NULL, msg_p);
}

int
zmesh_client_cancel(zmesh_client_t *self, uint64_t request_id)
{
    assert(self);
    s_call_t *call = zm_hash_lookup(self->pending, request_id);
    if (!call)
        return ZMESH_EINVAL;
    if (!call->end)
        s_send_stream_command(self, ZM_CMD_CANCEL, request_id, 0);
    if (call->handle)
        zlistx_delete(self->by_deadline, call->handle);
    zhashx_delete(self->pending, ZM_HASH_KEY(request_id));      //  frees call
    return ZMESH_OK;
}
