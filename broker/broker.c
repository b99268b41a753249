//  broker - one ROUTER socket, and a PULL socket for plain PUSH producers, in
//  one zloop, one thread, no locks. Each wake drains a batch of messages into
//  the engine, then sends what the engine produced. ROUTER_MANDATORY and a
//  zero send timeout make every delivery failure visible here, so it is
//  counted instead of lost in libzmq. The PULL socket is not read while the
//  engine holds a message for a full pipeline: that is the back-pressure its
//  producers get.
#include "broker.h"

#include "zm_alloc.h"
#include "zm_log.h"

#include <sys/socket.h>
#include <sys/stat.h>

#define S_BATCH 512             //  messages read per wake-up

typedef struct {
    zsock_t *router;            //  owned
    zsock_t *pull;              //  owned: the push endpoint, or NULL
    bool reading_pull;          //  the loop polls it
    zloop_t *loop;              //  owned
    zm_engine_t *engine;        //  owned
    zlistx_t *kicks;            //  owned s_kick_t: connections to close on the next tick
} s_broker_t;

//  A connection to close. libzmq offers no way to drop one ROUTER peer, so
//  the broker shuts its socket down (never closes it: libzmq owns the fd and
//  sees EOF). It waits a tick so the peer's last error reply can leave, and
//  checks the inode so a descriptor number reused meanwhile is left alone.
typedef struct {
    int fd;
    ino_t inode;
    int64_t due;                //  ms
} s_kick_t;

//  Moves a raw libzmq message part into a new frame (a copy: used only for
//  the routing id and the frame after it, normally the empty delimiter).
static zframe_t *
s_frame_from(zmq_msg_t *part)
{
    zframe_t *frame = zframe_new(zmq_msg_data(part), zmq_msg_size(part));
    zmq_msg_close(part);
    return frame;
}

//  Receives one message; *fd_p gets the descriptor of the connection it came
//  on, -1 if unknown. libzmq tells it (ZMQ_SRCFD) only on parts that came off
//  the wire, not on the routing id the ROUTER adds, so the first two parts
//  are read raw; the rest, payload included, through CZMQ without a copy.
static zmsg_t *
s_recv(zsock_t *router, int *fd_p)
{
    void *handle = zsock_resolve(router);
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return NULL;
    }
    zmsg_t *msg = zmsg_new();
    bool more = zmq_msg_more(&part);
    zframe_t *frame = s_frame_from(&part);
    zmsg_append(msg, &frame);
    if (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, 0) >= 0) {
            *fd_p = zmq_msg_get(&part, ZMQ_SRCFD);
            more = zmq_msg_more(&part);
            frame = s_frame_from(&part);
            zmsg_append(msg, &frame);
        }
        else {
            zmq_msg_close(&part);
            more = false;
        }
    }
    while (more && (frame = zframe_recv(router))) {
        more = zframe_more(frame);
        zmsg_append(msg, &frame);
    }
    return msg;
}

static void
s_kick_later(s_broker_t *self, int fd, int64_t now)
{
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        zm_log_warning("broker: cannot kick fd=%d", fd);
        return;
    }
    s_kick_t *kick = zm_alloc(sizeof *kick);
    kick->fd = fd;
    kick->inode = info.st_ino;
    kick->due = now + ZM_ENGINE_TICK_MS;
    zlistx_add_end(self->kicks, kick);
}

static void
s_kick_due(s_broker_t *self, int64_t now)
{
    s_kick_t *kick;
    while ((kick = zlistx_first(self->kicks)) && kick->due <= now) {
        struct stat info;
        if (fstat(kick->fd, &info) == 0 && info.st_ino == kick->inode) {
            int rc = shutdown(kick->fd, SHUT_RDWR);
            zm_log_debug("broker: shutdown fd=%d rc=%d", kick->fd, rc);
        }
        free(zlistx_detach(self->kicks, NULL));
    }
}

//  Sends one outbox message. The routing frame goes first with REUSE so
//  that on failure we still hold it and can tell the engine who was missed.
static void
s_send(s_broker_t *self, zmsg_t *msg, int64_t now)
{
    zframe_t *routing = zmsg_pop(msg);
    if (zframe_send(&routing, self->router, ZFRAME_REUSE | ZFRAME_MORE | ZFRAME_DONTWAIT) == 0)
        zmsg_send(&msg, self->router);          //  the rest of a message always follows
    else
        zm_engine_on_send_failed(self->engine, routing, errno == EAGAIN, now);
    zframe_destroy(&routing);
    zmsg_destroy(&msg);
}

static void
s_flush(s_broker_t *self, int64_t now)
{
    zmsg_t *msg;
    while ((msg = zm_engine_outbox_pop(self->engine)))
        s_send(self, msg, now);
}

static int s_on_pull(zloop_t *loop, zsock_t *pull, void *arg);

//  Polls the push endpoint exactly while the engine can take from it.
static void
s_sync_pull(s_broker_t *self)
{
    if (!self->pull)
        return;
    bool blocked = zm_engine_push_blocked(self->engine);
    if (blocked && self->reading_pull) {
        zloop_reader_end(self->loop, self->pull);
        self->reading_pull = false;
    }
    else if (!blocked && !self->reading_pull) {
        zloop_reader(self->loop, self->pull, s_on_pull, self);
        self->reading_pull = true;
    }
}

static int
s_on_pull(zloop_t *loop, zsock_t *pull, void *arg)
{
    (void) loop;
    s_broker_t *self = arg;
    int64_t now = zclock_mono();
    for (int i = 0; i < S_BATCH && !zm_engine_push_blocked(self->engine)
                    && (zsock_events(pull) & ZMQ_POLLIN);
         i++) {
        zmsg_t *msg = zmsg_recv(pull);
        if (!msg)
            break;
        zm_engine_on_push(self->engine, &msg, now);
        if (zlistx_size(self->engine->outbox) >= S_BATCH)
            s_flush(self, now);
    }
    s_flush(self, now);
    s_sync_pull(self);
    return 0;
}

static int
s_on_router(zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    s_broker_t *self = arg;
    int64_t now = zclock_mono();
    for (int i = 0; i < S_BATCH && (zsock_events(router) & ZMQ_POLLIN); i++) {
        int fd = -1;
        zmsg_t *msg = s_recv(router, &fd);
        if (!msg)
            break;
        zm_engine_on_message(self->engine, &msg, now);
        if (zm_engine_take_kick(self->engine))
            s_kick_later(self, fd, now);
        if (zlistx_size(self->engine->outbox) >= S_BATCH)
            s_flush(self, now);
    }
    s_flush(self, now);
    s_sync_pull(self);
    return 0;
}

static int
s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_broker_t *self = arg;
    int64_t now = zclock_mono();
    zm_engine_on_tick(self->engine, now);
    s_flush(self, now);
    s_sync_pull(self);
    s_kick_due(self, now);
    return 0;
}

//  libzmq drops the connection of a peer sending a frame this large; the
//  codec answers 413 below it, so a client over the limit gets an error.
static void
s_set_max_frame(zsock_t *sock, const zm_broker_config_t *config)
{
    size_t max_frame = 2 * config->engine.limits.max_body + 4096;
    zsock_set_maxmsgsize(sock, max_frame > INT32_MAX ? INT32_MAX : (int) max_frame);
}

static zsock_t *
s_open_pull(const zm_broker_config_t *config)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    assert(pull);
    //  Small: while a pipeline is full, what waits here waits outside the bound.
    zsock_set_rcvhwm(pull, 100);
    s_set_max_frame(pull, config);
    if (zsock_bind(pull, "%s", config->push_bind) < 0) {
        zm_log_error("broker: cannot bind push endpoint=%s error=\"%s\"", config->push_bind,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&pull);
    }
    return pull;
}

static zsock_t *
s_open(const zm_broker_config_t *config)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert(router);
    zsock_set_router_mandatory(router, 1);
    zsock_set_sndtimeo(router, 0);
    zsock_set_sndhwm(router, 10000);
    zsock_set_rcvhwm(router, 10000);
    s_set_max_frame(router, config);
    if (zsock_bind(router, "%s", config->bind) < 0) {
        zm_log_error("broker: cannot bind endpoint=%s error=\"%s\"", config->bind,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&router);
    }
    return router;
}

int
zm_broker_run(const zm_broker_config_t *config)
{
    assert(config);
    s_broker_t self = {.router = s_open(config)};
    if (!self.router)
        return 1;
    if (config->push_bind && !(self.pull = s_open_pull(config))) {
        zsock_destroy(&self.router);
        return 1;
    }
    const char *endpoint = zsock_endpoint(self.router);
    zm_log_info("broker: listening endpoint=%s grace_ms=%" PRId64 " max_queue=%zu max_body=%zu",
                endpoint, config->engine.grace_ms, config->engine.max_queue,
                config->engine.limits.max_body);
    if (self.pull)
        zm_log_info("broker: push endpoint=%s", zsock_endpoint(self.pull));
    if (config->print_endpoint) {
        printf("%s\n", endpoint);
        if (self.pull)
            printf("%s\n", zsock_endpoint(self.pull));
        fflush(stdout);
    }
    self.engine = zm_engine_new(&config->engine, zclock_mono());
    self.kicks = zlistx_new();
    self.loop = zloop_new();
    zloop_reader(self.loop, self.router, s_on_router, &self);
    zloop_timer(self.loop, ZM_ENGINE_TICK_MS, 0, s_on_tick, &self);
    s_sync_pull(&self);
    zloop_start(self.loop);                     //  returns on SIGINT/SIGTERM
    zm_log_info("broker: stopping calls=%" PRIu64 " replies=%" PRIu64,
                self.engine->counters.calls, self.engine->counters.replies);
    zloop_destroy(&self.loop);
    while (zlistx_size(self.kicks))
        free(zlistx_detach(self.kicks, NULL));
    zlistx_destroy(&self.kicks);
    zm_engine_destroy(&self.engine);
    zsock_destroy(&self.pull);
    zsock_destroy(&self.router);
    return 0;
}
