//  zmesh_worker - serves one service for a broker. The thread that calls
//  zmesh_worker_run owns the broker socket: it registers, heartbeats,
//  reconnects, and hands each REQUEST to an idle handler thread over an
//  inproc ROUTER. Handlers may block for as long as they like; heartbeats go
//  on. The worker offers the broker one slot per handler thread, so the
//  broker never sends more requests than there are idle threads. Inline
//  (zmesh_worker_set_inline), the engine thread runs the handler itself and
//  offers as many slots as asked: no hand-off, for quick handlers.
//  A streamed request's handler sends parts (zmesh_worker_send_part) through
//  the engine thread; it may send only while it has credit, which the engine
//  passes on from the broker's CREDIT, and learns of a CANCEL the same way.
#include "zm_alloc.h"
#include "zm_beat.h"
#include "zm_endpoints.h"
#include "zm_hash.h"
#include "zm_log.h"
#include "zm_msg.h"
#include "zm_pack.h"
#include "zm_proto.h"
#include "zm_secure.h"

#include <czmq.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#define S_RECONNECT_MIN 100     //  ms, first wait after the broker refused us
#define S_RECONNECT_MAX 5000    //  ms, cap of the exponential backoff

struct zmesh_worker {
    char *endpoint;             //  owned: one endpoint, or a comma-separated list
    zm_endpoints_t *endpoints;  //  owned: the list, tried in turn on reconnects
    char *service;              //  owned
    zmesh_curve_t *curve;       //  owned copy of the CURVE keys; NULL: plain connections
    bool idempotent;            //  READY says so
    int threads;                //  handler threads = slots offered
    int inline_slots;           //  > 0: handlers run in the engine thread; slots offered
    int heartbeat_ms;
    int liveness;
    int wake[2];                //  self-pipe: zmesh_worker_stop writes a byte
    volatile sig_atomic_t stop_requested;
    char error[ZM_REASON_MAX + 1];
};

//  On the way back, tag.status 0 marks a progress report and S_PART a part
//  of a streamed reply; a final reply has 200 or 500.
#define S_PART 1

//  What travels with a request to a handler thread and back.
typedef struct {
    uint64_t ticket;            //  the broker's id of this dispatch
    uint64_t seq;               //  a part's seq, from 1
    uint32_t session;           //  connection it came on: stale replies are dropped
    uint32_t status;            //  on the way back: 200 or 500, or 0 or S_PART
    uint32_t window;            //  a streamed request's first credit; 0: not streamed
} s_tag_t;

//  From the engine to a handler thread streaming a reply: more credit, or
//  (credit 0) stop, the call is cancelled.
typedef struct {
    uint64_t ticket;
    uint32_t session;
    uint32_t credit;
} s_control_t;

//  One handler thread.
typedef struct {
    pthread_t thread;
    char backend[64];           //  inproc endpoint to connect to
    zmesh_handler_fn *handler;
    void *arg;
    zsock_t *sock;              //  owned by the thread: its DEALER to the engine
    s_tag_t tag;                //  the request it is handling
    uint64_t credit;            //  streamed: parts it may still send
    bool cancelled;             //  streamed: the broker cancelled the call, or we stop
    bool stopping;              //  the stop message came while a handler waited
} s_handler_t;

//  The handler context of the calling thread, for zmesh_worker_progress.
static __thread s_handler_t *s_current;

//  State of one zmesh_worker_run.
typedef struct {
    zmesh_worker_t *worker;     //  borrowed
    zsock_t *sock;              //  owned DEALER to the broker, NULL between connections
    zsock_t *backend;           //  owned ROUTER to the handler threads
    zlistx_t *idle;             //  owned zframe_t: routing ids of idle threads
    zlistx_t *all;              //  owned zframe_t: routing ids of every thread
    uint32_t session;           //  counts connections
    int64_t last_heard;         //  ms: anything from the broker
    int64_t last_sent;          //  ms: anything to the broker
    int64_t reconnect_at;       //  ms: when sock is NULL, when to connect again
    int backoff;                //  ms: next wait after a refusal
    int rc;                     //  what run returns
    zhashx_t *streams;          //  ticket -> owned zframe_t: the thread streaming its reply
    zmesh_handler_fn *handler;  //  the application's, run inline (inline_slots)
    void *arg;
} s_engine_t;

zmesh_worker_t *
zmesh_worker_new(const char *endpoint, const char *service, int *err_p)
{
    return zmesh_worker_new_secure(endpoint, service, NULL, err_p);
}

zmesh_worker_t *
zmesh_worker_new_secure(const char *endpoint, const char *service, const zmesh_curve_t *curve,
                        int *err_p)
{
    int err = ZMESH_OK;
    zm_endpoints_t *endpoints = zm_endpoints_new(endpoint);
    if (!endpoints || !service || !zm_proto_valid_name(service, strlen(service))
        || strncmp(service, "zmesh.", 6) == 0)
        err = ZMESH_EINVAL;
    for (size_t i = 0; !err && i < zm_endpoints_size(endpoints); i++) {
        zsock_t *probe = zsock_new(ZMQ_DEALER);     //  libzmq judges each endpoint once
        assert(probe);
        zm_secure_apply(curve, probe);              //  as the real connections will be
        if (zsock_connect(probe, "%s", zm_endpoints_next(endpoints)) != 0)
            err = ZMESH_EINVAL;
        zsock_destroy(&probe);
    }
    int wake[2] = {-1, -1};
    if (!err && pipe(wake) != 0)
        err = ZMESH_ESYS;
    if (err_p)
        *err_p = err;
    if (err) {
        zm_endpoints_destroy(&endpoints);
        return NULL;
    }
    for (int i = 0; i < 2; i++)
        fcntl(wake[i], F_SETFL, fcntl(wake[i], F_GETFL) | O_NONBLOCK);
    zmesh_worker_t *self = zm_alloc(sizeof *self);
    self->endpoint = zm_strdup(endpoint);
    self->endpoints = endpoints;
    self->service = zm_strdup(service);
    self->curve = zm_secure_dup(curve);
    self->threads = 1;
    self->heartbeat_ms = 1000;
    self->liveness = 3;
    self->wake[0] = wake[0];
    self->wake[1] = wake[1];
    return self;
}

void
zmesh_worker_destroy(zmesh_worker_t **self_p)
{
    assert(self_p);
    zmesh_worker_t *self = *self_p;
    if (!self)
        return;
    close(self->wake[0]);
    close(self->wake[1]);
    zm_endpoints_destroy(&self->endpoints);
    zmesh_curve_destroy(&self->curve);
    free(self->service);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

void
zmesh_worker_set_threads(zmesh_worker_t *self, int threads)
{
    assert(self);
    assert(threads >= 1 && threads <= ZM_SLOTS_MAX);
    self->threads = threads;
}

void
zmesh_worker_set_inline(zmesh_worker_t *self, int slots)
{
    assert(self);
    assert(slots >= 0 && slots <= ZM_SLOTS_MAX);
    self->inline_slots = slots;
}

void
zmesh_worker_set_heartbeat(zmesh_worker_t *self, int interval_ms, int liveness)
{
    assert(self);
    assert(interval_ms >= ZM_HEARTBEAT_MIN && interval_ms <= ZM_HEARTBEAT_MAX);
    assert(liveness >= ZM_LIVENESS_MIN && liveness <= ZM_LIVENESS_MAX);
    self->heartbeat_ms = interval_ms;
    self->liveness = liveness;
}

void
zmesh_worker_set_idempotent(zmesh_worker_t *self, bool idempotent)
{
    assert(self);
    self->idempotent = idempotent;
}

int
zmesh_worker_progress(int extend_ms)
{
    s_handler_t *self = s_current;
    if (!self || extend_ms < 0)
        return ZMESH_EINVAL;
    //  Status 0 marks progress, not a reply: the engine forwards it as PROGRESS.
    s_tag_t tag = self->tag;
    tag.status = 0;
    uint32_t extend = (uint32_t) extend_ms;
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, &tag, sizeof tag);
    zmsg_addmem(msg, &extend, sizeof extend);
    zmsg_send(&msg, self->sock);
    return ZMESH_OK;
}

//  Reads what the engine sent this thread, waiting up to wait_ms for the
//  first: credit or a cancel for its stream; a stop message.
static void
s_read_control(s_handler_t *self, long wait_ms)
{
    zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return;
    while (zsock_events(self->sock) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(self->sock);
        zframe_t *frame = msg && zmsg_size(msg) == 1 ? zmsg_first(msg) : NULL;
        if (frame && zframe_size(frame) == sizeof(s_control_t)) {
            s_control_t control;
            memcpy(&control, zframe_data(frame), sizeof control);
            if (control.ticket == self->tag.ticket && control.session == self->tag.session) {
                if (control.credit == 0)
                    self->cancelled = true;
                self->credit += control.credit;
            }
        }
        else if (frame) {
            self->stopping = true;              //  the engine stops: no more credit
            self->cancelled = true;
        }
        zmsg_destroy(&msg);
    }
}

bool
zmesh_worker_streaming(void)
{
    return s_current && s_current->tag.window > 0;
}

bool
zmesh_worker_cancelled(void)
{
    s_handler_t *self = s_current;
    if (!self)
        return false;
    s_read_control(self, 0);
    return self->cancelled;
}

int
zmesh_worker_send_part(const void *data, size_t size, int timeout_ms)
{
    s_handler_t *self = s_current;
    if (!self || self->tag.window == 0 || (!data && size > 0))
        return ZMESH_EINVAL;
    if (zm_pack_check(data, size, 0) != ZMESH_OK)
        return ZMESH_EINVAL;                    //  the broker would end our session
    if (size > zm_max_body_default())
        return ZMESH_ETOOBIG;
    int64_t until = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    s_read_control(self, 0);
    while (!self->cancelled && self->credit == 0) {
        int64_t now = zclock_mono();
        if (now >= until)
            return timeout_ms == 0 ? ZMESH_EAGAIN : ZMESH_ETIMEDOUT;
        s_read_control(self, until == INT64_MAX ? 1000 : (long) (until - now));
    }
    if (self->cancelled)
        return ZMESH_ECLOSED;
    self->credit--;
    s_tag_t tag = self->tag;
    tag.status = S_PART;
    tag.seq = ++self->tag.seq;
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, &tag, sizeof tag);
    zmsg_addmem(msg, data, size);
    zmsg_send(&msg, self->sock);
    return ZMESH_OK;
}

void
zmesh_worker_stop(zmesh_worker_t *self)
{
    //  Async-signal-safe: a flag and a write(2), nothing else.
    self->stop_requested = 1;
    ssize_t rc = write(self->wake[1], "x", 1);
    (void) rc;                  //  a full pipe already wakes the loop
}

const char *
zmesh_worker_error(const zmesh_worker_t *self)
{
    assert(self);
    return self->error;
}

//  Body of a handler thread: announce itself, then answer requests until an
//  empty message says stop.
static void *
s_handler_main(void *args)
{
    s_handler_t *self = args;
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    assert(sock);
    int rc = zsock_connect(sock, "%s", self->backend);
    assert(rc == 0);
    self->sock = sock;
    s_current = self;
    zstr_send(sock, "HELLO");
    while (!self->stopping) {
        zmsg_t *msg = zmsg_recv(sock);
        if (msg && zmsg_size(msg) == 1 && zframe_size(zmsg_first(msg)) == sizeof(s_control_t)) {
            zmsg_destroy(&msg);             //  credit or a cancel for a stream that ended
            continue;
        }
        if (!msg || zmsg_size(msg) != 2) {
            zmsg_destroy(&msg);             //  the stop message, or interrupted
            break;
        }
        zframe_t *tag_frame = zmsg_pop(msg);
        zframe_t *body = zmsg_pop(msg);
        zmsg_destroy(&msg);
        s_tag_t tag;
        memcpy(&tag, zframe_data(tag_frame), sizeof tag);
        self->tag = tag;
        self->credit = tag.window;
        self->cancelled = false;
        zmesh_msg_t *request = zm_msg_adopt(&body);
        zmesh_msg_t *reply = NULL;
        int result = self->handler(request, &reply, self->arg);
        zmesh_msg_destroy(&request);
        tag.status = result == ZMESH_OK ? ZM_STATUS_OK : ZM_STATUS_HANDLER_ERROR;
        zframe_t *reply_body = reply ? zm_msg_release(&reply) : NULL;
        if (tag.status != ZM_STATUS_OK && !reply_body)
            reply_body = zm_proto_reason_frame("the handler failed without a reason");
        if (!reply_body)
            reply_body = zframe_new("\xc0", 1);    //  nil
        if (zframe_size(reply_body) > zm_max_body_default()) {
            //  The broker would end our session for it: fail this call alone.
            zframe_destroy(&reply_body);
            reply_body = zm_proto_reason_frame("the reply is over the size limit (ZMESH_MAX_BODY)");
            tag.status = ZM_STATUS_HANDLER_ERROR;
        }
        tag.window = 0;
        zframe_reset(tag_frame, &tag, sizeof tag);
        msg = zmsg_new();
        zmsg_append(msg, &tag_frame);
        zmsg_append(msg, &reply_body);
        zmsg_send(&msg, sock);
    }
    s_current = NULL;
    self->sock = NULL;
    zsock_destroy(&sock);
    return NULL;
}

static void
s_send(s_engine_t *self, zm_proto_t *command)
{
    zmsg_t *msg = zm_proto_encode(command);
    //  SNDTIMEO is 0: if libzmq's queue to a dead broker is full the message
    //  is dropped here, and the silence check reconnects us.
    if (zmsg_send(&msg, self->sock) != 0)
        zm_log_debug("worker: send failed cmd=%s", zm_proto_cmd_name(command->cmd));
    zmsg_destroy(&msg);
    self->last_sent = zclock_mono();
}

static void
s_send_simple(s_engine_t *self, zm_cmd_t cmd, uint32_t status, const char *reason)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    command.status = status;
    snprintf(command.reason, sizeof command.reason, "%s", reason ? reason : "");
    s_send(self, &command);
}

//  Tells the thread streaming ticket's reply about credit (count > 0) or,
//  with count 0, that the call is cancelled.
static void
s_control(s_engine_t *self, uint64_t ticket, uint32_t count)
{
    zframe_t *thread = zm_hash_lookup(self->streams, ticket);
    if (!thread)
        return;                                 //  its reply already went
    s_control_t control = {.ticket = ticket, .session = self->session, .credit = count};
    zmsg_t *msg = zmsg_new();
    zframe_t *copy = zframe_dup(thread);
    zmsg_append(msg, &copy);
    zmsg_addmem(msg, &control, sizeof control);
    zmsg_send(&msg, self->backend);
}

//  Cancels every stream in progress: their session is over.
static void
s_cancel_streams(s_engine_t *self)
{
    for (zframe_t *thread = zhashx_first(self->streams); thread;
         thread = zhashx_next(self->streams)) {
        s_control_t control = {.ticket = (uint64_t) (uintptr_t) zhashx_cursor(self->streams),
                               .session = self->session};
        zmsg_t *msg = zmsg_new();
        zframe_t *copy = zframe_dup(thread);
        zmsg_append(msg, &copy);
        zmsg_addmem(msg, &control, sizeof control);
        zmsg_send(&msg, self->backend);
    }
    zhashx_purge(self->streams);
}

//  Opens a new connection and registers. Replies of handlers still busy
//  with requests of the old connection will carry an old session and be
//  dropped: the broker has already failed those calls.
static void
s_connect(s_engine_t *self)
{
    zmesh_worker_t *worker = self->worker;
    //  An abandoned connection must not deliver its queued READY or replies
    //  later (after a partition heals) and register a ghost: drop them.
    if (self->sock)
        zsock_set_linger(self->sock, 0);
    zsock_destroy(&self->sock);
    self->sock = zsock_new(ZMQ_DEALER);
    assert(self->sock);
    zsock_set_sndtimeo(self->sock, 0);
    zsock_set_linger(self->sock, 500);          //  let DISCONNECT out on close
    zsock_set_reconnect_ivl_max(self->sock, S_RECONNECT_MAX);
    zm_secure_apply(worker->curve, self->sock);
    s_cancel_streams(self);     //  the broker answered their calls when it lost us
    //  Each new connection goes to the next broker of the list (a new
    //  socket also resolves the host name again: containers move).
    const char *endpoint = self->session == 0 ? zm_endpoints_current(worker->endpoints)
                                              : zm_endpoints_next(worker->endpoints);
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        snprintf(worker->error, sizeof worker->error, "cannot connect to %s", endpoint);
        self->rc = ZMESH_EINVAL;
        return;
    }
    self->session++;
    zm_proto_t ready;
    zm_proto_init(&ready);
    ready.cmd = ZM_CMD_READY;
    snprintf(ready.service, sizeof ready.service, "%s", worker->service);
    ready.slots = (uint32_t) (worker->inline_slots ? worker->inline_slots : worker->threads);
    ready.heartbeat_ms = (uint32_t) worker->heartbeat_ms;
    ready.liveness = (uint32_t) worker->liveness;
    ready.flags = worker->idempotent ? ZM_READY_IDEMPOTENT : 0;
    if (!worker->inline_slots)
        ready.flags |= ZM_READY_STREAMS;        //  handler threads can send parts
    s_send(self, &ready);
    self->last_heard = zclock_mono();
    zm_log_debug("worker: READY service=%s slots=%d session=%u broker=%s", worker->service,
                 (int) ready.slots, self->session, endpoint);
}

//  Runs the handler on a REQUEST in this thread and sends its REPLY.
static void
s_run_inline(s_engine_t *self, zm_proto_t *request)
{
    zmesh_msg_t *message = zm_msg_adopt(&request->body);
    zmesh_msg_t *answer = NULL;
    int result = self->handler(message, &answer, self->arg);
    zmesh_msg_destroy(&message);
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = request->id;
    reply.status = result == ZMESH_OK ? ZM_STATUS_OK : ZM_STATUS_HANDLER_ERROR;
    reply.body = answer ? zm_msg_release(&answer) : NULL;
    if (reply.status != ZM_STATUS_OK && !reply.body)
        reply.body = zm_proto_reason_frame("the handler failed without a reason");
    if (!reply.body)
        reply.body = zframe_new("\xc0", 1);    //  nil
    s_send(self, &reply);
}

//  Hands a REQUEST to an idle handler thread, or runs it inline.
static void
s_dispatch(s_engine_t *self, zm_proto_t *request)
{
    if (self->worker->inline_slots) {
        s_run_inline(self, request);
        return;
    }
    zframe_t *thread = zlistx_detach(self->idle, NULL);
    if (!thread) {
        //  The broker sent more than our slots: a broker bug; answer, don't hang.
        zm_proto_t reply;
        zm_proto_init(&reply);
        reply.cmd = ZM_CMD_REPLY;
        reply.id = request->id;
        reply.status = ZM_STATUS_HANDLER_ERROR;
        reply.body = zm_proto_reason_frame("worker has no free handler");
        s_send(self, &reply);
        return;
    }
    s_tag_t tag = {.ticket = request->id, .session = self->session, .status = 0,
                   .window = request->window};
    if (request->window && request->id)
        zhashx_update(self->streams, ZM_HASH_KEY(request->id), zframe_dup(thread));
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &thread);
    zframe_t *frame = zframe_new(&tag, sizeof tag);
    zmsg_append(msg, &frame);
    zmsg_append(msg, &request->body);
    zmsg_send(&msg, self->backend);
}

//  Reacts to one message from the broker.
static void
s_on_broker(s_engine_t *self, zmsg_t *msg)
{
    zm_proto_t command;
    zm_proto_init(&command);
    zm_proto_error_t error;
    zm_proto_limits_t limits = {.max_body = (size_t) 256 << 20, .check_body = false};
    self->last_heard = zclock_mono();
    if (!zm_proto_decode(&command, msg, &limits, &error))
        zm_log_warning("worker: bad message from broker reason=\"%s\"", error.reason);
    else if (command.cmd == ZM_CMD_REQUEST) {
        self->backoff = S_RECONNECT_MIN;        //  we are registered
        s_dispatch(self, &command);
    }
    else if (command.cmd == ZM_CMD_CREDIT)
        s_control(self, command.id, command.window);
    else if (command.cmd == ZM_CMD_CANCEL)
        s_control(self, command.id, 0);
    else if (command.cmd == ZM_CMD_DISCONNECT) {
        zmesh_worker_t *worker = self->worker;
        snprintf(worker->error, sizeof worker->error, "%s", command.reason);
        zsock_set_linger(self->sock, 0);        //  what it still holds is for a dead session
        zsock_destroy(&self->sock);
        bool final = command.status == ZM_STATUS_DENIED || command.status == ZM_STATUS_TOO_BIG
                     || command.status == ZM_STATUS_BAD_VERSION;
        if (!final) {
            //  Usually "not registered" after a broker restart: register again,
            //  backing off so a refused READY is not repeated in a tight loop.
            zm_log_notice("worker: broker disconnected us reason=\"%s\" retry_ms=%d",
                          command.reason, self->backoff);
            self->reconnect_at = zclock_mono() + self->backoff + (int) (random() % 100);
            self->backoff = self->backoff * 2 > S_RECONNECT_MAX ? S_RECONNECT_MAX
                                                                : self->backoff * 2;
        }
        else {
            zm_log_error("worker: broker refused us status=%u reason=\"%s\"", command.status,
                         command.reason);
            self->rc = command.status == ZM_STATUS_DENIED ? ZMESH_EDENIED : ZMESH_EPROTO;
        }
    }
    zm_proto_reset(&command);
}

//  Reacts to one message from a handler thread: a greeting or a reply.
static void
s_on_backend(s_engine_t *self, zmsg_t *msg)
{
    zframe_t *thread = zmsg_pop(msg);
    zframe_t *tag_frame = zmsg_pop(msg);
    if (zmsg_size(msg) == 0) {                  //  HELLO
        zlistx_add_end(self->all, zframe_dup(thread));
        zlistx_add_end(self->idle, thread);
        zframe_destroy(&tag_frame);
        return;
    }
    s_tag_t tag;
    memcpy(&tag, zframe_data(tag_frame), sizeof tag);
    zframe_destroy(&tag_frame);
    bool progress = tag.status == 0;
    bool part = tag.status == S_PART;
    if (progress || part)
        zframe_destroy(&thread);                //  still busy with its request
    else {
        zlistx_add_end(self->idle, thread);
        //  Only this session's: tickets start again with a new broker, and a late reply
        //  of an old session must not take the place of a stream of this one.
        if (tag.ticket && tag.session == self->session)
            zhashx_delete(self->streams, ZM_HASH_KEY(tag.ticket));
    }
    if (tag.session != self->session || !self->sock) {
        //  The broker already answered that call (502, or another worker ran it).
        zm_log_notice("worker: dropped a reply of an old connection ticket=%" PRIu64, tag.ticket);
        return;
    }
    if (part) {
        zm_proto_t command;
        zm_proto_init(&command);
        command.cmd = ZM_CMD_PART;
        command.id = tag.ticket;
        command.seq = tag.seq;
        command.body = zmsg_pop(msg);
        s_send(self, &command);
        return;
    }
    if (progress) {
        zframe_t *extend = zmsg_pop(msg);
        zm_proto_t report;
        zm_proto_init(&report);
        report.cmd = ZM_CMD_PROGRESS;
        report.id = tag.ticket;
        memcpy(&report.extend_ms, zframe_data(extend), sizeof report.extend_ms);
        zframe_destroy(&extend);
        s_send(self, &report);
        return;
    }
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = tag.ticket;
    reply.status = tag.status;
    reply.body = zmsg_pop(msg);
    s_send(self, &reply);
}

//  Sends heartbeats, notices a silent broker, reconnects when it is time.
static void
s_on_clock(s_engine_t *self, int64_t now)
{
    zmesh_worker_t *worker = self->worker;
    if (self->rc != ZMESH_OK)
        return;                     //  refused for good (DISCONNECT 403, 413, 505): no new READY
    if (!self->sock) {
        if (now >= self->reconnect_at)
            s_connect(self);
        return;
    }
    if (now - self->last_heard >= (int64_t) worker->heartbeat_ms * worker->liveness) {
        const char *hint = zm_secure_hint(worker->curve);
        zm_log_notice("worker: broker silent ms=%" PRId64 ", reconnecting%s%s",
                      now - self->last_heard, hint[0] ? "; " : "", hint);
        s_connect(self);
    }
    else if (now - self->last_sent >= worker->heartbeat_ms)
        s_send_simple(self, ZM_CMD_HEARTBEAT, 0, NULL);
}

//  Milliseconds until s_on_clock has something to do.
static long
s_wait_ms(const s_engine_t *self, int64_t now)
{
    const zmesh_worker_t *worker = self->worker;
    int64_t next;
    if (!self->sock)
        next = self->reconnect_at;
    else
        next = zm_beat_next(self->last_sent, self->last_heard, worker->heartbeat_ms,
                            worker->liveness);
    return next > now ? (long) (next - now) : 0;
}

static void
s_drain_wake(zmesh_worker_t *worker)
{
    char buffer[64];
    while (read(worker->wake[0], buffer, sizeof buffer) > 0)
        ;
}

//  The event loop; returns when stopped or refused.
static void
s_serve(s_engine_t *self)
{
    zmesh_worker_t *worker = self->worker;
    s_connect(self);
    while (self->rc == ZMESH_OK && !worker->stop_requested && !zsys_interrupted) {
        zmq_pollitem_t items[3] = {
            {zsock_resolve(self->backend), 0, ZMQ_POLLIN, 0},
            {NULL, worker->wake[0], ZMQ_POLLIN, 0},
            {self->sock ? zsock_resolve(self->sock) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int count = self->sock ? 3 : 2;
        if (zmq_poll(items, count, s_wait_ms(self, zclock_mono())) < 0 && errno != EINTR) {
            self->rc = ZMESH_ESYS;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_wake(worker);
        //  Drain what is waiting, but bounded, so neither side starves the other.
        for (int i = 0; i < 256 && (zsock_events(self->backend) & ZMQ_POLLIN); i++) {
            zmsg_t *msg = zmsg_recv(self->backend);
            if (msg)
                s_on_backend(self, msg);
            zmsg_destroy(&msg);
        }
        for (int i = 0; i < 256 && self->sock && (zsock_events(self->sock) & ZMQ_POLLIN); i++) {
            zmsg_t *msg = zmsg_recv(self->sock);
            if (msg)
                s_on_broker(self, msg);
            zmsg_destroy(&msg);
        }
        s_on_clock(self, zclock_mono());
    }
}

static void
s_frame_destroy(void **item_p)
{
    zframe_destroy((zframe_t **) item_p);
}

//  Starts the handler threads and waits until each has said HELLO, so the
//  slots offered to the broker are all really there.
static s_handler_t *
s_start_handlers(s_engine_t *self, zmesh_handler_fn *handler, void *arg, const char *backend)
{
    int threads = self->worker->threads;
    s_handler_t *handlers = zm_alloc(sizeof *handlers * (size_t) threads);
    for (int i = 0; i < threads; i++) {
        snprintf(handlers[i].backend, sizeof handlers[i].backend, "%s", backend);
        handlers[i].handler = handler;
        handlers[i].arg = arg;
        int rc = pthread_create(&handlers[i].thread, NULL, s_handler_main, &handlers[i]);
        assert(rc == 0);
    }
    while (zlistx_size(self->all) < (size_t) threads) {
        zmsg_t *msg = zmsg_recv(self->backend);
        if (!msg)
            break;              //  interrupted; the stop path still joins them
        s_on_backend(self, msg);
        zmsg_destroy(&msg);
    }
    return handlers;
}

//  Tells every thread to stop; a busy one stops after its handler returns.
static void
s_stop_handlers(s_engine_t *self, s_handler_t *handlers)
{
    for (zframe_t *thread = zlistx_first(self->all); thread; thread = zlistx_next(self->all)) {
        zmsg_t *msg = zmsg_new();
        zframe_t *copy = zframe_dup(thread);
        zmsg_append(msg, &copy);
        zmsg_addstr(msg, "STOP");
        zmsg_send(&msg, self->backend);
    }
    for (int i = 0; i < self->worker->threads; i++)
        pthread_join(handlers[i].thread, NULL);
    free(handlers);
}

int
zmesh_worker_run(zmesh_worker_t *self, zmesh_handler_fn *handler, void *arg)
{
    assert(self);
    assert(handler);
    self->error[0] = '\0';
    s_drain_wake(self);
    if (self->stop_requested) {
        self->stop_requested = 0;
        return ZMESH_OK;
    }
    s_engine_t engine = {.worker = self, .backoff = S_RECONNECT_MIN};
    char backend[64];
    snprintf(backend, sizeof backend, "inproc://zmesh-worker-%p", (void *) self);
    engine.backend = zsock_new(ZMQ_ROUTER);
    if (!engine.backend || zsock_bind(engine.backend, "%s", backend) != 0) {
        zsock_destroy(&engine.backend);
        return ZMESH_ESYS;
    }
    engine.idle = zlistx_new();
    zlistx_set_destructor(engine.idle, s_frame_destroy);
    engine.all = zlistx_new();
    zlistx_set_destructor(engine.all, s_frame_destroy);
    engine.handler = handler;
    engine.arg = arg;
    engine.streams = zm_hash_new_u64();
    zhashx_set_destructor(engine.streams, s_frame_destroy);
    s_handler_t *handlers =
        self->inline_slots ? NULL : s_start_handlers(&engine, handler, arg, backend);
    s_serve(&engine);
    s_cancel_streams(&engine);      //  handlers waiting for credit must return
    if (engine.sock)
        s_send_simple(&engine, ZM_CMD_DISCONNECT, ZM_STATUS_OK, "worker stopping");
    zsock_destroy(&engine.sock);
    if (handlers)
        s_stop_handlers(&engine, handlers);
    zlistx_destroy(&engine.all);
    zlistx_destroy(&engine.idle);
    zhashx_destroy(&engine.streams);
    zsock_destroy(&engine.backend);
    self->stop_requested = 0;
    return engine.rc;
}
