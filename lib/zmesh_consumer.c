//  zmesh_consumer - receives the messages of one pipeline (ZMP.md 16.5). An
//  engine thread (a zactor) owns the DEALER to the broker: it registers with
//  CONSUME, heartbeats whatever the application is doing, notices a silent
//  broker and registers again on a new socket (a fresh routing id, the next
//  broker of the list), and batches the application's acks into ACK
//  commands. Deliveries reach the application through the actor's pipe. The
//  application thread never touches the broker socket.
//
//  Pipe messages, engine to application: [D id:u64 attempt:u32][body], a
//  delivery; [E status:u32][reason], the broker refused us for good.
//  Application to engine: [A id:u64], an ack; [R id:u64], a delivery it
//  never handed to the user; [L], leave: RELEASE now; "$TERM" (zactor_destroy).
#include "zm_alloc.h"
#include "zm_dealer.h"
#include "zm_link.h"
#include "zm_log.h"
#include "zm_msg.h"
#include "zm_secure.h"
#include "zmesh.h"

#include <pthread.h>
#include <signal.h>

#define S_DRAIN_BATCH 1024      //  messages read from one side per wake-up
#define S_TAG_DELIVER 'D'
#define S_TAG_REFUSED 'E'
#define S_TAG_ACK 'A'
#define S_TAG_RELEASE 'R'
#define S_TAG_LEAVE 'L'

struct zmesh_consumer {
    zm_endpoints_t *endpoints;  //  owned; used by the engine thread once it runs
    zmesh_curve_t *curve;       //  owned copy of the CURVE keys, read by the engine; NULL: plain
    char pipeline[ZM_NAME_MAX + 1];
    int credit;
    int heartbeat_ms;
    int liveness;
    zactor_t *engine;           //  owned; NULL until the first recv
    int refused;                //  ZMESH_OK, or the error the broker's refusal maps to
    bool left;                  //  zmesh_consumer_leave was called
    char error[ZM_REASON_MAX + 1];
};

//  The engine thread's state.
typedef struct {
    const zmesh_consumer_t *consumer;   //  borrowed: settings, read only
    zsock_t *pipe;              //  borrowed: the actor's end of the pipe
    zm_link_t link;             //  the connection to the broker (one socket a session)
    bool refused;               //  the broker refused us for good: wait for $TERM
    bool stopping;              //  $TERM came
    bool left;                  //  sent RELEASE: never registers again
    uint64_t acks[ZM_ACK_MAX];  //  acks to send in the next ACK
    uint32_t ack_count;
    zlistx_t *backlog;          //  owned zmsg_t for the application while its pipe is full
    uint64_t *releases;         //  owned: deliveries to give back when closing, in order
    size_t release_count;
    size_t release_max;
} s_engine_t;

zmesh_consumer_t *
zmesh_consumer_new(const char *endpoint, const char *pipeline, int *err_p)
{
    return zmesh_consumer_new_secure(endpoint, pipeline, NULL, err_p);
}

zmesh_consumer_t *
zmesh_consumer_new_secure(const char *endpoint, const char *pipeline, const zmesh_curve_t *curve,
                          int *err_p)
{
    zm_endpoints_t *endpoints = zm_dealer_check(endpoint, pipeline, curve, err_p);
    if (!endpoints)
        return NULL;
    zmesh_consumer_t *self = zm_alloc(sizeof *self);
    self->endpoints = endpoints;
    self->curve = zm_secure_dup(curve);
    snprintf(self->pipeline, sizeof self->pipeline, "%s", pipeline);
    self->credit = 10;
    self->heartbeat_ms = 1000;
    self->liveness = 3;
    return self;
}

void
zmesh_consumer_set_credit(zmesh_consumer_t *self, int credit)
{
    assert(self);
    assert(!self->engine);
    assert(credit >= 1 && credit <= ZM_CREDIT_MAX);
    self->credit = credit;
}

void
zmesh_consumer_set_heartbeat(zmesh_consumer_t *self, int interval_ms, int liveness)
{
    assert(self);
    assert(!self->engine);
    assert(interval_ms >= ZM_HEARTBEAT_MIN && interval_ms <= ZM_HEARTBEAT_MAX);
    assert(liveness >= ZM_LIVENESS_MIN && liveness <= ZM_LIVENESS_MAX);
    self->heartbeat_ms = interval_ms;
    self->liveness = liveness;
}

const char *
zmesh_consumer_error(const zmesh_consumer_t *self)
{
    assert(self);
    return self->error;
}

//  Sends the acks collected so far, up to ZM_ACK_MAX per ACK. Acks of a
//  session already gone go to the new one: the broker ignores them there.
static void
s_flush_acks(s_engine_t *self)
{
    if (self->ack_count == 0)
        return;
    if (self->link.sock) {
        zm_proto_t ack;
        zm_proto_init(&ack);
        ack.cmd = ZM_CMD_ACK;
        memcpy(ack.acks, self->acks, sizeof ack.acks[0] * self->ack_count);
        ack.ack_count = self->ack_count;
        zm_link_send(&self->link, &ack);
    }
    self->ack_count = 0;
}

static void
s_add_release(s_engine_t *self, uint64_t id)
{
    if (self->release_count == self->release_max) {
        self->release_max = self->release_max ? 2 * self->release_max : 64;
        self->releases = realloc(self->releases, self->release_max * sizeof self->releases[0]);
        assert(self->releases);
    }
    self->releases[self->release_count++] = id;
}

//  Says we are leaving, with RELEASE, which also gives back the deliveries
//  the application never got: the ones it returned when closing, then the
//  backlog, 48 ids per RELEASE (the broker puts each message back in line
//  by the order it took them, so the chunks may go in any order).
static void
s_release_unseen(s_engine_t *self)
{
    zmsg_t *msg;
    while ((msg = zlistx_detach(self->backlog, NULL))) {
        zframe_t *tag = zmsg_first(msg);
        uint64_t id;
        if (tag && zframe_size(tag) == 13 && zframe_data(tag)[0] == S_TAG_DELIVER) {
            memcpy(&id, zframe_data(tag) + 1, 8);
            s_add_release(self, id);
        }
        zmsg_destroy(&msg);
    }
    size_t end = self->release_count;
    bool first = true;                          //  one RELEASE even with no id
    while ((end > 0 || first) && self->link.sock) {
        first = false;
        size_t start = end > ZM_ACK_MAX ? end - ZM_ACK_MAX : 0;
        zm_proto_t release;
        zm_proto_init(&release);
        release.cmd = ZM_CMD_RELEASE;
        release.ack_count = (uint32_t) (end - start);
        if (end > start)
            memcpy(release.acks, self->releases + start, sizeof release.acks[0] * (end - start));
        zm_link_send(&self->link, &release);
        end = start;
    }
    self->release_count = 0;
}

//  Opens a new socket, to the next broker of the list after the first
//  time, and registers. Whatever the old socket still queued is dropped.
static void
s_connect(s_engine_t *self)
{
    const zmesh_consumer_t *consumer = self->consumer;
    if (zm_link_connect(&self->link) != ZMESH_OK) {
        zm_log_warning("consumer: cannot connect broker=%s", zm_link_endpoint(&self->link));
        self->link.reconnect_at = zclock_mono() + ZM_LINK_BACKOFF_MAX;
        return;
    }
    zm_proto_t consume;
    zm_proto_init(&consume);
    consume.cmd = ZM_CMD_CONSUME;
    snprintf(consume.service, sizeof consume.service, "%s", consumer->pipeline);
    consume.credit = (uint32_t) consumer->credit;
    consume.heartbeat_ms = (uint32_t) consumer->heartbeat_ms;
    consume.liveness = (uint32_t) consumer->liveness;
    zm_link_send(&self->link, &consume);
    zm_log_debug("consumer: CONSUME pipeline=%s credit=%d session=%u broker=%s",
                 consumer->pipeline, consumer->credit, self->link.session,
                 zm_link_endpoint(&self->link));
}

//  Hands a message to the application, keeping the order when its pipe is full.
static void
s_to_app(s_engine_t *self, zmsg_t **msg_p)
{
    if (zlistx_size(self->backlog) == 0 && zm_dealer_send_msg(self->pipe, msg_p, NULL)
                                                 != ZMESH_EAGAIN)
        return;
    zlistx_add_end(self->backlog, *msg_p);
    *msg_p = NULL;
}

static void
s_flush_backlog(s_engine_t *self)
{
    zmsg_t *msg;
    while ((msg = zlistx_first(self->backlog))) {
        if (zm_dealer_send_msg(self->pipe, &msg, NULL) == ZMESH_EAGAIN)
            return;
        zlistx_detach(self->backlog, NULL);     //  msg was sent and destroyed
    }
}

static void
s_deliver(s_engine_t *self, zm_proto_t *deliver)
{
    if (strcmp(deliver->service, self->consumer->pipeline) != 0) {
        zm_log_warning("consumer: DELIVER for another pipeline=%s dropped", deliver->service);
        return;
    }
    uint8_t tag[13];
    tag[0] = S_TAG_DELIVER;
    memcpy(tag + 1, &deliver->id, 8);
    memcpy(tag + 9, &deliver->attempt, 4);
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, tag, sizeof tag);
    zmsg_append(msg, &deliver->body);
    s_to_app(self, &msg);
}

//  The broker turned us away. "not registered" (it restarted, or expired
//  us) and "busy" mean register again; anything else is final.
static void
s_on_disconnect(s_engine_t *self, zm_proto_t *command)
{
    if (self->left) {
        zm_link_drop(&self->link);
        return;                                 //  leaving: nothing to register again for
    }
    bool again = (command->status == ZM_STATUS_MALFORMED
                  && strcmp(command->reason, "not registered") == 0)
                 || command->status == ZM_STATUS_BUSY || command->status == ZM_STATUS_OK;
    if (zm_link_disconnected(&self->link, command, !again) == ZMESH_OK)
        return;
    self->refused = true;
    uint8_t tag[5];
    tag[0] = S_TAG_REFUSED;
    memcpy(tag + 1, &command->status, 4);
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, tag, sizeof tag);
    zmsg_addstr(msg, command->reason);
    s_to_app(self, &msg);
}

static bool
s_on_broker(void *engine, zm_proto_t *command)
{
    s_engine_t *self = engine;
    switch (command->cmd) {
    case ZM_CMD_DELIVER:
        zm_link_registered(&self->link);
        s_deliver(self, command);
        break;
    case ZM_CMD_HEARTBEAT:
        zm_link_registered(&self->link);
        break;
    case ZM_CMD_DISCONNECT:
        s_on_disconnect(self, command);
        break;
    default:
        zm_log_warning("consumer: unexpected %s from broker", zm_proto_cmd_name(command->cmd));
        break;
    }
    return true;
}

//  Reads what the application sent: acks, or $TERM.
static void
s_drain_pipe(s_engine_t *self)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    void *pipe = zsock_resolve(self->pipe);
    for (int i = 0; i < S_DRAIN_BATCH && !self->stopping; i++) {
        if (zmq_msg_recv(&msg, pipe, ZMQ_DONTWAIT) < 0)
            break;
        const uint8_t *data = zmq_msg_data(&msg);
        size_t size = zmq_msg_size(&msg);
        if (size == 9 && data[0] == S_TAG_ACK) {
            memcpy(&self->acks[self->ack_count++], data + 1, 8);
            if (self->ack_count == ZM_ACK_MAX)
                s_flush_acks(self);
        }
        else if (size == 9 && data[0] == S_TAG_RELEASE) {
            uint64_t id;
            memcpy(&id, data + 1, 8);
            s_add_release(self, id);
        }
        else if (size == 1 && data[0] == S_TAG_LEAVE) {
            s_flush_acks(self);                 //  acked before: they count as such
            s_release_unseen(self);
            self->left = true;
        }
        else if (size == 5 && memcmp(data, "$TERM", 5) == 0)
            self->stopping = true;
    }
    zmq_msg_close(&msg);
}

//  Heartbeats, notices a silent broker, registers again when it is time.
static void
s_on_clock(s_engine_t *self, int64_t now)
{
    if (self->refused)
        return;
    if (self->left && (!self->link.sock || zm_link_silent(&self->link, now)))
        return;                                 //  leaving: no new session
    if (zm_link_tick(&self->link, now))
        s_connect(self);
}

//  Milliseconds until s_on_clock has something to do; -1: nothing.
static long
s_wait_ms(const s_engine_t *self, int64_t now)
{
    //  As s_on_clock: refused, or left with no session to keep, nothing is
    //  ever due (a wait of 0 here would spin until the consumer is destroyed).
    if (self->refused
        || (self->left && (!self->link.sock || zm_link_silent(&self->link, now))))
        return -1;
    return zm_link_wait_ms(&self->link, now);
}

static void
s_msg_free(void **item_p)
{
    zmsg_destroy((zmsg_t **) item_p);
}

//  The engine thread.
static void
s_engine_main(zsock_t *pipe, void *args)
{
    //  Signals are for the application's thread: one taken here would not
    //  interrupt its recv.
    sigset_t signals;
    sigfillset(&signals);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    zmesh_consumer_t *consumer = args;
    s_engine_t self = {.consumer = consumer, .pipe = pipe};
    zm_link_init(&self.link, "consumer", consumer->endpoints, consumer->curve,
                 consumer->heartbeat_ms, consumer->liveness);
    self.link.reconnect_max_ms = ZM_DEALER_RECONNECT_MAX;      //  as the producer's sockets
    self.backlog = zlistx_new();
    zlistx_set_destructor(self.backlog, s_msg_free);
    zsock_signal(pipe, 0);
    s_connect(&self);
    while (!self.stopping) {
        bool backlog = zlistx_size(self.backlog) > 0;
        zsock_t *sock = self.link.sock;
        zmq_pollitem_t items[2] = {
            {zsock_resolve(pipe), 0, (short) (ZMQ_POLLIN | (backlog ? ZMQ_POLLOUT : 0)), 0},
            {sock ? zsock_resolve(sock) : NULL, 0, ZMQ_POLLIN, 0},
        };
        //  Signals end nothing here: the application decides when to stop.
        if (zmq_poll(items, sock ? 2 : 1, s_wait_ms(&self, zclock_mono())) < 0
            && errno == ETERM)
            break;
        s_drain_pipe(&self);
        zm_link_drain(&self.link, S_DRAIN_BATCH, s_on_broker, &self);
        s_flush_backlog(&self);
        s_flush_acks(&self);
        s_on_clock(&self, zclock_mono());
    }
    s_release_unseen(&self);                    //  first: our last acks free no credit
    s_flush_acks(&self);
    if (self.link.sock) {
        zm_proto_t leave;
        zm_proto_init(&leave);
        leave.cmd = ZM_CMD_DISCONNECT;
        leave.status = ZM_STATUS_OK;
        snprintf(leave.reason, sizeof leave.reason, "consumer leaving");
        zm_link_send(&self.link, &leave);
    }
    zsock_destroy(&self.link.sock);             //  lingers so that DISCONNECT goes out
    zlistx_destroy(&self.backlog);
    free(self.releases);
}

//  Hands the engine back the deliveries still in the pipe, which the
//  application never received: the broker gives them to another consumer
//  as they were, not as redeliveries.
static void
s_give_back(zmesh_consumer_t *self)
{
    while (zsock_events(self->engine) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(self->engine);
        if (!msg)
            break;
        zframe_t *tag = zmsg_first(msg);
        if (tag && zframe_size(tag) == 13 && zframe_data(tag)[0] == S_TAG_DELIVER) {
            uint8_t release[9];
            release[0] = S_TAG_RELEASE;
            memcpy(release + 1, zframe_data(tag) + 1, 8);
            zmq_send(zsock_resolve(self->engine), release, sizeof release, 0);
        }
        zmsg_destroy(&msg);
    }
}

void
zmesh_consumer_leave(zmesh_consumer_t *self)
{
    assert(self);
    if (!self->engine || self->left)
        return;
    s_give_back(self);
    uint8_t leave = S_TAG_LEAVE;
    zmq_send(zsock_resolve(self->engine), &leave, 1, 0);
    self->left = true;
}

void
zmesh_consumer_destroy(zmesh_consumer_t **self_p)
{
    assert(self_p);
    zmesh_consumer_t *self = *self_p;
    if (!self)
        return;
    if (self->engine)
        s_give_back(self);
    zactor_destroy(&self->engine);              //  $TERM: DISCONNECT, then the thread ends
    zm_endpoints_destroy(&self->endpoints);
    zmesh_curve_destroy(&self->curve);
    free(self);
    *self_p = NULL;
}

int
zmesh_consumer_ack(zmesh_consumer_t *self, uint64_t id)
{
    assert(self);
    if (id == 0)
        return ZMESH_EINVAL;
    if (!self->engine || self->refused)
        return ZMESH_OK;                        //  no session holds it
    uint8_t ack[9];
    ack[0] = S_TAG_ACK;
    memcpy(ack + 1, &id, 8);
    while (zmq_send(zsock_resolve(self->engine), ack, sizeof ack, 0) < 0) {
        if (errno != EINTR)
            return ZMESH_ESYS;
    }
    return ZMESH_OK;
}

//  Unpacks one message from the engine. Returns ZMESH_EAGAIN for nothing
//  useful (the caller waits on).
static int
s_from_engine(zmesh_consumer_t *self, zmsg_t *msg, zmesh_msg_t **msg_p,
              zmesh_delivery_t *delivery)
{
    zframe_t *tag = zmsg_first(msg);
    if (tag && zframe_size(tag) == 13 && zframe_data(tag)[0] == S_TAG_DELIVER
        && zmsg_size(msg) == 2) {
        zmesh_delivery_t meta;
        memcpy(&meta.id, zframe_data(tag) + 1, 8);
        memcpy(&meta.attempt, zframe_data(tag) + 9, 4);
        meta.redelivered = meta.attempt > 1;
        if (delivery)
            *delivery = meta;
        zframe_t *body = zmsg_last(msg);
        zmsg_remove(msg, body);
        *msg_p = zm_msg_adopt(&body);
        return ZMESH_OK;
    }
    if (tag && zframe_size(tag) == 5 && zframe_data(tag)[0] == S_TAG_REFUSED) {
        uint32_t status;
        memcpy(&status, zframe_data(tag) + 1, 4);
        char *reason = zframe_strdup(zmsg_next(msg));
        snprintf(self->error, sizeof self->error, "refused (%u): %s", status,
                 reason ? reason : "");
        free(reason);
        self->refused = status == ZM_STATUS_DENIED ? ZMESH_EDENIED : ZMESH_EPROTO;
        return self->refused;
    }
    return ZMESH_EAGAIN;
}

int
zmesh_consumer_recv(zmesh_consumer_t *self, int timeout_ms, zmesh_msg_t **msg_p,
                    zmesh_delivery_t *delivery)
{
    assert(self);
    assert(msg_p);
    if (zsys_interrupted || self->left)
        return ZMESH_ECLOSED;
    if (self->refused)
        return self->refused;
    if (!self->engine) {
        self->engine = zactor_new(s_engine_main, self);
        assert(self->engine);
    }
    int64_t until = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    while (true) {
        int64_t now = zclock_mono();
        long wait = until == INT64_MAX ? -1 : until > now ? (long) (until - now) : 0;
        zmq_pollitem_t item = {zsock_resolve(self->engine), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, wait) < 0) {
            //  A signal the application handles itself gives it control back.
            if (errno != EINTR)
                return ZMESH_ESYS;
            return zsys_interrupted ? ZMESH_ECLOSED : ZMESH_EAGAIN;
        }
        if (zsys_interrupted)
            return ZMESH_ECLOSED;
        if (item.revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv(self->engine);
            int rc = msg ? s_from_engine(self, msg, msg_p, delivery) : ZMESH_EAGAIN;
            zmsg_destroy(&msg);
            if (rc != ZMESH_EAGAIN)
                return rc;
        }
        else if (zclock_mono() >= until)
            return ZMESH_EAGAIN;
    }
}
