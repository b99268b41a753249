//  zmesh_replica - one replica of a replicated service on the wire (ZMP.md
//  section 20): the thread that calls zmesh_replica_run owns one DEALER to
//  the broker, joins with the last write it holds, applies the broker's
//  numbered writes through zm_replica and acknowledges them only once they
//  are durable, answers reads, and sends or installs snapshots for catch-up.
//  Its connection to the broker (heartbeats, reconnects and their backoff)
//  is zm_link's, as the worker's is. Ordering, exactly-once and the disk are
//  zm_replica's: this file only moves messages, batches writes and decides
//  when to ask for what it misses.
#include "zm_alloc.h"
#include "zm_dealer.h"
#include "zm_link.h"
#include "zm_log.h"
#include "zm_msg.h"
#include "zm_proto.h"
#include "zm_random.h"
#include "zm_replica.h"
#include "zm_secure.h"
#include "zm_wake.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_BATCH_MAX 256         //  messages read before one group commit
#define S_LOCK_NAME "lock"      //  the file in the data directory that one replica locks; it
                                //  holds the replica's id too

struct zmesh_replica {
    zm_endpoints_t *endpoints;  //  owned: the brokers, tried in turn on reconnects
    char *service;              //  owned
    zmesh_curve_t *curve;       //  owned copy of the CURVE keys; NULL: plain connections
    int replicas;               //  JOIN: the service's replication factor
    int quorum;                 //  JOIN: its write quorum (0: majority)
    char *data_dir;             //  owned; NULL: state in memory only
    int lock_fd;                //  holds the data directory's lock; -1 without one
    zm_replica_t *replica;      //  owned: the state, its order and its log
    int heartbeat_ms;
    int liveness;
    zm_wake_t wake;             //  owned: zmesh_replica_stop's request to the loop
    bool failed;                //  a disk error: memory is ahead of disk, never serve again
    uint64_t id;                //  JOIN: this replica's id, random per process, so that the
                                //  broker takes a new connection of it for the same replica
    char error[ZM_REASON_MAX + 1];
};

//  A snapshot on its way out, in chunks, as the socket takes them.
typedef struct {
    bool active;
    uint64_t token;             //  the broker's SYNC
    uint64_t epoch, seq;        //  the state's at the snapshot
    uint8_t *data;              //  owned
    size_t size;
    size_t offset;              //  bytes already sent
    uint32_t index;             //  next chunk
} s_outgoing_t;

//  A snapshot on its way in: the chunks of one token, in order.
typedef struct {
    bool active;
    uint64_t token;
    uint32_t next;              //  the index expected next
    zchunk_t *data;             //  owned: the bytes so far
} s_incoming_t;

//  SYNCs held while a snapshot is being sent: the broker asks one donor for
//  each joiner, so several can come at once (one per other member at most).
#define S_SYNC_WAITING 16

//  State of one zmesh_replica_run.
typedef struct {
    zmesh_replica_t *owner;     //  borrowed
    zm_replica_t *replica;      //  borrowed from owner
    zm_link_t link;             //  the connection to the broker, its session and timing
    int rc;                     //  what run returns
    bool dirty;                 //  writes applied since the last zm_replica_sync
    zlistx_t *outbox;           //  owned zmsg_t: answers held until the writes are durable,
                                //  or until the socket takes them
    bool missing_sent;          //  MISSING went for the state below: not again for it
    bool lost_snapshot;         //  a snapshot the broker sent could not be installed: the
                                //  writes after it must not apply on the old state
    uint64_t missing_epoch, missing_seq;
    s_outgoing_t outgoing;
    uint64_t waiting[S_SYNC_WAITING];   //  SYNC tokens after outgoing's, oldest first
    size_t waiting_count;
    s_incoming_t incoming;
} s_engine_t;

static void
s_msg_destroy(void **item_p)
{
    zmsg_destroy((zmsg_t **) item_p);
}

//  The replica's id, kept in the locked file of its data directory (drawn
//  and synced the first time): a replica that restarts from its directory
//  is the same replica to the broker, which then ends its old session
//  rather than count it twice. Without a directory, or if the file cannot
//  hold it, the id is drawn per process.
static uint64_t
s_stored_id(int fd, const void *salt)
{
    char text[32] = "";
    ssize_t size = pread(fd, text, sizeof text - 1, 0);
    char *end = NULL;
    unsigned long long value = size > 0 ? strtoull(text, &end, 16) : 0;
    if (size == 17 && end == text + 16 && *end == '\n' && value > 0)
        return (uint64_t) value;
    uint64_t id = zm_random_id(salt);
    int length = snprintf(text, sizeof text, "%016" PRIx64 "\n", id);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t) length, 0) != length
        || fsync(fd) != 0)
        zm_log_warning("replica: cannot keep its id in the data directory: %s", strerror(errno));
    return id;
}

//  Takes the data directory's lock: two replicas writing one log would
//  interleave their records and both be lost.
static int
s_lock_dir(const char *dir, char *error, size_t error_size)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(error, error_size, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t size = strlen(dir) + sizeof "/" S_LOCK_NAME;
    char *path = zm_alloc(size);
    snprintf(path, size, "%s/" S_LOCK_NAME, dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0) {
        snprintf(error, error_size, "cannot use %s: %s", dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(error, error_size, "%s is in use by another replica (%s)", dir,
                 errno == EWOULDBLOCK ? "locked" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

//  Logs what opening the data directory found.
static void
s_log_open(const zmesh_replica_t *self, const zm_replog_report_t *report)
{
    if (!self->data_dir) {
        zm_log_info("replica: no data directory service=%s: the state lives in memory, a "
                    "restart catches up from the other replicas", self->service);
        return;
    }
    if (report->damaged && report->torn_tail)
        zm_log_notice("replica: log ended in a torn record, cut off service=%s dir=%s "
                      "seq=%" PRIu64 " reason=\"%s\"", self->service, self->data_dir,
                      report->last_seq, report->reason);
    else if (report->damaged)
        zm_log_warning("replica: damage found on open service=%s dir=%s reason=\"%s\" "
                       "kept_seq=%" PRIu64 ": the rest comes from the other replicas",
                       self->service, self->data_dir, report->reason, report->last_seq);
    zm_log_info("replica: opened service=%s dir=%s snapshot_seq=%" PRIu64 " records=%zu "
                "epoch=%" PRIu64 " seq=%" PRIu64, self->service, self->data_dir,
                report->snapshot_seq, report->records, zm_replica_epoch(self->replica),
                zm_replica_seq(self->replica));
}

zmesh_replica_t *
zmesh_replica_new(const char *endpoint, const char *service, const zmesh_state_t *state,
                  int replicas, int quorum, const char *data_dir, int *err_p)
{
    return zmesh_replica_new_secure(endpoint, service, state, replicas, quorum, data_dir, NULL,
                                    err_p);
}

zmesh_replica_t *
zmesh_replica_new_secure(const char *endpoint, const char *service, const zmesh_state_t *state,
                         int replicas, int quorum, const char *data_dir,
                         const zmesh_curve_t *curve, int *err_p)
{
    assert(state && state->handle && state->snapshot && state->restore);
    int err = ZMESH_OK;
    zm_endpoints_t *endpoints = NULL;
    if (replicas < 1 || replicas > ZM_REPLICAS_MAX || quorum < 0 || quorum > replicas
        || (data_dir && !data_dir[0]))
        err = ZMESH_EINVAL;
    else
        endpoints = zm_dealer_check(endpoint, service, curve, &err);
    char error[512] = "";
    int lock_fd = -1;
    if (!err && data_dir && (lock_fd = s_lock_dir(data_dir, error, sizeof error)) < 0)
        err = ZMESH_ESYS;
    zm_replog_report_t report;
    zm_replica_t *replica = NULL;
    if (!err) {
        replica = zm_replica_new(state, data_dir, &report, error, sizeof error);
        if (!replica)
            err = ZMESH_ESYS;
    }
    zm_wake_t wake = {.fd = {-1, -1}};
    if (!err && zm_wake_open(&wake) != ZMESH_OK) {
        snprintf(error, sizeof error, "pipe: %s", strerror(errno));
        err = ZMESH_ESYS;
    }
    if (err_p)
        *err_p = err;
    if (err) {
        if (error[0])
            zm_log_error("replica: cannot start service=%s: %s", service ? service : "",
                         error);
        zm_replica_destroy(&replica);
        if (lock_fd >= 0)
            close(lock_fd);
        zm_endpoints_destroy(&endpoints);
        return NULL;
    }
    zmesh_replica_t *self = zm_alloc(sizeof *self);
    self->endpoints = endpoints;
    self->service = zm_strdup(service);
    self->curve = zm_secure_dup(curve);
    self->replicas = replicas;
    self->quorum = quorum;
    self->id = lock_fd >= 0 ? s_stored_id(lock_fd, self) : zm_random_id(self);
    self->data_dir = data_dir ? zm_strdup(data_dir) : NULL;
    self->lock_fd = lock_fd;
    self->replica = replica;
    self->heartbeat_ms = 1000;
    self->liveness = 3;
    self->wake = wake;
    s_log_open(self, &report);
    return self;
}

void
zmesh_replica_destroy(zmesh_replica_t **self_p)
{
    assert(self_p);
    zmesh_replica_t *self = *self_p;
    if (!self)
        return;
    zm_replica_destroy(&self->replica);
    if (self->lock_fd >= 0)
        close(self->lock_fd);           //  after the log is closed: then the next may open it
    zm_wake_close(&self->wake);
    zm_endpoints_destroy(&self->endpoints);
    zmesh_curve_destroy(&self->curve);
    free(self->data_dir);
    free(self->service);
    free(self);
    *self_p = NULL;
}

void
zmesh_replica_set_heartbeat(zmesh_replica_t *self, int interval_ms, int liveness)
{
    assert(self);
    assert(interval_ms >= ZM_HEARTBEAT_MIN && interval_ms <= ZM_HEARTBEAT_MAX);
    assert(liveness >= ZM_LIVENESS_MIN && liveness <= ZM_LIVENESS_MAX);
    self->heartbeat_ms = interval_ms;
    self->liveness = liveness;
}

void
zmesh_replica_stop(zmesh_replica_t *self)
{
    zm_wake_request(&self->wake);       //  async-signal-safe
}

const char *
zmesh_replica_error(const zmesh_replica_t *self)
{
    assert(self);
    return self->error;
}

//  Stops serving for good: memory may now be ahead of the disk, so nothing
//  more may be acknowledged, and the answers waiting are dropped.
static void
s_fail_disk(s_engine_t *self, const char *what, int saved_errno)
{
    zmesh_replica_t *owner = self->owner;
    snprintf(owner->error, sizeof owner->error, "disk error: %s in %s: %s", what,
             owner->data_dir ? owner->data_dir : "(memory)", strerror(saved_errno));
    zm_log_error("replica: stopping service=%s: %s; nothing more is acknowledged, restart it",
                 owner->service, owner->error);
    owner->failed = true;
    self->rc = ZMESH_ESYS;
    zlistx_purge(self->outbox);
}

//  Makes the writes applied so far durable. False after a disk error.
static bool
s_commit(s_engine_t *self)
{
    if (!self->dirty || self->rc != ZMESH_OK)
        return self->rc == ZMESH_OK;
    self->dirty = false;
    if (zm_replica_sync(self->replica) != ZMESH_OK) {
        s_fail_disk(self, "syncing the log", errno);
        return false;
    }
    return true;
}

//  Sends msg now; false (msg dropped) if the socket would not take it.
static bool
s_send_msg(s_engine_t *self, zmsg_t **msg_p)
{
    //  SNDTIMEO is 0: a full queue to a dead or stuck broker refuses at once.
    int rc = zmsg_send(msg_p, self->link.sock);
    zmsg_destroy(msg_p);
    if (rc == 0)
        self->link.last_sent = zclock_mono();
    return rc == 0;
}

//  Queues command to go once the writes before it are durable.
static void
s_queue(s_engine_t *self, zm_proto_t *command)
{
    zlistx_add_end(self->outbox, zm_proto_encode(command));
}

//  Sends what the outbox holds, in order, while the socket takes it. An
//  APPLIED must never be dropped (the broker would see a hole in the
//  sequence): what does not fit waits, and the loop reads nothing more from
//  the broker until it went, so a slow broker slows its writes down. A dead
//  one is noticed by its silence.
static void
s_flush(s_engine_t *self)
{
    zmsg_t *msg;
    while (self->link.sock && (msg = zlistx_detach(self->outbox, NULL))) {
        if (zmsg_send(&msg, self->link.sock) != 0) {
            zlistx_add_start(self->outbox, msg);
            break;
        }
        self->link.last_sent = zclock_mono();
    }
}

static void
s_drop_transfers(s_engine_t *self)
{
    free(self->outgoing.data);
    memset(&self->outgoing, 0, sizeof self->outgoing);
    self->waiting_count = 0;
    zchunk_destroy(&self->incoming.data);
    memset(&self->incoming, 0, sizeof self->incoming);
}

//  Opens a new connection, to the next broker of the list, and joins with
//  the last write held. What the old connection still had to send belongs
//  to a session the broker ends (no ghost JOIN or APPLIED after a
//  partition).
static void
s_connect(s_engine_t *self)
{
    zmesh_replica_t *owner = self->owner;
    if (!s_commit(self))
        return;
    zlistx_purge(self->outbox);
    s_drop_transfers(self);
    self->missing_sent = false;
    self->lost_snapshot = false;        //  the JOIN says where it stands
    if (zm_link_connect(&self->link) != ZMESH_OK) {
        snprintf(owner->error, sizeof owner->error, "cannot connect to %s",
                 zm_link_endpoint(&self->link));
        self->rc = ZMESH_EINVAL;
        return;
    }
    zm_proto_t join;
    zm_proto_init(&join);
    join.cmd = ZM_CMD_JOIN;
    snprintf(join.service, sizeof join.service, "%s", owner->service);
    join.heartbeat_ms = (uint32_t) owner->heartbeat_ms;
    join.liveness = (uint32_t) owner->liveness;
    join.replicas = (uint32_t) owner->replicas;
    join.quorum = (uint32_t) owner->quorum;
    join.epoch = zm_replica_epoch(self->replica);
    join.seq = zm_replica_seq(self->replica);
    join.id = owner->id;
    zm_link_send(&self->link, &join);
    zm_log_info("replica: JOIN service=%s replicas=%d quorum=%d epoch=%" PRIu64 " seq=%" PRIu64
                " session=%u broker=%s", owner->service, owner->replicas, owner->quorum,
                join.epoch, join.seq, self->link.session, zm_link_endpoint(&self->link));
}

//  Asks the broker for what this replica misses, once per state: a broker
//  that keeps sending later writes must not get a MISSING for each.
static void
s_ask_missing(s_engine_t *self, bool again)
{
    uint64_t epoch = zm_replica_epoch(self->replica);
    uint64_t seq = zm_replica_seq(self->replica);
    if (!again && self->missing_sent && self->missing_epoch == epoch && self->missing_seq == seq)
        return;
    self->missing_sent = true;
    self->missing_epoch = epoch;
    self->missing_seq = seq;
    zm_proto_t missing;
    zm_proto_init(&missing);
    missing.cmd = ZM_CMD_MISSING;
    missing.epoch = epoch;
    missing.seq = seq;
    s_queue(self, &missing);
}

//  The body of an answer: the reply, or a reason when the handler gave none,
//  or one the broker would refuse as too big.
static zframe_t *
s_answer_body(zm_replica_answer_t *answer, uint32_t *status_p)
{
    *status_p = answer->status == ZMESH_OK ? ZM_STATUS_OK : ZM_STATUS_HANDLER_ERROR;
    zframe_t *body = answer->reply ? zm_msg_release(&answer->reply) : NULL;
    if (body && zframe_size(body) > zm_max_body_default()) {
        zframe_destroy(&body);
        body = zm_proto_reason_frame("the reply is over the size limit (ZMESH_MAX_BODY)");
        *status_p = ZM_STATUS_HANDLER_ERROR;
    }
    if (!body && *status_p != ZM_STATUS_OK)
        body = zm_proto_reason_frame("the handler failed without a reason");
    return body;                            //  NULL: the codec sends nil
}

static void
s_on_write(s_engine_t *self, zm_proto_t *command)
{
    const void *data = command->body ? zframe_data(command->body) : NULL;
    size_t size = command->body ? zframe_size(command->body) : 0;
    uint64_t epoch = zm_replica_epoch(self->replica);
    uint64_t seq = zm_replica_seq(self->replica);
    if (self->lost_snapshot) {
        //  The broker takes us to hold the snapshot it relayed: what follows it
        //  must not apply to the state we kept, even where the seqs would fit.
        s_ask_missing(self, false);
        return;
    }
    if (command->epoch == epoch && command->seq <= seq) {
        //  Already applied: a resend that crossed the original. Asking for more
        //  here would make the broker resend again, round and round.
        zm_log_debug("replica: WRITE already applied epoch=%" PRIu64 " seq=%" PRIu64,
                     command->epoch, command->seq);
        return;
    }
    zm_replica_answer_t answer;
    int rc = zm_replica_write(self->replica, command->epoch, command->seq, command->id,
                              command->kind == ZM_WRITE_KIND_QUORUM_READ, data, size, &answer);
    if (rc == ZMESH_EINVAL) {
        zm_log_debug("replica: gap at WRITE epoch=%" PRIu64 " seq=%" PRIu64 " holding epoch=%"
                     PRIu64 " seq=%" PRIu64, command->epoch, command->seq, epoch, seq);
        s_ask_missing(self, false);
        return;
    }
    if (rc != ZMESH_OK) {
        s_fail_disk(self, "appending to the log", errno);
        return;
    }
    self->dirty = true;
    zm_log_debug("replica: applied epoch=%" PRIu64 " seq=%" PRIu64 " id=%" PRIu64 "%s",
                 command->epoch, command->seq, command->id,
                 answer.duplicate ? " (a retry: first answer again)" : "");
    zm_proto_t applied;
    zm_proto_init(&applied);
    applied.cmd = ZM_CMD_APPLIED;
    applied.epoch = command->epoch;
    applied.seq = command->seq;
    applied.body = s_answer_body(&answer, &applied.status);
    s_queue(self, &applied);
}

static void
s_on_request(s_engine_t *self, zm_proto_t *command)
{
    zm_replica_answer_t answer;
    zm_replica_read(self->replica, command->body ? zframe_data(command->body) : NULL,
                    command->body ? zframe_size(command->body) : 0, &answer);
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = command->id;
    reply.body = s_answer_body(&answer, &reply.status);
    s_queue(self, &reply);      //  after the writes it may have seen are durable
}

//  Starts sending the state as it is now for SYNC token, in chunks once the
//  writes in it are durable.
static void
s_start_snapshot(s_engine_t *self, uint64_t token)
{
    void *data;
    size_t size;
    zm_replica_snapshot(self->replica, &data, &size);
    self->outgoing = (s_outgoing_t){
        .active = true,
        .token = token,
        .epoch = zm_replica_epoch(self->replica),
        .seq = zm_replica_seq(self->replica),
        .data = data,
        .size = size,
    };
    zm_log_info("replica: sending snapshot token=%" PRIu64 " epoch=%" PRIu64 " seq=%" PRIu64
                " bytes=%zu", token, self->outgoing.epoch, self->outgoing.seq, size);
}

//  SYNC: a snapshot for one joiner. Each token is a different joiner, so one
//  that comes while another snapshot is being sent waits for it to end: the
//  broker relays each token's chunks to its own joiner and waits for them.
static void
s_on_sync(s_engine_t *self, zm_proto_t *command)
{
    if (!self->outgoing.active) {
        s_start_snapshot(self, command->id);
        return;
    }
    if (command->id == self->outgoing.token)
        return;
    for (size_t index = 0; index < self->waiting_count; index++)
        if (self->waiting[index] == command->id)
            return;
    if (self->waiting_count == S_SYNC_WAITING) {
        zm_log_warning("replica: too many SYNCs at once, token=%" PRIu64 " dropped",
                       self->waiting[0]);
        memmove(self->waiting, self->waiting + 1,
                (S_SYNC_WAITING - 1) * sizeof self->waiting[0]);
        self->waiting_count--;
    }
    self->waiting[self->waiting_count++] = command->id;
    zm_log_info("replica: SYNC token=%" PRIu64 " waits for the snapshot of token=%" PRIu64,
                command->id, self->outgoing.token);
}

//  A chunk body: one MessagePack bin. True with its bytes borrowed.
static bool
s_read_bin(zframe_t *frame, const uint8_t **data_p, size_t *size_p)
{
    const uint8_t *bytes = frame ? zframe_data(frame) : NULL;
    size_t size = frame ? zframe_size(frame) : 0;
    size_t header = size < 1              ? 0
                    : bytes[0] == 0xc4 ? 2
                    : bytes[0] == 0xc5 ? 3
                    : bytes[0] == 0xc6 ? 5
                                       : 0;
    if (header == 0 || size < header)
        return false;
    size_t length = 0;
    for (size_t i = 1; i < header; i++)
        length = length << 8 | bytes[i];
    if (length != size - header)
        return false;
    *data_p = bytes + header;
    *size_p = length;
    return true;
}

//  Builds a chunk body: bytes as a MessagePack bin.
static zframe_t *
s_bin_frame(const uint8_t *data, size_t size)
{
    size_t header = size <= 0xff ? 2 : size <= 0xffff ? 3 : 5;
    zframe_t *frame = zframe_new(NULL, header + size);
    uint8_t *bytes = zframe_data(frame);
    bytes[0] = header == 2 ? 0xc4 : header == 3 ? 0xc5 : 0xc6;
    for (size_t i = 1; i < header; i++)
        bytes[i] = (uint8_t) (size >> (8 * (header - 1 - i)));
    if (size)
        memcpy(bytes + header, data, size);
    return frame;
}

static void
s_install(s_engine_t *self, uint64_t token)
{
    zchunk_t *data = self->incoming.data;
    self->incoming.data = NULL;
    self->incoming.active = false;
    if (!s_commit(self)) {
        zchunk_destroy(&data);
        return;
    }
    int rc = zm_replica_install(self->replica, zchunk_data(data), zchunk_size(data));
    int saved_errno = errno;
    if (rc == ZMESH_OK) {
        self->missing_sent = false;         //  a new state: a later gap is a new one
        self->lost_snapshot = false;
        zm_log_info("replica: catch-up installed service=%s token=%" PRIu64 " epoch=%" PRIu64
                    " seq=%" PRIu64 " bytes=%zu", self->owner->service, token,
                    zm_replica_epoch(self->replica), zm_replica_seq(self->replica),
                    zchunk_size(data));
    }
    else if (rc == ZMESH_EINVAL) {
        zm_log_warning("replica: snapshot token=%" PRIu64 " bytes=%zu is not a state of this "
                       "service: dropped, asking again", token, zchunk_size(data));
        self->lost_snapshot = true;
        s_ask_missing(self, true);
    }
    else
        s_fail_disk(self, "writing the snapshot", saved_errno);
    zchunk_destroy(&data);
}

//  SNAPSHOT from the broker: a chunk of another replica's state.
static void
s_on_snapshot(s_engine_t *self, zm_proto_t *command)
{
    s_incoming_t *incoming = &self->incoming;
    const uint8_t *bytes = NULL;
    size_t size = 0;
    const char *problem = NULL;
    if (!s_read_bin(command->body, &bytes, &size) || size > ZM_SNAPSHOT_CHUNK)
        problem = "the chunk is not a bin of at most 64 KiB";
    else if (command->index == 0) {
        if (incoming->active)
            zm_log_notice("replica: snapshot token=%" PRIu64 " restarts with token=%" PRIu64,
                          incoming->token, command->id);
        zchunk_destroy(&incoming->data);
        *incoming = (s_incoming_t){.active = true, .token = command->id, .next = 0,
                                   .data = zchunk_new(NULL, 0)};
    }
    else if (!incoming->active || command->id != incoming->token
             || command->index != incoming->next)
        problem = "chunk out of order";
    if (!problem && zchunk_size(incoming->data) + size > ZM_REPLOG_SNAPSHOT_MAX)
        problem = "the snapshot is over 1 GiB";
    if (problem) {
        zm_log_warning("replica: SNAPSHOT dropped token=%" PRIu64 " index=%u: %s", command->id,
                       command->index, problem);
        zchunk_destroy(&incoming->data);
        memset(incoming, 0, sizeof *incoming);
        self->lost_snapshot = true;         //  and the broker asked for another
        s_ask_missing(self, true);
        return;
    }
    zchunk_extend(incoming->data, bytes, size);
    incoming->next++;
    if (!command->more)
        s_install(self, command->id);
}

static void
s_on_disconnect(s_engine_t *self, zm_proto_t *command)
{
    zmesh_replica_t *owner = self->owner;
    snprintf(owner->error, sizeof owner->error, "%s", command->reason);
    zlistx_purge(self->outbox);
    s_drop_transfers(self);
    //  Not final (a broker restart, "not registered", or a kick): join again.
    int rc = zm_link_disconnected(&self->link, command, zm_link_final(command->status));
    if (rc != ZMESH_OK)
        self->rc = rc;
}

//  Reacts to one command from the broker; false after a refusal or a disk
//  error.
static bool
s_on_broker(void *engine, zm_proto_t *command)
{
    s_engine_t *self = engine;
    if (command->cmd != ZM_CMD_DISCONNECT)
        zm_link_registered(&self->link);    //  the broker talks to us: we are joined
    switch (command->cmd) {
    case ZM_CMD_WRITE:
        s_on_write(self, command);
        break;
    case ZM_CMD_REQUEST:
        s_on_request(self, command);
        break;
    case ZM_CMD_SYNC:
        s_on_sync(self, command);
        break;
    case ZM_CMD_SNAPSHOT:
        s_on_snapshot(self, command);
        break;
    case ZM_CMD_HEARTBEAT:
        break;
    case ZM_CMD_DISCONNECT:
        s_on_disconnect(self, command);
        break;
    default:
        zm_log_warning("replica: unexpected %s from broker, dropped",
                       zm_proto_cmd_name(command->cmd));
        break;
    }
    return self->rc == ZMESH_OK;
}

//  Sends the snapshot being sent, chunk by chunk, while the socket takes them
//  and no answer waits: answers go first.
static void
s_pump(s_engine_t *self)
{
    s_outgoing_t *out = &self->outgoing;
    while (out->active && self->link.sock && zlistx_size(self->outbox) == 0
           && (zsock_events(self->link.sock) & ZMQ_POLLOUT)) {
        size_t size = out->size - out->offset;
        if (size > ZM_SNAPSHOT_CHUNK)
            size = ZM_SNAPSHOT_CHUNK;
        zm_proto_t chunk;
        zm_proto_init(&chunk);
        chunk.cmd = ZM_CMD_SNAPSHOT;
        chunk.id = out->token;
        chunk.epoch = out->epoch;
        chunk.seq = out->seq;
        chunk.index = out->index;
        chunk.more = out->offset + size < out->size;
        chunk.body = s_bin_frame(out->data + out->offset, size);
        zmsg_t *msg = zm_proto_encode(&chunk);
        if (!s_send_msg(self, &msg))
            break;                          //  full after all: wait for POLLOUT again
        out->offset += size;
        out->index++;
        if (out->offset == out->size) {
            zm_log_debug("replica: snapshot sent token=%" PRIu64 " chunks=%u", out->token,
                         out->index);
            free(out->data);
            memset(out, 0, sizeof *out);
            if (self->waiting_count > 0) {
                uint64_t token = self->waiting[0];
                self->waiting_count--;
                memmove(self->waiting, self->waiting + 1,
                        self->waiting_count * sizeof self->waiting[0]);
                s_start_snapshot(self, token);
            }
        }
    }
}

//  The event loop; returns when stopped, refused or failed.
static void
s_serve(s_engine_t *self)
{
    zmesh_replica_t *owner = self->owner;
    s_connect(self);
    while (self->rc == ZMESH_OK && !owner->wake.requested && !zsys_interrupted) {
        //  Answers waiting for room: no more input until they went.
        bool backlog = zlistx_size(self->outbox) > 0;
        short events = (short) ((backlog ? 0 : ZMQ_POLLIN)
                                | (backlog || self->outgoing.active ? ZMQ_POLLOUT : 0));
        zsock_t *sock = self->link.sock;
        zmq_pollitem_t items[2] = {
            {NULL, zm_wake_fd(&owner->wake), ZMQ_POLLIN, 0},
            {sock ? zsock_resolve(sock) : NULL, 0, events, 0},
        };
        if (zmq_poll(items, sock ? 2 : 1, zm_link_wait_ms(&self->link, zclock_mono())) < 0
            && errno != EINTR) {
            snprintf(owner->error, sizeof owner->error, "poll: %s", zmq_strerror(errno));
            self->rc = ZMESH_ESYS;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            zm_wake_drain(&owner->wake);
        //  Group commit: what is waiting is applied, made durable with one
        //  sync, and only then acknowledged.
        if (!backlog)
            zm_link_drain(&self->link, S_BATCH_MAX, s_on_broker, self);
        if (s_commit(self))
            s_flush(self);
        s_pump(self);
        //  Heartbeats, a silent broker, a reconnection due.
        if (self->rc == ZMESH_OK && zm_link_tick(&self->link, zclock_mono()))
            s_connect(self);
    }
}

int
zmesh_replica_run(zmesh_replica_t *self)
{
    assert(self);
    zm_wake_drain(&self->wake);
    if (self->failed)
        return ZMESH_ESYS;              //  error still says why
    self->error[0] = '\0';
    if (self->wake.requested) {
        self->wake.requested = 0;
        return ZMESH_OK;
    }
    s_engine_t engine = {.owner = self, .replica = self->replica};
    zm_link_init(&engine.link, "replica", self->endpoints, self->curve, self->heartbeat_ms,
                 self->liveness);
    engine.outbox = zlistx_new();
    zlistx_set_destructor(engine.outbox, s_msg_destroy);
    s_serve(&engine);
    if (engine.rc == ZMESH_OK && s_commit(&engine))
        s_flush(&engine);               //  what was applied and made durable, acknowledged
    if (engine.link.sock) {
        zm_proto_t bye;
        zm_proto_init(&bye);
        bye.cmd = ZM_CMD_DISCONNECT;
        bye.status = engine.rc == ZMESH_OK ? ZM_STATUS_OK : ZM_STATUS_HANDLER_ERROR;
        snprintf(bye.reason, sizeof bye.reason, "%s",
                 engine.rc == ZMESH_OK ? "replica stopping" : "replica failed");
        zm_link_send(&engine.link, &bye);
    }
    zsock_destroy(&engine.link.sock);   //  lingers so that DISCONNECT goes out
    s_drop_transfers(&engine);
    zlistx_destroy(&engine.outbox);
    self->wake.requested = 0;
    return engine.rc;
}
