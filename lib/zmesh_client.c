//  zmesh_client - calls services through a broker over one DEALER socket,
//  connected to one broker or to a list of them (calls go to brokers that
//  are up). Each call gets a request id and a deadline; replies are matched
//  by id, so many calls can be in flight, and a reply that arrives after its
//  call gave up is recognised and discarded. A call may be sent again with
//  the same id when an attempt goes unanswered (Lazy Pirate); PROGRESS from
//  a handler moves its deadline. The client never blocks past a deadline.
#include "zm_alloc.h"
#include "zm_hash.h"
#include "zm_msg.h"
#include "zm_pack.h"
#include "zm_proto.h"

#include <czmq.h>

//  Largest reply the client accepts; the broker enforces its own, smaller limit.
#define S_REPLY_MAX ((size_t) 256 << 20)

//  A call in flight.
typedef struct {
    uint64_t id;
    int64_t deadline;           //  zclock_mono() ms: this attempt's end
    int64_t final;              //  ms: the call's own end (progress moves both)
    void *handle;               //  its place in by_deadline
    int retries_left;           //  attempts still allowed after this one
    int attempt_ms;             //  length of one attempt
    zmsg_t *resend;             //  owned copy of the CALL for a retry; NULL without retries
    bool unsent;                //  the last attempt found no broker to take it
} s_call_t;

//  A completed call not yet returned by zmesh_client_recv.
typedef struct {
    uint64_t id;
    int rc;                     //  ZMESH_OK or the call's error
    zmesh_msg_t *reply;         //  owned; set when rc == ZMESH_OK
    char error[ZM_REASON_MAX + 1];
} s_done_t;

struct zmesh_client {
    zsock_t *sock;              //  owned DEALER to the broker(s)
    uint64_t next_id;           //  last request id used
    int retries;                //  resends of an unanswered call (zmesh_client_set_retries)
    zhashx_t *pending;          //  id -> owned s_call_t
    zlistx_t *by_deadline;      //  borrowed s_call_t, earliest deadline first
    zlistx_t *done;             //  owned s_done_t, oldest first
    char error[ZM_REASON_MAX + 1];
};

static void
s_call_destroy(void **item_p)
{
    s_call_t *call = *item_p;
    if (call)
        zmsg_destroy(&call->resend);
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

//  Sends a CALL, waiting at most wait_ms for a broker to take it. With
//  ZMQ_IMMEDIATE, libzmq keeps a message only for a connected broker, so a
//  send that times out means that no broker is reachable. Takes *msg_p.
static int
s_send_call(zmesh_client_t *self, zmsg_t **msg_p, int wait_ms)
{
    zsock_set_sndtimeo(self->sock, wait_ms);
    int rc = zmsg_send(msg_p, self->sock);
    zmsg_destroy(msg_p);                        //  CZMQ frees it on failure too; be sure
    if (rc == 0)
        return ZMESH_OK;
    return errno == EAGAIN ? ZMESH_EUNREACHABLE : ZMESH_ESYS;
}

zmesh_client_t *
zmesh_client_new(const char *endpoint, int *err_p)
{
    int err = ZMESH_OK;
    zsock_t *sock = NULL;
    if (!endpoint || !*endpoint)
        err = ZMESH_EINVAL;
    else if (!(sock = zsock_new(ZMQ_DEALER)))
        err = ZMESH_ESYS;
    else {
        //  libzmq reconnects with exponential backoff and jitter up to the
        //  cap, resolving host names again on every attempt.
        zsock_set_reconnect_ivl_max(sock, 2000);
        //  Queue calls only on connections that are up, so that a broker that
        //  is down does not swallow them, and "unreachable" can be told apart.
        zsock_set_immediate(sock, 1);
        if (zsock_attach(sock, endpoint, false) != 0) {     //  "ep1,ep2,..."
            zsock_destroy(&sock);
            err = ZMESH_EINVAL;
        }
    }
    if (err_p)
        *err_p = err;
    if (err)
        return NULL;
    zmesh_client_t *self = zm_alloc(sizeof *self);
    self->sock = sock;
    self->pending = zm_hash_new_u64();
    zhashx_set_destructor(self->pending, s_call_destroy);
    self->by_deadline = zlistx_new();
    zlistx_set_comparator(self->by_deadline, s_deadline_compare);
    self->done = zlistx_new();
    zlistx_set_destructor(self->done, s_done_destroy);
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
    free(self);
    *self_p = NULL;
}

int
zmesh_client_send(zmesh_client_t *self, const char *service, const void *request, size_t size,
                  int timeout_ms, uint64_t *request_id_p)
{
    assert(self);
    assert(service);
    assert(request || size == 0);
    assert(timeout_ms > 0);
    if (!zm_proto_valid_name(service, strlen(service)))
        return ZMESH_EINVAL;
    if (size > S_REPLY_MAX)
        return ZMESH_ETOOBIG;
    if (zm_pack_check(request, size, 0) != ZMESH_OK)
        return ZMESH_EINVAL;
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = self->next_id + 1;
    command.timeout_ms = (uint32_t) timeout_ms;
    command.flags = ZM_CALL_PROGRESS;
    strcpy(command.service, service);
    command.body = zframe_new(request, size);
    zmsg_t *msg = zm_proto_encode(&command);
    int64_t now = zclock_mono();
    s_call_t *call = zm_alloc(sizeof *call);
    call->id = command.id;
    call->final = now + timeout_ms;
    call->retries_left = self->retries;
    call->attempt_ms = timeout_ms / (self->retries + 1);
    call->attempt_ms = call->attempt_ms > 0 ? call->attempt_ms : 1;
    call->deadline = now + call->attempt_ms;
    if (self->retries > 0)
        call->resend = zmsg_dup(msg);
    int rc = s_send_call(self, &msg, call->attempt_ms);
    if (rc != ZMESH_OK && call->retries_left == 0) {
        s_call_destroy((void **) &call);
        return rc;                              //  no broker took it, and no retry will
    }
    call->unsent = rc != ZMESH_OK;
    self->next_id++;
    zhashx_insert(self->pending, ZM_HASH_KEY(call->id), call);
    call->handle = zlistx_insert(self->by_deadline, call, false);    //  usually the tail
    if (request_id_p)
        *request_id_p = call->id;
    return ZMESH_OK;
}

//  Ends the call id with rc and, on success, its reply body.
static s_done_t *
s_complete(zmesh_client_t *self, s_call_t *call, int rc, zframe_t **body_p, const char *error)
{
    s_done_t *done = zm_alloc(sizeof *done);
    done->id = call->id;
    done->rc = rc;
    if (rc == ZMESH_OK && body_p && *body_p)
        done->reply = zm_msg_adopt(body_p);
    snprintf(done->error, sizeof done->error, "%s", error ? error : "");
    zlistx_delete(self->by_deadline, call->handle);
    zhashx_delete(self->pending, ZM_HASH_KEY(call->id));     //  frees call
    return done;
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
s_attempt_over(zmesh_client_t *self, s_call_t *call, int64_t now)
{
    if (call->retries_left == 0 || call->final <= now)
        return call->unsent
                   ? s_complete(self, call, ZMESH_EUNREACHABLE, NULL, "no broker was reachable")
                   : s_complete(self, call, ZMESH_ETIMEDOUT, NULL, "no reply before the deadline");
    call->retries_left--;
    int64_t end = now + call->attempt_ms < call->final ? now + call->attempt_ms : call->final;
    zmsg_t *copy = zmsg_dup(call->resend);
    call->unsent = s_send_call(self, &copy, (int) (end - now)) != ZMESH_OK;
    call->deadline = end > zclock_mono() ? end : zclock_mono();
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

//  Waits until `until` (zclock_mono ms) for the next call to complete, by a
//  reply or by its deadline. Returns NULL if none did.
static s_done_t *
s_next_completion(zmesh_client_t *self, int64_t until)
{
    while (true) {
        int64_t now = zclock_mono();
        s_call_t *first = zlistx_first(self->by_deadline);
        if (first && first->deadline <= now) {
            s_done_t *done = s_attempt_over(self, first, now);
            if (done)
                return done;
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
        done = s_next_completion(self, until);
    }
    if (!done)
        return ZMESH_EAGAIN;
    return s_deliver(self, done, request_id_p, reply_p);
}

int
zmesh_client_call(zmesh_client_t *self, const char *service, const void *request, size_t size,
                  int timeout_ms, zmesh_msg_t **reply_p)
{
    assert(self);
    assert(reply_p);
    uint64_t id;
    int rc = zmesh_client_send(self, service, request, size, timeout_ms, &id);
    if (rc != ZMESH_OK)
        return rc;
    //  The call's own deadline ends the wait; other completions are kept.
    while (true) {
        s_done_t *done = s_next_completion(self, INT64_MAX);
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
