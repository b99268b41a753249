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
#include "zm_dealer.h"
#include "zm_hash.h"
#include "zm_link.h"
#include "zm_log.h"
#include "zm_msg.h"
#include "zm_pack.h"
#include "zm_proto.h"
#include "zm_secure.h"
#include "zm_wake.h"

#include <czmq.h>
#include <pthread.h>

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
    zm_wake_t wake;             //  owned: zmesh_worker_stop's request to the loop
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
    zm_link_t link;             //  the connection to the broker, its session and timing
    zsock_t *backend;           //  owned ROUTER to the handler threads
    zlistx_t *idle;             //  owned zframe_t: routing ids of idle threads
    zlistx_t *all;              //  owned zframe_t: routing ids of every thread
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
    zm_endpoints_t *endpoints = zm_dealer_check(endpoint, service, curve, err_p);
    if (!endpoints)
        return NULL;
    zmesh_worker_t *self = zm_alloc(sizeof *self);
    if (zm_wake_open(&self->wake) != ZMESH_OK) {
        if (err_p)
            *err_p = ZMESH_ESYS;
        zm_endpoints_destroy(&endpoints);
        free(self);
        return NULL;
    }
    self->endpoint = zm_strdup(endpoint);
    self->endpoints = endpoints;
    self->service = zm_strdup(service);
    self->curve = zm_secure_dup(curve);
    self->threads = 1;
    self->heartbeat_ms = 1000;
    self->liveness = 3;
    return self;
}

void
zmesh_worker_destroy(zmesh_worker_t **self_p)
{
    assert(self_p);
    zmesh_worker_t *self = *self_p;
    if (!self)
        return;
    zm_wake_close(&self->wake);
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
    zm_wake_request(&self->wake);   //  async-signal-safe
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
s_send_simple(s_engine_t *self, zm_cmd_t cmd, uint32_t status, const char *reason)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    command.status = status;
    snprintf(command.reason, sizeof command.reason, "%s", reason ? reason : "");
    zm_link_send(&self->link, &command);
}

//  Tells the thread streaming ticket's reply about credit (count > 0) or,
//  with count 0, that the call is cancelled.
static void
s_control(s_engine_t *self, uint64_t ticket, uint32_t count)
{
    zframe_t *thread = zm_hash_lookup(self->streams, ticket);
    if (!thread)
        return;                                 //  its reply already went
    s_control_t control = {.ticket = ticket, .session = self->link.session, .credit = count};
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
                               .session = self->link.session};
        zmsg_t *msg = zmsg_new();
        zframe_t *copy = zframe_dup(thread);
        zmsg_append(msg, &copy);
        zmsg_addmem(msg, &control, sizeof control);
        zmsg_send(&msg, self->backend);
    }
    zhashx_purge(self->streams);
}

//  Opens a new connection, to the next broker of the list, and registers.
//  Replies of handlers still busy with requests of the old connection will
//  carry an old session and be dropped: the broker has already failed those
//  calls. What the old connection still queued (READY, replies) is dropped:
//  delivered after a partition heals, it would register a ghost.
static void
s_connect(s_engine_t *self)
{
    zmesh_worker_t *worker = self->worker;
    s_cancel_streams(self);     //  the broker answered their calls when it lost us
    if (zm_link_connect(&self->link) != ZMESH_OK) {
        snprintf(worker->error, sizeof worker->error, "cannot connect to %s",
                 zm_link_endpoint(&self->link));
        self->rc = ZMESH_EINVAL;
        return;
    }
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
    zm_link_send(&self->link, &ready);
    zm_log_debug("worker: READY service=%s slots=%d session=%u broker=%s", worker->service,
                 (int) ready.slots, self->link.session, zm_link_endpoint(&self->link));
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
    zm_link_send(&self->link, &reply);
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
        zm_link_send(&self->link, &reply);
        return;
    }
    s_tag_t tag = {.ticket = request->id, .session = self->link.session, .status = 0,
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

//  Reacts to one command from the broker.
static bool
s_on_broker(void *engine, zm_proto_t *command)
{
    s_engine_t *self = engine;
    if (command->cmd == ZM_CMD_REQUEST) {
        zm_link_registered(&self->link);
        s_dispatch(self, command);
    }
    else if (command->cmd == ZM_CMD_CREDIT)
        s_control(self, command->id, command->window);
    else if (command->cmd == ZM_CMD_CANCEL)
        s_control(self, command->id, 0);
    else if (command->cmd == ZM_CMD_DISCONNECT) {
        zmesh_worker_t *worker = self->worker;
        snprintf(worker->error, sizeof worker->error, "%s", command->reason);
        //  Not final: register again (DISCONNECT 403, 413, 505: no new READY).
        int rc = zm_link_disconnected(&self->link, command, zm_link_final(command->status));
        if (rc != ZMESH_OK)
            self->rc = rc;
    }
    return true;
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
        if (tag.ticket && tag.session == self->link.session)
            zhashx_delete(self->streams, ZM_HASH_KEY(tag.ticket));
    }
    if (tag.session != self->link.session || !self->link.sock) {
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
        zm_link_send(&self->link, &command);
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
        zm_link_send(&self->link, &report);
        return;
    }
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = tag.ticket;
    reply.status = tag.status;
    reply.body = zmsg_pop(msg);
    zm_link_send(&self->link, &reply);
}

//  The event loop; returns when stopped or refused.
static void
s_serve(s_engine_t *self)
{
    zmesh_worker_t *worker = self->worker;
    s_connect(self);
    while (self->rc == ZMESH_OK && !worker->wake.requested && !zsys_interrupted) {
        zsock_t *sock = self->link.sock;
        zmq_pollitem_t items[3] = {
            {zsock_resolve(self->backend), 0, ZMQ_POLLIN, 0},
            {NULL, zm_wake_fd(&worker->wake), ZMQ_POLLIN, 0},
            {sock ? zsock_resolve(sock) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int count = sock ? 3 : 2;
        long wait = zm_link_wait_ms(&self->link, zclock_mono());
        if (zmq_poll(items, count, wait) < 0 && errno != EINTR) {
            self->rc = ZMESH_ESYS;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            zm_wake_drain(&worker->wake);
        //  Drain what is waiting, but bounded, so neither side starves the other.
        for (int i = 0; i < 256 && (zsock_events(self->backend) & ZMQ_POLLIN); i++) {
            zmsg_t *msg = zmsg_recv(self->backend);
            if (msg)
                s_on_backend(self, msg);
            zmsg_destroy(&msg);
        }
        zm_link_drain(&self->link, 256, s_on_broker, self);
        //  Heartbeats, a silent broker, a reconnection due; none once refused for
        //  good (DISCONNECT 403, 413, 505): no new READY.
        if (self->rc == ZMESH_OK && zm_link_tick(&self->link, zclock_mono()))
            s_connect(self);
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
    zm_wake_drain(&self->wake);
    if (self->wake.requested) {
        self->wake.requested = 0;
        return ZMESH_OK;
    }
    s_engine_t engine = {.worker = self};
    zm_link_init(&engine.link, "worker", self->endpoints, self->curve, self->heartbeat_ms,
                 self->liveness);
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
    if (engine.link.sock)
        s_send_simple(&engine, ZM_CMD_DISCONNECT, ZM_STATUS_OK, "worker stopping");
    zsock_destroy(&engine.link.sock);       //  lingers so that DISCONNECT goes out
    if (handlers)
        s_stop_handlers(&engine, handlers);
    zlistx_destroy(&engine.all);
    zlistx_destroy(&engine.idle);
    zhashx_destroy(&engine.streams);
    zsock_destroy(&engine.backend);
    self->wake.requested = 0;
    return engine.rc;
}
