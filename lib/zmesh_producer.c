//  zmesh_producer - sends messages into one pipeline (ZMP.md 16.4) over a
//  DEALER to one broker of a list at a time. There is no background thread:
//  all the work happens inside send and flush, in a pump that sends what the
//  socket takes without blocking, reads every answer, and runs the timers
//  (send again from the oldest unaccepted message after a second without
//  news, probe a full pipeline every second, move to the next broker when
//  the one in use looks gone). The window (zm_window) keeps every message
//  until the broker accepted it, so nothing is lost on the way.
//
//  Each connection is a socket of its own, watched by a monitor: the broker
//  takes the first seq it sees on a connection as the expected one, so if
//  libzmq reconnected a socket silently, a newer message could reach the
//  broker first and older ones lost with the old connection would be
//  skipped. So when the connection drops, the socket is abandoned, and the
//  unaccepted messages go out again on a new one, renumbered from seq 1.
#include "zm_alloc.h"
#include "zm_dealer.h"
#include "zm_log.h"
#include "zm_pack.h"
#include "zm_secure.h"
#include "zm_window.h"
#include "zmesh.h"

#define S_RESEND_MS 1000        //  no news this long: send again from the oldest
#define S_UNANSWERED_MAX 2      //  resends without an answer before moving to the next broker
#define S_CONNECT_MS 3000       //  a connection not up this long: open another
#define S_CONNECT_LIST_MS 1000  //  the same, given a list of brokers to move through
#define S_BACKOFF_MIN 100       //  ms before a new socket after a lost connection
#define S_BACKOFF_MAX 2000
#define S_READ_BATCH 4096       //  answers read per pump, so sending is never starved
#define S_SEND_CHECK 256        //  messages sent between two looks at the monitor

struct zmesh_producer {
    zm_endpoints_t *endpoints;  //  owned: the brokers, tried in turn
    zmesh_curve_t *curve;       //  owned copy of the CURVE keys; NULL: plain connections
    char pipeline[ZM_NAME_MAX + 1];
    int mode;                   //  of sends whose flags name none
    int window_max;             //  unaccepted messages at most
    int timeout_ms;             //  of a blocking send in all; -1: no limit
    zm_window_t *window;        //  owned: the messages not settled yet
    zsock_t *sock;              //  owned DEALER, NULL between connections
    zsock_t *monitor;           //  owned PAIR: sock's DISCONNECTED events
    uint32_t connection;        //  counts the sockets opened
    int64_t opened_at;          //  ms: when sock was opened
    int unanswered;             //  resends since the last answer
    int64_t quiet_since;        //  ms: last answer or resend, for the resend timer
    int64_t open_at;            //  ms: when sock is NULL, when to open the next one
    int backoff;                //  ms: wait before the next socket after a loss
    bool refused;               //  REFUSE 503: wait for RESUME or the next probe
    uint64_t granted;           //  the last seq the last RESUME lets us send; 0: no limit
    bool connected;             //  the connection in use came up (monitor)
    int wait_mode;              //  the mode a blocking send waits for
    char error[ZM_REASON_MAX + 64];
};

zmesh_producer_t *
zmesh_producer_new(const char *endpoint, const char *pipeline, int *err_p)
{
    return zmesh_producer_new_secure(endpoint, pipeline, NULL, err_p);
}

zmesh_producer_t *
zmesh_producer_new_secure(const char *endpoint, const char *pipeline, const zmesh_curve_t *curve,
                          int *err_p)
{
    zm_endpoints_t *endpoints = zm_dealer_check(endpoint, pipeline, curve, err_p);
    if (!endpoints)
        return NULL;
    zmesh_producer_t *self = zm_alloc(sizeof *self);
    self->endpoints = endpoints;
    self->curve = zm_secure_dup(curve);
    snprintf(self->pipeline, sizeof self->pipeline, "%s", pipeline);
    self->mode = ZMESH_ACCEPTED;
    self->window_max = 1000;
    self->timeout_ms = -1;
    self->window = zm_window_new();
    self->backoff = S_BACKOFF_MIN;
    self->open_at = zclock_mono();
    return self;
}

static void
s_close(zmesh_producer_t *self)
{
    zm_dealer_abandon(&self->sock);             //  closes its monitor's end too
    zsock_destroy(&self->monitor);
}

void
zmesh_producer_destroy(zmesh_producer_t **self_p)
{
    assert(self_p);
    zmesh_producer_t *self = *self_p;
    if (!self)
        return;
    s_close(self);
    zm_window_destroy(&self->window);
    zm_endpoints_destroy(&self->endpoints);
    zmesh_curve_destroy(&self->curve);
    free(self);
    *self_p = NULL;
}

void
zmesh_producer_set_mode(zmesh_producer_t *self, int mode)
{
    assert(self);
    assert(mode >= ZMESH_QUEUED && mode <= ZMESH_PROCESSED);
    self->mode = mode;
}

void
zmesh_producer_set_window(zmesh_producer_t *self, int window)
{
    assert(self);
    assert(window >= 1 && window <= 100000);
    self->window_max = window;
}

void
zmesh_producer_set_timeout(zmesh_producer_t *self, int timeout_ms)
{
    assert(self);
    assert(timeout_ms >= -1);
    self->timeout_ms = timeout_ms;
}

size_t
zmesh_producer_pending(const zmesh_producer_t *self)
{
    assert(self);
    return zm_window_pending(self->window);
}

const char *
zmesh_producer_error(const zmesh_producer_t *self)
{
    assert(self);
    return self->error;
}

//  Opens the socket of a new connection, to the next broker of the list
//  (the first one the first time), with a monitor that reports its loss.
static void
s_open(zmesh_producer_t *self, int64_t now)
{
    const char *endpoint = self->connection == 0 ? zm_endpoints_current(self->endpoints)
                                                 : zm_endpoints_next(self->endpoints);
    self->connection++;
    self->sock = zm_dealer_open(endpoint, true, 0, ZM_DEALER_RECONNECT_MAX, self->curve);
    char name[96];
    snprintf(name, sizeof name, "inproc://zmesh-producer-%p-%u", (void *) self,
             self->connection);
    if (self->sock
        && zmq_socket_monitor(zsock_resolve(self->sock), name,
                              ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED)
               == 0) {
        self->monitor = zsock_new(ZMQ_PAIR);
        assert(self->monitor);
        if (zsock_connect(self->monitor, "%s", name) != 0)
            zsock_destroy(&self->monitor);
    }
    if (!self->sock || !self->monitor) {
        //  A name that no longer resolves, or out of file descriptors: try later.
        zm_log_warning("producer: cannot open a connection broker=%s", endpoint);
        s_close(self);
        self->open_at = now + S_BACKOFF_MAX;
        return;
    }
    self->connected = false;
    self->opened_at = now;
    self->quiet_since = now;
    self->unanswered = 0;
    zm_log_debug("producer: connecting pipeline=%s broker=%s connection=%u", self->pipeline,
                 endpoint, self->connection);
}

//  The connection in use is over: its socket goes, and the messages not
//  accepted go out again on the next one, renumbered.
static void
s_lose(zmesh_producer_t *self, const char *why, int backoff_ms)
{
    const char *hint = zm_secure_hint(self->curve);
    zm_log_notice("producer: connection lost pipeline=%s reason=\"%s\" unaccepted=%zu%s%s",
                  self->pipeline, why, zm_window_unaccepted(self->window), hint[0] ? "; " : "",
                  hint);
    s_close(self);
    zm_window_renumber(self->window);
    self->refused = false;
    self->granted = 0;                          //  a new link starts without a grant
    self->open_at = zclock_mono() + backoff_ms;
}

//  Reads the monitor's events; true if the connection dropped.
static bool
s_dropped(zmesh_producer_t *self)
{
    bool dropped = false;
    bool first = true;                          //  the next frame starts an event
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, zsock_resolve(self->monitor), ZMQ_DONTWAIT) >= 0) {
        uint16_t event = 0;
        if (first && zmq_msg_size(&frame) >= sizeof event)
            memcpy(&event, zmq_msg_data(&frame), sizeof event);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            self->connected = true;
        else if (event == ZMQ_EVENT_DISCONNECTED)
            dropped = true;
        first = !zmq_msg_more(&frame);
    }
    zmq_msg_close(&frame);
    return dropped;
}

//  A loss that may repeat (the broker restarting, turning us away): the
//  next socket waits, longer each time.
static void
s_lose_backoff(zmesh_producer_t *self, const char *why)
{
    s_lose(self, why, self->backoff);
    self->backoff = self->backoff * 2 > S_BACKOFF_MAX ? S_BACKOFF_MAX : self->backoff * 2;
}

static void
s_lose_dropped(zmesh_producer_t *self)
{
    s_lose_backoff(self, "disconnected");
}

static void
s_news(zmesh_producer_t *self, int64_t now)
{
    self->quiet_since = now;
    self->unanswered = 0;
    self->backoff = S_BACKOFF_MIN;
}

//  The reason text of a REFUSE body (a msgpack str), or "".
static void
s_reason(zframe_t *body, char *text, size_t text_size)
{
    zm_reader_t reader;
    const char *data;
    size_t size;
    text[0] = '\0';
    if (!body)
        return;
    zm_reader_init(&reader, zframe_data(body), zframe_size(body));
    if (zm_reader_str(&reader, &data, &size) && zm_reader_done(&reader))
        snprintf(text, text_size, "%.*s", (int) (size < ZM_REASON_MAX ? size : ZM_REASON_MAX),
                 data);
}

//  Reacts to one answer from the broker.
static void
s_on_answer(zmesh_producer_t *self, zm_proto_t *answer, int64_t now)
{
    char reason[ZM_REASON_MAX + 1];
    bool ours = strcmp(answer->service, self->pipeline) == 0;
    switch (answer->cmd) {
    case ZM_CMD_ACCEPT:
        if (ours) {
            zm_window_on_accept(self->window, answer->id);
            //  A probe past our grant was taken with no new grant before
            //  it: the broker is not pacing us (it forgot the link, or
            //  its RESUME was lost). Send freely until refused again.
            if (self->granted && answer->id > self->granted)
                self->granted = 0;
            s_news(self, now);
        }
        break;
    case ZM_CMD_REFUSE:
        if (ours) {
            s_reason(answer->body, reason, sizeof reason);
            if (zm_window_on_refuse(self->window, answer->id, answer->status, reason))
                self->refused = true;
            s_news(self, now);
        }
        break;
    case ZM_CMD_RESUME:
        if (ours) {
            //  Up to which seq we may send (0: no limit): the broker paces
            //  a full pipeline's producers with grants (ZMP.md 16.4). After
            //  a refusal, what followed the refused seq was skipped.
            if (self->refused)
                zm_window_rewind(self->window);
            self->refused = false;
            self->granted = answer->id;
            s_news(self, now);
        }
        break;
    case ZM_CMD_DONE:
        if (ours) {
            zm_window_on_done(self->window, answer->id, answer->status);
            s_news(self, now);
        }
        break;
    case ZM_CMD_DISCONNECT:
        s_lose_backoff(self, answer->reason);
        break;
    case ZM_CMD_REPLY:
        //  The broker judged a PUSH as a call it could not take: it does
        //  not speak pipelines, or our header is wrong. Say so; resends go on.
        zm_log_warning("producer: broker answered a PUSH with REPLY status=%u pipeline=%s",
                       answer->status, self->pipeline);
        break;
    default:
        break;                                  //  nothing else is for a producer
    }
}

//  Reads what the broker sent. The monitor is checked before each answer:
//  an answer read after the connection dropped may come from a new
//  connection that libzmq made behind our back, whose seqs mean nothing.
static void
s_read_answers(zmesh_producer_t *self)
{
    zm_proto_t answer;
    zm_proto_init(&answer);
    for (int i = 0; i < S_READ_BATCH && self->sock; i++) {
        if (s_dropped(self)) {
            s_lose_dropped(self);
            break;
        }
        if (!zm_dealer_recv(self->sock, &answer, "producer")) {
            if (!(zsock_events(self->sock) & ZMQ_POLLIN))
                break;                          //  else: a malformed one, dropped
            continue;
        }
        s_on_answer(self, &answer, zclock_mono());
        zm_proto_reset(&answer);
    }
    zm_proto_reset(&answer);
}

//  Sends the messages waiting, in order, as far as the socket takes them.
//  The monitor is read every so often on the way: once the connection
//  dropped, the rest must wait for the new one (libzmq reconnects after
//  100 ms at the earliest, so a drop is seen before that can happen).
static void
s_send_waiting(zmesh_producer_t *self, int64_t now)
{
    if (!zm_window_in_flight(self->window))
        self->quiet_since = now;                //  the resend timer starts with the first
    uint64_t seq;
    uint32_t flags;
    zframe_t *body;
    for (int sent = 0; zm_window_peek(self->window, &seq, &flags, &body)
                       && (!self->granted || seq <= self->granted);
         sent++) {
        if (sent % S_SEND_CHECK == 0 && s_dropped(self)) {
            s_lose_dropped(self);
            return;
        }
        zm_proto_t push;
        zm_proto_init(&push);
        push.cmd = ZM_CMD_PUSH;
        snprintf(push.service, sizeof push.service, "%s", self->pipeline);
        push.id = seq;
        push.flags = flags;
        int rc = zm_dealer_send(self->sock, &push, body);
        if (rc != ZMESH_OK) {
            if (rc != ZMESH_EAGAIN)
                zm_log_warning("producer: send failed pipeline=%s: %s", self->pipeline,
                               zmq_strerror(errno));
            break;
        }
        zm_window_sent(self->window);
    }
}

//  True while messages wait that only a RESUME, or a probe, lets out.
static bool
s_held_back(const zmesh_producer_t *self)
{
    if (self->refused)
        return true;
    uint64_t seq;
    uint32_t flags;
    zframe_t *body;
    return self->granted && zm_window_peek(self->window, &seq, &flags, &body)
           && seq > self->granted;
}

//  How long a connection may take to come up while messages wait. Given a
//  list, a broker that is not there costs a second, not three.
static int64_t
s_connect_ms(const zmesh_producer_t *self)
{
    return zm_endpoints_size(self->endpoints) > 1 ? S_CONNECT_LIST_MS : S_CONNECT_MS;
}

//  The resend, probe and failover timers. A broker is judged gone only by
//  resends it left unanswered, never by time alone: while the application
//  does not call send or flush, nothing is asked, and silence proves nothing.
static void
s_on_clock(zmesh_producer_t *self, int64_t now)
{
    if (!self->sock)
        return;
    if (!self->connected && zm_window_unaccepted(self->window) > 0
        && now - self->opened_at >= s_connect_ms(self)) {
        s_lose(self, "no connection", 0);
        return;
    }
    if ((s_held_back(self) || zm_window_in_flight(self->window))
        && now - self->quiet_since >= S_RESEND_MS) {
        if (self->unanswered >= S_UNANSWERED_MAX) {
            s_lose(self, "no answer from the broker", 0);
            return;
        }
        zm_log_debug("producer: sending again from the oldest pipeline=%s refused=%d",
                     self->pipeline, self->refused);
        self->unanswered++;
        zm_window_rewind(self->window);
        uint64_t seq;
        uint32_t flags;
        zframe_t *body;
        if (s_held_back(self) && zm_window_peek(self->window, &seq, &flags, &body))
            self->granted = seq;                //  a probe is one message
        self->refused = false;
        self->quiet_since = now;
    }
}

//  Does everything that can be done now without blocking.
static void
s_pump(zmesh_producer_t *self)
{
    if (!self->sock && zclock_mono() >= self->open_at)
        s_open(self, zclock_mono());
    if (self->sock)
        s_read_answers(self);
    int64_t now = zclock_mono();
    s_on_clock(self, now);
    if (!self->sock && now >= self->open_at)
        s_open(self, now);
    if (self->sock && !self->refused)
        s_send_waiting(self, now);
}

//  When the next timer of s_on_clock or s_pump is due.
static int64_t
s_next_timer(const zmesh_producer_t *self)
{
    if (!self->sock)
        return self->open_at;
    int64_t next = INT64_MAX;
    if (!self->connected && zm_window_unaccepted(self->window) > 0)
        next = self->opened_at + s_connect_ms(self);
    if ((s_held_back(self) || zm_window_in_flight(self->window))
        && self->quiet_since + S_RESEND_MS < next)
        next = self->quiet_since + S_RESEND_MS;
    return next;
}

//  Waits for socket events until the earlier of deadline and the next timer.
//  False if a signal interrupted the wait.
static bool
s_poll(zmesh_producer_t *self, int64_t deadline)
{
    int64_t until = s_next_timer(self);
    if (deadline < until)
        until = deadline;
    int64_t now = zclock_mono();
    long wait = until == INT64_MAX ? -1 : until > now ? (long) (until - now) : 0;
    uint64_t seq;
    uint32_t flags;
    zframe_t *body;
    bool waiting = !self->refused && zm_window_peek(self->window, &seq, &flags, &body)
                   && (!self->granted || seq <= self->granted);
    zmq_pollitem_t items[2] = {
        {self->sock ? zsock_resolve(self->sock) : NULL, 0,
         (short) (ZMQ_POLLIN | (waiting ? ZMQ_POLLOUT : 0)), 0},
        {self->monitor ? zsock_resolve(self->monitor) : NULL, 0, ZMQ_POLLIN, 0},
    };
    int rc = 0;
    if (self->sock)
        rc = zmq_poll(items, 2, wait);
    else if (wait != 0)
        rc = zmq_poll(NULL, 0, wait);           //  sleeps, and EINTR ends it
    return !(rc < 0 && errno == EINTR);
}

typedef bool(s_done_fn)(const zmesh_producer_t *self);

//  Pumps until done(self) holds or deadline passes. Returns ZMESH_OK,
//  ZMESH_ETIMEDOUT, or ZMESH_ECLOSED after SIGINT/SIGTERM under CZMQ's
//  signal handler. A signal that the application handles itself ends the
//  wait early, as ZMESH_ETIMEDOUT, so that the application gets control
//  back to look at its own flags: nothing is lost, the message is kept.
static int
s_wait(zmesh_producer_t *self, int64_t deadline, s_done_fn *done)
{
    while (true) {
        s_pump(self);
        if (done(self))
            return ZMESH_OK;
        if (zsys_interrupted)
            return ZMESH_ECLOSED;
        if (zclock_mono() >= deadline || !s_poll(self, deadline))
            return zsys_interrupted ? ZMESH_ECLOSED : ZMESH_ETIMEDOUT;
    }
}

static bool
s_has_room(const zmesh_producer_t *self)
{
    return zm_window_unaccepted(self->window) < (size_t) self->window_max;
}

static bool
s_mode_met(const zmesh_producer_t *self)
{
    zm_window_stage_t stage = zm_window_watched(self->window, NULL);
    if (stage == ZM_WINDOW_SETTLED)
        return true;
    switch (self->wait_mode) {
    case ZMESH_QUEUED:
        return stage >= ZM_WINDOW_SENT;
    case ZMESH_ACCEPTED:
        return stage >= ZM_WINDOW_ACCEPTED;
    default:
        return false;
    }
}

static bool
s_all_settled(const zmesh_producer_t *self)
{
    return zm_window_pending(self->window) == 0;
}

//  Waits until the message just added met its mode; its outcome.
static int
s_wait_mode(zmesh_producer_t *self, int mode, int64_t deadline)
{
    self->wait_mode = mode;
    int rc = s_wait(self, deadline, s_mode_met);
    int outcome;
    if (rc == ZMESH_OK && zm_window_watched(self->window, &outcome) == ZM_WINDOW_SETTLED) {
        rc = outcome;
        if (rc != ZMESH_OK)
            snprintf(self->error, sizeof self->error, "%s", zm_window_error(self->window));
    }
    else if (rc == ZMESH_ETIMEDOUT)
        snprintf(self->error, sizeof self->error, "no %s receipt within the timeout",
                 mode == ZMESH_QUEUED ? "socket took the message" : mode == ZMESH_ACCEPTED
                                                                       ? "ACCEPT"
                                                                       : "DONE");
    zm_window_watch(self->window, 0);
    return rc;
}

int
zmesh_producer_send(zmesh_producer_t *self, const void *data, size_t size, int flags)
{
    assert(self);
    assert(data || size == 0);
    int mode = flags & ZMESH_MODE_MASK ? flags & ZMESH_MODE_MASK : self->mode;
    assert(mode >= ZMESH_QUEUED && mode <= ZMESH_PROCESSED);
    size_t max_body = zm_max_body_default();
    if (size > ZM_DEALER_BODY_MAX || size > max_body) {
        //  Checked here: the broker would refuse it, or libzmq would drop the connection.
        snprintf(self->error, sizeof self->error,
                 "the message is %zu bytes, over the limit of %zu (ZMESH_MAX_BODY, which must "
                 "match the broker's --max-body)", size, max_body);
        return ZMESH_ETOOBIG;
    }
    if (zm_pack_check(data, size, 0) != ZMESH_OK)
        return ZMESH_EINVAL;
    int64_t now = zclock_mono();
    int64_t deadline = (flags & ZMESH_DONTWAIT) || self->timeout_ms == 0 ? now
                       : self->timeout_ms < 0                         ? INT64_MAX
                                                                      : now + self->timeout_ms;
    int rc = s_wait(self, deadline, s_has_room);
    if (rc != ZMESH_OK) {
        if (rc == ZMESH_ETIMEDOUT)
            snprintf(self->error, sizeof self->error, "no room came in the window of %d messages",
                     self->window_max);
        return rc == ZMESH_ETIMEDOUT ? ZMESH_EAGAIN : rc;
    }
    zframe_t *body = zframe_new(data, size);
    uint64_t token = zm_window_add(self->window, &body, mode);
    if (flags & (ZMESH_ASYNC | ZMESH_DONTWAIT)) {
        s_pump(self);
        return ZMESH_OK;
    }
    zm_window_watch(self->window, token);
    return s_wait_mode(self, mode, deadline);
}

int
zmesh_producer_flush(zmesh_producer_t *self, int timeout_ms)
{
    assert(self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    int rc = s_wait(self, deadline, s_all_settled);
    int failure = zm_window_take_failure(self->window);
    if (failure != ZMESH_OK) {
        snprintf(self->error, sizeof self->error, "%s", zm_window_error(self->window));
        return failure;
    }
    if (rc == ZMESH_ETIMEDOUT)
        snprintf(self->error, sizeof self->error, "%zu messages still pending",
                 zm_window_pending(self->window));
    return rc;
}
