//  broker - one ROUTER socket, and a PULL socket for plain PUSH producers, in
//  one zloop, one thread, no locks. Each wake drains a batch of messages into
//  the engine, then sends what the engine produced. ROUTER_MANDATORY and a
//  zero send timeout make every delivery failure visible here, so it is
//  counted instead of lost in libzmq. The PULL socket is not read while the
//  engine holds a message for a full pipeline: that is the back-pressure its
//  producers get.
//
//  With CURVE, every message comes with its sender's key (User-Id) and the
//  descriptor of its connection; a monitor reports closed connections. The
//  connection table (conns) ends a session whose connection closed before
//  anything is sent to a newcomer with its routing id, and nothing goes to
//  a routing id no live connection holds.
#include "broker.h"

#include "conns.h"
#include "security.h"
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
    zm_security_t *security;    //  owned: CURVE, or NULL for an open broker
    zm_conns_t *conns;          //  owned, with security: live connections
    zsock_t *router_events;     //  owned, with security: the ROUTER's closed connections
    zsock_t *pull_events;       //  owned, with security and a push endpoint: the PULL's
    zlistx_t *gone;             //  owned strings: routing ids whose connection closed
    int64_t keys_read_at;       //  ms: the last look at the keys directory
    char missing_key[ZM_CURVE_KEY_TXT];    //  the last key looked for and not found
    int64_t missing_at;         //  ms: when
} s_broker_t;

#define S_KEYS_EVERY_MS 1000    //  how often the keys directory is read again
#define S_CLOSING_MAX_MS 500    //  a closed connection's session ends by then

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

//  Copies the sender's User-Id (its CURVE public key) off a received part.
static void
s_user_id(zmq_msg_t *part, char *user_id)
{
    const char *value = zmq_msg_gets(part, "User-Id");
    snprintf(user_id, ZM_CURVE_KEY_TXT, "%s", value ? value : "");
}

//  Receives one message; *fd_p gets the descriptor of the connection it came
//  on, -1 if unknown, and user_id its sender's key ("" if none; user_id
//  NULL, without CURVE, skips that lookup). libzmq tells
//  them only on parts that came off the wire, not on the routing id the
//  ROUTER adds, so the first two parts are read raw; the rest, payload
//  included, through CZMQ without a copy.
static zmsg_t *
s_recv(zsock_t *router, int *fd_p, char *user_id)
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
            *fd_p = zmq_msg_get(&part, ZMQ_SRCFD);  //  kicks need it, CURVE or not
            if (user_id)                        //  with CURVE only: a metadata lookup
                s_user_id(&part, user_id);
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

//  inode, if not 0, is the inode the descriptor's socket must have: one
//  with another is a later connection given the same number.
static void
s_kick_later(s_broker_t *self, int fd, uint64_t inode, int64_t now)
{
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || (inode && info.st_ino != inode)) {
        zm_log_warning("broker: cannot kick fd=%d", fd);
        return;
    }
    s_kick_t *kick = zm_alloc(sizeof *kick);
    kick->fd = fd;
    kick->inode = info.st_ino;
    kick->due = now + ZM_ENGINE_TICK_MS;
    zlistx_add_end(self->kicks, kick);
}

//  Closes the connection the last message came on. With CURVE, only if it
//  is still open and is the same socket: a sender that already closed may
//  have left its descriptor number to an innocent newcomer.
static void
s_kick_sender(s_broker_t *self, int fd, int64_t now)
{
    uint64_t inode = 0;
    if (self->conns && !zm_conns_live_fd(self->conns, fd, &inode))
        return;                                 //  closed already
    s_kick_later(self, fd, inode, now);
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

static void s_read_events(s_broker_t *self, zsock_t *events, int64_t now);
static void s_read_keys(s_broker_t *self, int64_t now);

//  Records who sent a message, with CURVE. Before the table takes a
//  connection it does not know (a first message, or a descriptor that seems
//  reused), the connection events emitted before the message was queued are
//  read: the close of the descriptor's previous connection must be applied
//  to that one, never to its successor. A message of a known connection
//  needs no such read (it would cost a poll per message).
static zm_conn_seen_t
s_seen(s_broker_t *self, zsock_t *events, int fd, const char *id, const char *user_id,
       int64_t now)
{
    if (!zm_conns_known(self->conns, fd, id, user_id))
        s_read_events(self, events, now);
    //  zauth reads the keys directory at each handshake, the keyring once a
    //  second: a key added a moment ago is read now rather than refused. A
    //  key just found missing is not looked for again for a while: a removed
    //  key's last messages do not each cost a read of the directory.
    if (!zm_keyring_lookup(zm_security_keyring(self->security), user_id)
        && !(streq(user_id, self->missing_key) && now - self->missing_at < S_KEYS_EVERY_MS)) {
        s_read_keys(self, now);
        if (!zm_keyring_lookup(zm_security_keyring(self->security), user_id)) {
            snprintf(self->missing_key, sizeof self->missing_key, "%s", user_id);
            self->missing_at = now;
        }
    }
    zm_conn_seen_t seen = zm_conns_seen(self->conns, fd, id, user_id, self->gone);
    if (seen == ZM_CONN_NEW) {
        struct stat info;
        if (fd >= 0 && fstat(fd, &info) == 0)
            zm_conns_tag(self->conns, fd, (uint64_t) info.st_ino);
    }
    return seen;
}

//  Ends the sessions of the connections the table found closed.
static void
s_end_gone(s_broker_t *self, int64_t now)
{
    char *id;
    while (self->gone && (id = zlistx_detach(self->gone, NULL))) {
        zm_engine_on_gone(self->engine, id, now);
        free(id);
    }
}

//  Reads the closed-connection events of one monitor.
static void
s_read_events(s_broker_t *self, zsock_t *events, int64_t now)
{
    while (events && (zsock_events(events) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv(events);
        zframe_t *head = event ? zmsg_first(event) : NULL;
        if (head && zframe_size(head) == 6) {
            uint16_t type;
            uint32_t fd;
            memcpy(&type, zframe_data(head), sizeof type);
            memcpy(&fd, zframe_data(head) + 2, sizeof fd);
            if (type == ZMQ_EVENT_DISCONNECTED)
                zm_conns_closing(self->conns, (int) fd, now);
            else {
                //  No session, nothing reached the engine: counted, and logged
                //  only in debug (a scan would flood the log).
                self->engine->counters.handshakes_failed++;
                zm_log_debug("broker: handshake failed event=%u value=%u", type, fd);
            }
        }
        zmsg_destroy(&event);
    }
}

//  Ends the sessions of closed connections once no message of theirs can
//  still wait to be read: the ROUTER has nothing queued (what a connection
//  sent before it closed is queued before its close is reported), or the
//  close is old enough that a busy ROUTER must not hold it back longer.
static void
s_sweep_closed(s_broker_t *self, int64_t now)
{
    bool idle = !(zsock_events(self->router) & ZMQ_POLLIN);
    zm_conns_sweep(self->conns, idle, now - S_CLOSING_MAX_MS, self->gone);
    s_end_gone(self, now);
}

static void s_flush(s_broker_t *self, int64_t now);
static void s_sync_pull(s_broker_t *self);

static int
s_on_events(zloop_t *loop, zsock_t *events, void *arg)
{
    (void) loop;
    (void) events;
    s_broker_t *self = arg;
    s_flush(self, zclock_mono());               //  reads every event, sweeps, sends
    s_sync_pull(self);
    return 0;
}

//  Sends one outbox message. The routing frame goes first with REUSE so
//  that on failure we still hold it and can tell the engine who was missed.
//  With CURVE, a routing id no live connection holds is not sent to: a peer
//  that took it over must get nothing meant for the one before.
static void
s_send(s_broker_t *self, zmsg_t *msg, int64_t now)
{
    zframe_t *routing = zmsg_pop(msg);
    if (self->conns) {
        char id[ZM_ENGINE_ID_MAX];
        zm_conn_state_t state = zm_conns_state(self->conns, zm_engine_hex(id, routing));
        if (state != ZM_CONN_LIVE) {
            //  A closing connection's session ends at the sweep, which settles
            //  what it held: this message is not counted as a failure twice.
            if (state == ZM_CONN_NONE)
                zm_engine_on_send_failed(self->engine, routing, false, now);
            zframe_destroy(&routing);
            zmsg_destroy(&msg);
            return;
        }
    }
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
    if (self->conns) {
        //  Closed connections first: their routing ids may be someone else's now.
        s_read_events(self, self->router_events, now);
        s_read_events(self, self->pull_events, now);
        s_sweep_closed(self, now);
    }
    zmsg_t *msg;
    while ((msg = zm_engine_outbox_pop(self->engine)))
        s_send(self, msg, now);
}

static int s_on_pull(zloop_t *loop, zsock_t *pull, void *arg);

//  Receives one message off the push endpoint, the first part raw for its
//  descriptor and key (as s_recv).
static zmsg_t *
s_recv_pull(zsock_t *pull, int *fd_p, char *user_id)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, zsock_resolve(pull), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return NULL;
    }
    *fd_p = zmq_msg_get(&part, ZMQ_SRCFD);
    if (user_id)
        s_user_id(&part, user_id);
    bool more = zmq_msg_more(&part);
    zmsg_t *msg = zmsg_new();
    zframe_t *frame = s_frame_from(&part);
    zmsg_append(msg, &frame);
    while (more && (frame = zframe_recv(pull))) {
        more = zframe_more(frame);
        zmsg_append(msg, &frame);
    }
    return msg;
}

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
    for (int i = 0; i < S_BATCH && !zm_engine_push_blocked(self->engine); i++) {
        int fd = -1;
        char user_id[ZM_CURVE_KEY_TXT] = "";
        zmsg_t *msg = s_recv_pull(pull, &fd, self->conns ? user_id : NULL);
        if (!msg)
            break;
        if (self->conns) {
            s_seen(self, self->pull_events, fd, NULL, user_id, now);
            s_end_gone(self, now);
        }
        zm_engine_on_push(self->engine, &msg, self->conns ? user_id : NULL, now);
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
    for (int i = 0; i < S_BATCH; i++) {
        int fd = -1;
        bool late = false;                      //  from a connection closed already
        char user_id[ZM_CURVE_KEY_TXT] = "";
        zmsg_t *msg = s_recv(router, &fd, self->conns ? user_id : NULL);
        if (!msg)
            break;
        if (self->conns) {
            char id[ZM_ENGINE_ID_MAX];
            late = s_seen(self, self->router_events, fd, zm_engine_hex(id, zmsg_first(msg)),
                          user_id, now)
                   == ZM_CONN_LATE;
            s_end_gone(self, now);
        }
        zm_engine_on_message(self->engine, &msg, self->conns ? user_id : NULL, now);
        if (zm_engine_take_kick(self->engine) && !late)
            s_kick_sender(self, fd, now);
        if (zlistx_size(self->engine->outbox) >= S_BATCH)
            s_flush(self, now);
    }
    s_flush(self, now);
    s_sync_pull(self);
    return 0;
}

static void
s_free_string(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

static void
s_kick_fd(void *arg, int fd, uint64_t inode)
{
    s_broker_t *self = arg;
    s_kick_later(self, fd, inode, zclock_mono());
}

//  Reads the keys directory again. Sessions of a removed key, or of one that
//  lost the right they use, are told DISCONNECT 403 and end; every
//  connection of a removed key is closed on the next tick (after that
//  DISCONNECT left); zauth refuses its handshakes from now on.
static void
s_read_keys(s_broker_t *self, int64_t now)
{
    self->keys_read_at = now;
    zlistx_t *removed = zlistx_new();
    zlistx_set_destructor(removed, s_free_string);
    if (zm_keyring_refresh(zm_security_keyring(self->security), removed)) {
        //  zauth notices a change itself only if the count, total size or
        //  newest time (in seconds) of the files changed: a key file
        //  replaced by a copy of the same size would go unseen.
        zm_security_reload(self->security);
        zm_engine_recheck_keys(self->engine, now);
        for (char *key = zlistx_first(removed); key; key = zlistx_next(removed))
            zm_conns_each_of_key(self->conns, key, s_kick_fd, self);
    }
    zlistx_destroy(&removed);
}

static int
s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_broker_t *self = arg;
    int64_t now = zclock_mono();
    zm_engine_on_tick(self->engine, now);
    if (self->security && now - self->keys_read_at >= S_KEYS_EVERY_MS)
        s_read_keys(self, now);
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
    if (max_frame < 2 * ZM_SNAPSHOT_CHUNK)
        max_frame = 2 * ZM_SNAPSHOT_CHUNK;      //  catch-up needs whole snapshot chunks
    zsock_set_maxmsgsize(sock, max_frame > INT32_MAX ? INT32_MAX : (int) max_frame);
}

static zsock_t *
s_open_pull(const zm_broker_config_t *config, zm_security_t *security)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    assert(pull);
    //  Small: while a pipeline is full, what waits here waits outside the bound.
    zsock_set_rcvhwm(pull, 100);
    s_set_max_frame(pull, config);
    if (security)
        zm_security_apply(security, pull);
    if (zsock_bind(pull, "%s", config->push_bind) < 0) {
        zm_log_error("broker: cannot bind push endpoint=%s error=\"%s\"", config->push_bind,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&pull);
    }
    return pull;
}

static zsock_t *
s_open(const zm_broker_config_t *config, zm_security_t *security)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert(router);
    zsock_set_router_mandatory(router, 1);
    zsock_set_sndtimeo(router, 0);
    zsock_set_sndhwm(router, 10000);
    zsock_set_rcvhwm(router, 10000);
    s_set_max_frame(router, config);
    if (security)
        zm_security_apply(security, router);
    if (zsock_bind(router, "%s", config->bind) < 0) {
        zm_log_error("broker: cannot bind endpoint=%s error=\"%s\"", config->bind,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&router);
    }
    return router;
}

//  A PAIR that gets sock's closed-connection events; NULL if libzmq refuses.
static zsock_t *
s_watch(zsock_t *sock, const char *name)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://zmesh-broker-%s-events", name);
    //  Not HANDSHAKE_FAILED_NO_DETAIL: a peer that leaves mid-handshake (a
    //  client's endpoint check does) has done nothing wrong.
    int watched = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                  | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (zmq_socket_monitor(zsock_resolve(sock), endpoint, watched) != 0)
        return NULL;
    zsock_t *events = zsock_new(ZMQ_PAIR);
    assert(events);
    if (zsock_connect(events, "%s", endpoint) != 0)
        zsock_destroy(&events);
    return events;
}

bool
zm_broker_endpoint_local(const char *endpoint)
{
    assert(endpoint);
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;                           //  pgm, udp, ...: a network
    const char *host = endpoint + 6;
    const char *semicolon = strchr(host, ';');  //  tcp://source;destination: the bind side
    if (semicolon)
        host = semicolon + 1;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0
           || strncmp(host, "[::1]:", 6) == 0 || strncmp(host, "lo:", 3) == 0;
}

//  Without CURVE, an endpoint others can reach needs --insecure.
static bool
s_check_exposure(const zm_broker_config_t *config)
{
    const char *endpoints[2] = {config->bind, config->push_bind};
    for (int i = 0; i < 2; i++) {
        if (!endpoints[i] || zm_broker_endpoint_local(endpoints[i]))
            continue;
        if (!config->insecure) {
            zm_log_error("broker: refusing to bind %s without CURVE: anyone who reaches it "
                         "could call, serve, push and pull anything. Give --curve-secret and "
                         "--curve-keys, or --insecure to accept that",
                         endpoints[i]);
            return false;
        }
        zm_log_warning("broker: insecure endpoint=%s: no authentication, anyone who reaches "
                       "it may do anything",
                       endpoints[i]);
    }
    return true;
}

static void
s_close(s_broker_t *self)
{
    zloop_destroy(&self->loop);
    while (self->kicks && zlistx_size(self->kicks))
        free(zlistx_detach(self->kicks, NULL));
    zlistx_destroy(&self->kicks);
    zm_engine_destroy(&self->engine);
    if (self->router_events)
        zmq_socket_monitor(zsock_resolve(self->router), NULL, 0);
    if (self->pull_events)
        zmq_socket_monitor(zsock_resolve(self->pull), NULL, 0);
    zsock_destroy(&self->router_events);
    zsock_destroy(&self->pull_events);
    zsock_destroy(&self->pull);
    zsock_destroy(&self->router);
    zlistx_destroy(&self->gone);
    zm_conns_destroy(&self->conns);
    zm_security_destroy(&self->security);
}

int
zm_broker_run(const zm_broker_config_t *config)
{
    assert(config);
    s_broker_t self = {NULL};
    if (config->curve_secret) {
        assert(config->curve_keys);
        //  zauth runs, and is proven to refuse a stranger, before anything binds.
        if (!(self.security = zm_security_start(config->curve_secret, config->curve_keys)))
            return 1;
        self.conns = zm_conns_new();
        self.gone = zlistx_new();
        zlistx_set_destructor(self.gone, s_free_string);
    }
    else if (!s_check_exposure(config))
        return 1;
    self.router = s_open(config, self.security);
    if (!self.router || (config->push_bind && !(self.pull = s_open_pull(config, self.security)))) {
        s_close(&self);
        return 1;
    }
    if (self.security && (!(self.router_events = s_watch(self.router, "router"))
                          || (self.pull && !(self.pull_events = s_watch(self.pull, "pull"))))) {
        zm_log_error("broker: cannot watch connections: %s", zmq_strerror(zmq_errno()));
        s_close(&self);
        return 1;
    }
    const char *endpoint = zsock_endpoint(self.router);
    zm_log_info("broker: listening endpoint=%s grace_ms=%" PRId64 " max_queue=%zu max_body=%zu"
                " curve=%s",
                endpoint, config->engine.grace_ms, config->engine.max_queue,
                config->engine.limits.max_body, self.security ? "on" : "off");
    if (self.pull)
        zm_log_info("broker: push endpoint=%s", zsock_endpoint(self.pull));
    if (config->print_endpoint) {
        printf("%s\n", endpoint);
        if (self.pull)
            printf("%s\n", zsock_endpoint(self.pull));
        fflush(stdout);
    }
    self.engine = zm_engine_new(&config->engine, zclock_mono());
    if (self.security)
        zm_engine_set_keyring(self.engine, zm_security_keyring(self.security));
    self.kicks = zlistx_new();
    self.loop = zloop_new();
    zloop_reader(self.loop, self.router, s_on_router, &self);
    if (self.router_events)
        zloop_reader(self.loop, self.router_events, s_on_events, &self);
    if (self.pull_events)
        zloop_reader(self.loop, self.pull_events, s_on_events, &self);
    zloop_timer(self.loop, ZM_ENGINE_TICK_MS, 0, s_on_tick, &self);
    self.keys_read_at = zclock_mono();
    s_sync_pull(&self);
    zloop_start(self.loop);                     //  returns on SIGINT/SIGTERM
    zm_log_info("broker: stopping calls=%" PRIu64 " replies=%" PRIu64,
                self.engine->counters.calls, self.engine->counters.replies);
    s_close(&self);
    return 0;
}
