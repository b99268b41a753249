//  test_replica_peer.c - the replica library (zmesh_replica, ZMP.md section 20) against a fake
//  broker: a ROUTER socket in the test that speaks ZMP/1 through the codec and sequences the
//  writes itself, so each case can send exactly what it needs, gaps and garbage included. A
//  real zmesh_replica with the kv state machine runs in a thread. Covered: the JOIN fields;
//  writes applied and acknowledged in order; a retried write id answered with its first answer
//  and applied once; one MISSING per gap; reads; snapshots sent in chunks on SYNC (also amid
//  writes) and installed from the broker, then writes going on after them; rejoining after
//  DISCONNECT and after silence with the last (epoch, seq); a data directory across restarts,
//  its lock, and a torn or corrupted log (the replica joins with the good prefix); a disk
//  error, which stops the replica without acknowledging the write; malformed input, after
//  which good input works.
#include "fake_broker.h"
#include "kv.h"
#include "zm_json.h"
#include "zm_proto.h"
#include "zm_replica.h"
#include "zmesh.h"

#include <czmq.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S_WAIT_MS 5000              //  the longest any expected message may take

typedef struct {
    zm_fake_broker_t *broker;       //  owned: the fake broker
    char dir[64];                   //  mkdtemp: data directories go under it
} s_fake_t;

//  A replica under test: kv behind a counter of the writes the handler really applied.
typedef struct {
    zw_kv_t *kv;
    atomic_int writes;              //  handle calls with write true
    zmesh_replica_t *replica;
    pthread_t thread;
    bool running;
    int rc;                         //  what run returned, once joined
} s_node_t;

static int
s_handle(void *arg, bool write, const void *body, size_t size, zmesh_msg_t **reply_p)
{
    s_node_t *node = arg;
    if (write)
        atomic_fetch_add(&node->writes, 1);
    return zw_kv_handle(node->kv, write, body, size, reply_p);
}

static void
s_snapshot(void *arg, void **data_p, size_t *size_p)
{
    zw_kv_snapshot(((s_node_t *) arg)->kv, data_p, size_p);
}

static bool
s_restore(void *arg, const void *data, size_t size)
{
    return zw_kv_restore(((s_node_t *) arg)->kv, data, size);
}

static void *
s_node_main(void *arg)
{
    s_node_t *node = arg;
    node->rc = zmesh_replica_run(node->replica);
    return NULL;
}

//  Creates a replica of "kv" (3 replicas, quorum 2) for the fake broker, with its state in
//  dir_name under the fake's directory (NULL: in memory), and runs it in a thread.
static s_node_t *
s_node_start(s_fake_t *fake, const char *dir_name, int heartbeat_ms)
{
    s_node_t *node = calloc(1, sizeof *node);
    assert_non_null(node);
    node->kv = zw_kv_new();
    zmesh_state_t state = {s_handle, s_snapshot, s_restore, node};
    char dir[128];
    if (dir_name)
        snprintf(dir, sizeof dir, "%s/%s", fake->dir, dir_name);
    int err = -99;
    node->replica = zmesh_replica_new(fake->broker->endpoint, "kv", &state, 3, 2,
                                      dir_name ? dir : NULL, &err);
    assert_non_null(node->replica);
    assert_int_equal(err, ZMESH_OK);
    zmesh_replica_set_heartbeat(node->replica, heartbeat_ms, 3);
    assert_int_equal(pthread_create(&node->thread, NULL, s_node_main, node), 0);
    node->running = true;
    return node;
}

//  Waits for run to return (it has been stopped, or failed by itself).
static int
s_node_join(s_node_t *node)
{
    if (node->running) {
        pthread_join(node->thread, NULL);
        node->running = false;
    }
    return node->rc;
}

static void
s_node_stop(s_node_t **node_p)
{
    s_node_t *node = *node_p;
    if (!node)
        return;
    if (node->running) {
        zmesh_replica_stop(node->replica);
        s_node_join(node);
    }
    zmesh_replica_destroy(&node->replica);
    zw_kv_destroy(&node->kv);
    free(node);
    *node_p = NULL;
}

static int
s_setup(void **state)
{
    s_fake_t *fake = calloc(1, sizeof *fake);
    assert_non_null(fake);
    fake->broker = zm_fake_broker_new();
    fake->broker->limits.check_body = true;
    snprintf(fake->dir, sizeof fake->dir, "%s/zm-replica-peer-XXXXXX",
             getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 32 ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(fake->dir));
    *state = fake;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fake_t *fake = *state;
    zm_fake_broker_destroy(&fake->broker);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", fake->dir);
    int rc = system(command);
    free(fake);
    return rc == 0 ? 0 : -1;
}

//  JSON to a MessagePack frame.
static zframe_t *
s_json_frame(const char *json)
{
    char *data;
    size_t size;
    assert_int_equal(zm_json_to_msgpack(json, strlen(json), &data, &size, NULL, 0), ZMESH_OK);
    zframe_t *frame = zframe_new(data, size);
    free(data);
    return frame;
}

//  A body as compact JSON, for comparisons (malloc'ed).
static char *
s_body_json(zframe_t *body)
{
    assert_non_null(body);
    char *text = NULL;
    assert_int_equal(zm_msgpack_to_json(zframe_data(body), zframe_size(body), &text, NULL, 0),
                     ZMESH_OK);
    return text;
}

static void
s_assert_body(zframe_t *body, const char *expected)
{
    char *text = s_body_json(body);
    if (strcmp(text, expected) != 0)
        fail_msg("body %s, expected %s", text, expected);
    free(text);
}

static void
s_send_write(s_fake_t *fake, zframe_t *routing, uint64_t epoch, uint64_t seq, uint64_t id,
             uint32_t kind, const char *json)
{
    zm_proto_t write;
    zm_proto_init(&write);
    write.cmd = ZM_CMD_WRITE;
    write.epoch = epoch;
    write.seq = seq;
    write.id = id;
    write.kind = kind;
    write.body = s_json_frame(json);
    zm_fake_broker_send(fake->broker, routing, &write);
}

static void
s_send_request(s_fake_t *fake, zframe_t *routing, uint64_t ticket, const char *json)
{
    zm_proto_t request;
    zm_proto_init(&request);
    request.cmd = ZM_CMD_REQUEST;
    request.id = ticket;
    snprintf(request.service, sizeof request.service, "kv");
    request.timeout_ms = 5000;
    request.attempt = 1;
    request.body = s_json_frame(json);
    zm_fake_broker_send(fake->broker, routing, &request);
}

//  Expects APPLIED(epoch, seq, status) with the body expected (JSON).
static void
s_expect_applied(s_fake_t *fake, uint64_t epoch, uint64_t seq, uint32_t status,
                 const char *expected)
{
    zm_proto_t applied;
    zframe_t *routing = zm_fake_broker_expect_next(fake->broker, ZM_CMD_APPLIED, &applied,
                                                   S_WAIT_MS);
    zframe_destroy(&routing);
    if (applied.epoch != epoch || applied.seq != seq)
        fail_msg("APPLIED epoch %" PRIu64 " seq %" PRIu64 ", expected %" PRIu64 " %" PRIu64,
                 applied.epoch, applied.seq, epoch, seq);
    assert_int_equal(applied.status, status);
    if (expected)
        s_assert_body(applied.body, expected);
    zm_proto_reset(&applied);
}

//  Expects a REPLY to ticket with status; returns its body as JSON (malloc'ed).
static char *
s_expect_reply(s_fake_t *fake, uint64_t ticket, uint32_t status)
{
    zm_proto_t reply;
    zframe_t *routing = zm_fake_broker_expect_next(fake->broker, ZM_CMD_REPLY, &reply, S_WAIT_MS);
    zframe_destroy(&routing);
    assert_true(reply.id == ticket);
    assert_int_equal(reply.status, status);
    char *text = s_body_json(reply.body);
    zm_proto_reset(&reply);
    return text;
}

//  Reads key through a REQUEST and checks the reply's JSON.
static void
s_check_read(s_fake_t *fake, zframe_t *routing, uint64_t ticket, const char *json,
             const char *expected)
{
    s_send_request(fake, routing, ticket, json);
    char *text = s_expect_reply(fake, ticket, ZM_STATUS_OK);
    if (strcmp(text, expected) != 0)
        fail_msg("read %s answered %s, expected %s", json, text, expected);
    free(text);
}

//  Expects a JOIN and checks its (epoch, seq); returns its sender.
static uint64_t s_last_join_id;     //  the replica id of the last JOIN expected

static zframe_t *
s_expect_join(s_fake_t *fake, uint64_t epoch, uint64_t seq)
{
    zm_proto_t join;
    zframe_t *routing = zm_fake_broker_expect_next(fake->broker, ZM_CMD_JOIN, &join, S_WAIT_MS);
    if (join.epoch != epoch || join.seq != seq)
        fail_msg("JOIN with epoch %" PRIu64 " seq %" PRIu64 ", expected %" PRIu64 " %" PRIu64,
                 join.epoch, join.seq, epoch, seq);
    assert_true(join.fields == 10 && join.id > 0 && join.id < (1ull << 63));
    s_last_join_id = join.id;
    zm_proto_reset(&join);
    return routing;
}

//  Stops node and takes its goodbye, so the next message the fake reads is the next one's.
static void
s_node_leave(s_fake_t *fake, s_node_t **node_p)
{
    s_node_stop(node_p);
    zm_proto_t bye;
    zframe_t *routing = zm_fake_broker_expect_next(fake->broker, ZM_CMD_DISCONNECT, &bye,
                                                   S_WAIT_MS);
    zm_proto_reset(&bye);
    zframe_destroy(&routing);
}

//  Puts k<seq> = seq for seq in first..last (write id 1000 + seq) and expects their APPLIEDs.
static void
s_put_range(s_fake_t *fake, zframe_t *routing, uint64_t epoch, uint64_t first, uint64_t last)
{
    char json[128];
    for (uint64_t seq = first; seq <= last; seq++) {
        snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k%" PRIu64 "\",\"value\":%" PRIu64
                 "}", seq, seq);
        s_send_write(fake, routing, epoch, seq, 1000 + seq, ZM_WRITE_KIND_WRITE, json);
    }
    for (uint64_t seq = first; seq <= last; seq++)
        s_expect_applied(fake, epoch, seq, ZM_STATUS_OK, "{\"ok\":true}");
}

//  The JOIN says who the replica is and what it holds.
static void
test_replica_join_fields(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 500);
    zm_proto_t join;
    zframe_t *routing = zm_fake_broker_expect_next(fake->broker, ZM_CMD_JOIN, &join, S_WAIT_MS);
    assert_string_equal(join.service, "kv");
    assert_int_equal(join.heartbeat_ms, 500);
    assert_int_equal(join.liveness, 3);
    assert_int_equal(join.replicas, 3);
    assert_int_equal(join.quorum, 2);
    assert_true(join.epoch == 0 && join.seq == 0);
    zm_proto_reset(&join);
    zframe_destroy(&routing);
    s_node_leave(fake, &node);      //  stopping says goodbye: the broker drops it at once
}

//  Writes come back as APPLIED in order with the handler's answers; reads (plain and through
//  the quorum) see them; a write sent as a read is refused with a text that says what to do.
static void
test_replica_writes_in_order(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    s_put_range(fake, routing, 7, 1, 20);           //  sent at once: group commits
    s_send_write(fake, routing, 7, 21, 2001, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"delete\",\"key\":\"k20\"}");
    s_expect_applied(fake, 7, 21, ZM_STATUS_OK, "{\"deleted\":true}");
    s_send_write(fake, routing, 7, 22, 2002, ZM_WRITE_KIND_QUORUM_READ,
                 "{\"op\":\"get\",\"key\":\"k3\"}");
    s_expect_applied(fake, 7, 22, ZM_STATUS_OK, "{\"found\":true,\"value\":3}");
    //  A write the handler refuses is still applied (in order), with status 500.
    s_send_write(fake, routing, 7, 23, 2003, ZM_WRITE_KIND_WRITE, "{\"op\":\"get\",\"key\":\"a\"}");
    s_expect_applied(fake, 7, 23, ZM_STATUS_HANDLER_ERROR, NULL);
    s_check_read(fake, routing, 1, "{\"op\":\"get\",\"key\":\"k19\"}",
                 "{\"found\":true,\"value\":19}");
    s_check_read(fake, routing, 2, "{\"op\":\"get\",\"key\":\"k20\"}", "{\"found\":false}");
    s_send_request(fake, routing, 3, "{\"op\":\"put\",\"key\":\"x\",\"value\":1}");
    char *text = s_expect_reply(fake, 3, ZM_STATUS_HANDLER_ERROR);
    if (!strstr(text, "--write"))
        fail_msg("a put sent as a read is refused with %s, which does not name --write", text);
    free(text);
    s_check_read(fake, routing, 4, "{\"op\":\"get\",\"key\":\"x\"}", "{\"found\":false}");
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  A retried write (same write id, a new seq) gets the first answer and is not applied again:
//  a compare-and-set applied twice would answer ok false the second time.
static void
test_replica_duplicate_write_once(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    const char *cas = "{\"op\":\"cas\",\"key\":\"c\",\"expected\":null,\"value\":1}";
    s_send_write(fake, routing, 3, 1, 42, ZM_WRITE_KIND_WRITE, cas);
    s_expect_applied(fake, 3, 1, ZM_STATUS_OK, "{\"ok\":true,\"value\":1}");
    s_send_write(fake, routing, 3, 2, 42, ZM_WRITE_KIND_WRITE, cas);
    s_expect_applied(fake, 3, 2, ZM_STATUS_OK, "{\"ok\":true,\"value\":1}");
    s_send_write(fake, routing, 3, 3, 43, ZM_WRITE_KIND_WRITE, cas);     //  another id: runs
    s_expect_applied(fake, 3, 3, ZM_STATUS_OK, "{\"ok\":false,\"value\":1}");
    assert_int_equal(atomic_load(&node->writes), 2);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  Receives until the REPLY to ticket (a marker: the replica answers in order), counting
//  MISSING (each must report epoch, seq) and failing on anything else.
static int
s_count_missing_until(s_fake_t *fake, uint64_t ticket, uint64_t epoch, uint64_t seq)
{
    int missing = 0;
    while (true) {
        zm_proto_t command;
        zframe_t *routing = NULL;
        if (!zm_fake_broker_recv(fake->broker, &command, &routing, S_WAIT_MS))
            fail_msg("no REPLY to the marker read within %d ms", S_WAIT_MS);
        zframe_destroy(&routing);
        zm_cmd_t cmd = command.cmd;
        uint64_t id = command.id;
        if (cmd == ZM_CMD_MISSING) {
            if (command.epoch != epoch || command.seq != seq)
                fail_msg("MISSING %" PRIu64 " %" PRIu64 ", expected %" PRIu64 " %" PRIu64,
                         command.epoch, command.seq, epoch, seq);
            missing++;
        }
        zm_proto_reset(&command);
        if (cmd == ZM_CMD_REPLY && id == ticket)
            return missing;
        if (cmd != ZM_CMD_MISSING)
            fail_msg("unexpected %s while counting MISSING", zm_proto_cmd_name(cmd));
    }
}

//  A gap is asked for once, however many writes come after it; a resend fills it; a copy of
//  a write already applied is dropped without asking; a new gap is asked for again.
static void
test_replica_gap_missing_once(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    s_put_range(fake, routing, 5, 1, 1);
    for (uint64_t seq = 3; seq <= 6; seq++)
        s_send_write(fake, routing, 5, seq, 1000 + seq, ZM_WRITE_KIND_WRITE,
                     "{\"op\":\"put\",\"key\":\"g\",\"value\":0}");
    s_send_request(fake, routing, 10, "{\"op\":\"get\",\"key\":\"g\"}");
    assert_int_equal(s_count_missing_until(fake, 10, 5, 1), 1);
    s_put_range(fake, routing, 5, 2, 6);            //  the broker resends from 2
    s_send_write(fake, routing, 5, 4, 1004, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"put\",\"key\":\"g\",\"value\":0}");    //  a late copy
    s_send_request(fake, routing, 11, "{\"op\":\"get\",\"key\":\"g\"}");
    assert_int_equal(s_count_missing_until(fake, 11, 5, 6), 0);
    s_send_write(fake, routing, 5, 9, 1009, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"put\",\"key\":\"g\",\"value\":0}");
    s_send_write(fake, routing, 5, 10, 1010, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"put\",\"key\":\"g\",\"value\":0}");
    s_send_request(fake, routing, 12, "{\"op\":\"get\",\"key\":\"g\"}");
    assert_int_equal(s_count_missing_until(fake, 12, 5, 6), 1);
    assert_int_equal(atomic_load(&node->writes), 6);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  A snapshot that arrived in chunks.
typedef struct {
    uint64_t epoch, seq;
    int chunks;
    zchunk_t *data;
    zmsg_t *relay[16];              //  the SNAPSHOT commands as they came, to send on
} s_snap_t;

//  Strips a bin header off a chunk body; fails if it is not one bin.
static void
s_unbin(zframe_t *frame, const uint8_t **data_p, size_t *size_p)
{
    const uint8_t *bytes = zframe_data(frame);
    size_t size = zframe_size(frame);
    assert_true(size >= 2);
    size_t header = bytes[0] == 0xc4 ? 2 : bytes[0] == 0xc5 ? 3 : bytes[0] == 0xc6 ? 5 : 0;
    assert_true(header > 0 && size >= header);
    size_t length = 0;
    for (size_t i = 1; i < header; i++)
        length = length << 8 | bytes[i];
    assert_true(length == size - header);
    *data_p = bytes + header;
    *size_p = length;
}

//  Sends SYNC(token) and collects the SNAPSHOT chunks that answer it.
static void
s_sync(s_fake_t *fake, zframe_t *routing, uint64_t token, s_snap_t *snap)
{
    memset(snap, 0, sizeof *snap);
    snap->data = zchunk_new(NULL, 0);
    zm_proto_t sync;
    zm_proto_init(&sync);
    sync.cmd = ZM_CMD_SYNC;
    sync.id = token;
    zm_fake_broker_send(fake->broker, routing, &sync);
    bool more = true;
    while (more) {
        zm_proto_t chunk;
        zframe_t *from = zm_fake_broker_expect_next(fake->broker, ZM_CMD_SNAPSHOT, &chunk,
                                                    S_WAIT_MS);
        zframe_destroy(&from);
        assert_true(chunk.id == token);
        assert_int_equal(chunk.index, snap->chunks);
        if (snap->chunks == 0) {
            snap->epoch = chunk.epoch;
            snap->seq = chunk.seq;
        }
        assert_true(chunk.epoch == snap->epoch && chunk.seq == snap->seq);
        const uint8_t *bytes;
        size_t size;
        s_unbin(chunk.body, &bytes, &size);
        assert_true(size <= ZM_SNAPSHOT_CHUNK);
        if (chunk.more)
            assert_int_equal(size, ZM_SNAPSHOT_CHUNK);
        zchunk_extend(snap->data, bytes, size);
        more = chunk.more;
        assert_true(snap->chunks < 16);
        snap->relay[snap->chunks++] = zm_proto_encode(&chunk);
    }
}

static void
s_snap_reset(s_snap_t *snap)
{
    zchunk_destroy(&snap->data);
    for (int i = 0; i < snap->chunks; i++)
        zmsg_destroy(&snap->relay[i]);
}

//  Relays chunk i of snap to routing, as the broker does.
static void
s_relay(s_fake_t *fake, zframe_t *routing, s_snap_t *snap, int i)
{
    zmsg_t *msg = zmsg_dup(snap->relay[i]);
    assert_int_equal(zm_fake_broker_post_msg(fake->broker, routing, &msg), 0);
}

//  The digest a replica reports (JSON of the reply), malloc'ed.
static char *
s_digest(s_fake_t *fake, zframe_t *routing, uint64_t ticket)
{
    s_send_request(fake, routing, ticket, "{\"op\":\"digest\"}");
    return s_expect_reply(fake, ticket, ZM_STATUS_OK);
}

//  SYNC makes the replica send its state in chunks of 64 KiB; the bytes are a snapshot
//  another replica installs. Relayed by the broker to a second replica, the chunks are
//  installed there (after a chunk out of order and a snapshot that is not a state are
//  refused, the latter with MISSING), and writes go on from the snapshot's seq + 1.
static void
test_replica_snapshot_catch_up(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *donor = s_node_start(fake, NULL, 1000);
    zframe_t *donor_id = s_expect_join(fake, 0, 0);
    char big[48 * 1024];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t json_size = sizeof big + 64;
    char *json = malloc(json_size);
    assert_non_null(json);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        snprintf(json, json_size, "{\"op\":\"put\",\"key\":\"big%" PRIu64 "\",\"value\":\"%s\"}",
                 seq, big);
        s_send_write(fake, donor_id, 9, seq, 500 + seq, ZM_WRITE_KIND_WRITE, json);
        s_expect_applied(fake, 9, seq, ZM_STATUS_OK, "{\"ok\":true}");
    }
    free(json);
    s_snap_t snap;
    s_sync(fake, donor_id, 77, &snap);
    assert_true(snap.epoch == 9 && snap.seq == 3);
    assert_true(snap.chunks >= 3);                  //  3 x 48 KiB of state
    char *expected = s_digest(fake, donor_id, 1);

    //  The bytes are a snapshot: an in-process replica installs them.
    zw_kv_t *kv = zw_kv_new();
    s_node_t local = {.kv = kv};
    zmesh_state_t local_state = {s_handle, s_snapshot, s_restore, &local};
    char error[256];
    zm_replica_t *check = zm_replica_new(&local_state, NULL, NULL, error, sizeof error);
    assert_non_null(check);
    assert_int_equal(zm_replica_install(check, zchunk_data(snap.data), zchunk_size(snap.data)),
                     ZMESH_OK);
    assert_true(zm_replica_seq(check) == 3 && zm_replica_epoch(check) == 9);
    assert_int_equal(zw_kv_size(kv), 3);
    zm_replica_destroy(&check);
    zw_kv_destroy(&kv);

    //  The joiner: a chunk out of order is dropped, nothing installed, and it
    //  asks for another snapshot at once (the writes after this one must not
    //  apply to the state it kept).
    s_node_t *joiner = s_node_start(fake, NULL, 1000);
    zframe_t *joiner_id = s_expect_join(fake, 0, 0);
    s_relay(fake, joiner_id, &snap, 1);
    zm_proto_t lost;
    zframe_t *lost_from = zm_fake_broker_expect_next(fake->broker, ZM_CMD_MISSING, &lost,
                                                     S_WAIT_MS);
    assert_true(lost.epoch == 0 && lost.seq == 0);
    zm_proto_reset(&lost);
    zframe_destroy(&lost_from);
    char *before = s_digest(fake, joiner_id, 2);
    assert_string_not_equal(before, expected);
    free(before);
    //  A snapshot that is not a state: refused, and the replica asks again with MISSING.
    zm_proto_t bad;
    zm_proto_init(&bad);
    bad.cmd = ZM_CMD_SNAPSHOT;
    bad.id = 78;
    bad.epoch = 9;
    bad.seq = 3;
    bad.index = 0;
    bad.more = false;
    bad.body = zframe_new("\xc4\x03" "abc", 5);
    zm_fake_broker_send(fake->broker, joiner_id, &bad);
    zm_proto_t missing;
    zframe_t *from = zm_fake_broker_expect_next(fake->broker, ZM_CMD_MISSING, &missing, S_WAIT_MS);
    assert_true(missing.epoch == 0 && missing.seq == 0);
    zm_proto_reset(&missing);
    zframe_destroy(&from);
    //  The real chunks, in order: installed; the next write is seq 4.
    for (int i = 0; i < snap.chunks; i++)
        s_relay(fake, joiner_id, &snap, i);
    char *after = s_digest(fake, joiner_id, 3);
    assert_string_equal(after, expected);
    free(after);
    s_send_write(fake, joiner_id, 9, 4, 504, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"put\",\"key\":\"k4\",\"value\":4}");
    s_expect_applied(fake, 9, 4, ZM_STATUS_OK, "{\"ok\":true}");
    //  A retry of a write the snapshot holds is recognised on the joiner too.
    s_send_write(fake, joiner_id, 9, 5, 502, ZM_WRITE_KIND_WRITE,
                 "{\"op\":\"put\",\"key\":\"big2\",\"value\":0}");
    s_expect_applied(fake, 9, 5, ZM_STATUS_OK, "{\"ok\":true}");
    s_check_read(fake, joiner_id, 4, "{\"op\":\"get\",\"key\":\"k4\"}",
                 "{\"found\":true,\"value\":4}");
    assert_int_equal(atomic_load(&joiner->writes), 1);
    free(expected);
    s_snap_reset(&snap);
    s_node_stop(&joiner);
    s_node_stop(&donor);
    zframe_destroy(&joiner_id);
    zframe_destroy(&donor_id);
}

//  Two SYNCs at once (the broker asks one donor for each of two joiners): each token gets
//  its whole snapshot, the second after the first, neither cut short by the other.
static void
test_replica_two_syncs(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    char big[48 * 1024];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *json = malloc(sizeof big + 64);
    assert_non_null(json);
    //  Sent at once, the writes and both SYNCs reach the replica in one batch: the second
    //  SYNC comes before the first snapshot could go.
    for (uint64_t seq = 1; seq <= 3; seq++) {
        snprintf(json, sizeof big + 64, "{\"op\":\"put\",\"key\":\"s%" PRIu64
                 "\",\"value\":\"%s\"}", seq, big);
        s_send_write(fake, routing, 6, seq, seq, ZM_WRITE_KIND_WRITE, json);
    }
    free(json);
    for (uint64_t token = 11; token <= 12; token++) {
        zm_proto_t sync;
        zm_proto_init(&sync);
        sync.cmd = ZM_CMD_SYNC;
        sync.id = token;
        zm_fake_broker_send(fake->broker, routing, &sync);
    }
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_expect_applied(fake, 6, seq, ZM_STATUS_OK, "{\"ok\":true}");
    zchunk_t *data[2] = {zchunk_new(NULL, 0), zchunk_new(NULL, 0)};
    for (uint64_t token = 11; token <= 12; token++) {
        bool more = true;
        for (uint32_t index = 0; more; index++) {
            zm_proto_t chunk;
            zframe_t *from = zm_fake_broker_expect_next(fake->broker, ZM_CMD_SNAPSHOT, &chunk,
                                                        S_WAIT_MS);
            zframe_destroy(&from);
            assert_true(chunk.id == token);
            assert_int_equal(chunk.index, index);
            assert_true(chunk.epoch == 6 && chunk.seq == 3);
            const uint8_t *bytes;
            size_t size;
            s_unbin(chunk.body, &bytes, &size);
            zchunk_extend(data[token - 11], bytes, size);
            more = chunk.more;
            zm_proto_reset(&chunk);
            assert_true(index < 16);
        }
    }
    assert_true(zchunk_size(data[0]) > 3 * sizeof big);
    assert_true(zchunk_size(data[0]) == zchunk_size(data[1]));
    assert_memory_equal(zchunk_data(data[0]), zchunk_data(data[1]), zchunk_size(data[0]));
    zchunk_destroy(&data[0]);
    zchunk_destroy(&data[1]);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  A SYNC among writes: the snapshot is the state at the SYNC (the writes after it follow it
//  on the joiner), and the chunks and the APPLIEDs of the writes after it all come, each in
//  order, whichever goes first.
static void
test_replica_snapshot_amid_writes(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    char big[40 * 1024];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *json = malloc(sizeof big + 64);
    assert_non_null(json);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        snprintf(json, sizeof big + 64, "{\"op\":\"put\",\"key\":\"b%" PRIu64
                 "\",\"value\":\"%s\"}", seq, big);
        s_send_write(fake, routing, 8, seq, seq, ZM_WRITE_KIND_WRITE, json);
    }
    free(json);
    zm_proto_t sync;
    zm_proto_init(&sync);
    sync.cmd = ZM_CMD_SYNC;
    sync.id = 5;
    zm_fake_broker_send(fake->broker, routing, &sync);
    for (uint64_t seq = 4; seq <= 40; seq++)
        s_send_write(fake, routing, 8, seq, seq, ZM_WRITE_KIND_WRITE,
                     "{\"op\":\"put\",\"key\":\"n\",\"value\":1}");
    uint64_t next_applied = 1;
    uint32_t next_chunk = 0;
    bool last_chunk = false;
    zchunk_t *data = zchunk_new(NULL, 0);
    while (next_applied <= 40 || !last_chunk) {
        zm_proto_t command;
        zframe_t *from = NULL;
        if (!zm_fake_broker_recv(fake->broker, &command, &from, S_WAIT_MS))
            fail_msg("stuck at APPLIED %" PRIu64 ", chunk %u", next_applied, next_chunk);
        zframe_destroy(&from);
        if (command.cmd == ZM_CMD_APPLIED) {
            assert_true(command.seq == next_applied);
            next_applied++;
        }
        else if (command.cmd == ZM_CMD_SNAPSHOT) {
            assert_false(last_chunk);
            assert_int_equal(command.index, next_chunk++);
            assert_true(command.id == 5 && command.epoch == 8 && command.seq == 3);
            const uint8_t *bytes;
            size_t size;
            s_unbin(command.body, &bytes, &size);
            zchunk_extend(data, bytes, size);
            last_chunk = !command.more;
        }
        else
            fail_msg("unexpected %s", zm_proto_cmd_name(command.cmd));
        zm_proto_reset(&command);
    }
    //  The bytes hold seq 3, three keys: what an in-process replica installs from them.
    s_node_t local = {.kv = zw_kv_new()};
    zmesh_state_t local_state = {s_handle, s_snapshot, s_restore, &local};
    char error[256];
    zm_replica_t *check = zm_replica_new(&local_state, NULL, NULL, error, sizeof error);
    assert_non_null(check);
    assert_int_equal(zm_replica_install(check, zchunk_data(data), zchunk_size(data)), ZMESH_OK);
    assert_true(zm_replica_seq(check) == 3);
    assert_int_equal(zw_kv_size(local.kv), 3);
    zm_replica_destroy(&check);
    zw_kv_destroy(&local.kv);
    zchunk_destroy(&data);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  After DISCONNECT the replica joins again (a new connection) with what it holds; a broker
//  that then stays silent for heartbeat x liveness is left for a new connection too.
static void
test_replica_rejoins(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 200);
    zframe_t *first = s_expect_join(fake, 0, 0);
    s_put_range(fake, first, 4, 1, 3);
    zm_proto_t kick;
    zm_proto_init(&kick);
    kick.cmd = ZM_CMD_DISCONNECT;
    kick.status = ZM_STATUS_MALFORMED;
    snprintf(kick.reason, sizeof kick.reason, "not registered");
    zm_fake_broker_send(fake->broker, first, &kick);
    zframe_t *second = s_expect_join(fake, 4, 3);
    assert_false(zframe_eq(first, second));
    int64_t joined = zclock_mono();
    zframe_t *third = s_expect_join(fake, 4, 3);    //  nothing said to it: silence
    int64_t silent = zclock_mono() - joined;
    assert_false(zframe_eq(second, third));
    if (silent < 500)
        fail_msg("the replica left a broker silent for %d ms only (heartbeat 200 x 3)",
                 (int) silent);
    s_put_range(fake, third, 4, 4, 4);              //  and serves on the new connection
    s_node_stop(&node);
    zframe_destroy(&first);
    zframe_destroy(&second);
    zframe_destroy(&third);
}

//  With a data directory, a restarted replica joins with the writes it had and serves them;
//  a second replica cannot open a directory in use.
static void
test_replica_restart_from_disk(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, "a", 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    uint64_t first_id = s_last_join_id;
    s_put_range(fake, routing, 6, 1, 4);
    zframe_destroy(&routing);
    zmesh_state_t state_b = {s_handle, s_snapshot, s_restore, node};
    char dir[128];
    snprintf(dir, sizeof dir, "%s/a", fake->dir);
    int err = 0;
    assert_null(zmesh_replica_new(fake->broker->endpoint, "kv", &state_b, 3, 2, dir, &err));
    assert_int_equal(err, ZMESH_ESYS);
    s_node_leave(fake, &node);

    node = s_node_start(fake, "a", 1000);
    routing = s_expect_join(fake, 6, 4);
    //  The same replica to the broker: its id is kept in the data directory.
    assert_true(s_last_join_id == first_id);
    s_check_read(fake, routing, 1, "{\"op\":\"get\",\"key\":\"k2\"}",
                 "{\"found\":true,\"value\":2}");
    s_put_range(fake, routing, 6, 5, 5);
    assert_int_equal(atomic_load(&node->writes), 5);    //  4 replayed from the log, 1 new
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  Writes seq 1..5 of equal size into directory name and stops; returns the log's size.
static off_t
s_fill_log(s_fake_t *fake, const char *name, char *path, size_t path_size)
{
    s_node_t *node = s_node_start(fake, name, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    s_put_range(fake, routing, 2, 1, 5);
    s_node_leave(fake, &node);
    zframe_destroy(&routing);
    snprintf(path, path_size, "%s/%s/log", fake->dir, name);
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    return info.st_size;
}

//  A log cut in its last record (a crash mid-append), or with a corrupted record, is read up
//  to the damage: the replica joins with the good prefix, for the broker to fill in.
static void
test_replica_damaged_log_good_prefix(void **state)
{
    s_fake_t *fake = *state;
    char path[160];
    off_t size = s_fill_log(fake, "torn", path, sizeof path);
    assert_int_equal(truncate(path, size - 3), 0);
    s_node_t *node = s_node_start(fake, "torn", 1000);
    zframe_t *routing = s_expect_join(fake, 2, 4);
    s_put_range(fake, routing, 2, 5, 5);            //  the write lost comes again
    s_node_leave(fake, &node);
    zframe_destroy(&routing);

    size = s_fill_log(fake, "flipped", path, sizeof path);
    //  Five records of one size after the file's header: flip a byte inside the third.
    off_t record = (size - 8) / 5;
    assert_true(record > 16 && 8 + 5 * record == size);
    FILE *file = fopen(path, "r+b");
    assert_non_null(file);
    assert_int_equal(fseeko(file, 8 + 2 * record + record / 2, SEEK_SET), 0);
    int byte = fgetc(file);
    assert_int_equal(fseeko(file, 8 + 2 * record + record / 2, SEEK_SET), 0);
    fputc(byte ^ 0x5a, file);
    assert_int_equal(fclose(file), 0);
    node = s_node_start(fake, "flipped", 1000);
    routing = s_expect_join(fake, 2, 2);
    s_check_read(fake, routing, 1, "{\"op\":\"get\",\"key\":\"k3\"}", "{\"found\":false}");
    s_put_range(fake, routing, 2, 3, 5);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  A write that cannot reach the disk stops the replica with an error, and is never
//  acknowledged; the replica serves no more, even when run again.
static void
test_replica_disk_error_stops(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, "full", 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    s_put_range(fake, routing, 1, 1, 1);
    char path[160];
    snprintf(path, sizeof path, "%s/full/log", fake->dir);
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    //  The file size limit stands in for a full disk: writes past it fail with EFBIG.
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {.rlim_cur = (rlim_t) info.st_size + 64, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    char json[600];
    snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k2\",\"value\":\"%0500d\"}", 0);
    s_send_write(fake, routing, 1, 2, 1002, ZM_WRITE_KIND_WRITE, json);
    int rc = s_node_join(node);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, ZMESH_ESYS);
    const char *error = zmesh_replica_error(node->replica);
    if (!strstr(error, "disk error"))
        fail_msg("the error says \"%s\", not that the disk failed", error);
    //  Its goodbye, and no APPLIED for seq 2 before it.
    zm_proto_t bye;
    zframe_t *from = zm_fake_broker_expect_next(fake->broker, ZM_CMD_DISCONNECT, &bye, S_WAIT_MS);
    zm_proto_reset(&bye);
    zframe_destroy(&from);
    assert_int_equal(zmesh_replica_run(node->replica), ZMESH_ESYS);
    s_node_stop(&node);
    zframe_destroy(&routing);
}

//  Malformed input from the broker is dropped (a header that is not ZMP, a WRITE with a bad
//  kind, a command a replica does not take); then good
//  input still works on the same connection.
static void
test_replica_bad_input_then_good(void **state)
{
    s_fake_t *fake = *state;
    s_node_t *node = s_node_start(fake, NULL, 1000);
    zframe_t *routing = s_expect_join(fake, 0, 0);
    zmsg_t *garbage = zmsg_new();
    zmsg_addmem(garbage, "", 0);
    zmsg_addmem(garbage, "\x93\xa4ZMP1\xa5WRITE\xff", 13);
    assert_int_equal(zm_fake_broker_post_msg(fake->broker, routing, &garbage), 0);
    //  WRITE with kind 7: built by hand, the codec would not encode it.
    garbage = zmsg_new();
    zmsg_addmem(garbage, "", 0);
    zmsg_addmem(garbage, "\x96\xa4ZMP1\xa5WRITE\x01\x01\x01\x07", 16);
    zmsg_addmem(garbage, "\xc0", 1);
    assert_int_equal(zm_fake_broker_post_msg(fake->broker, routing, &garbage), 0);
    zm_proto_t credit;
    zm_proto_init(&credit);
    credit.cmd = ZM_CMD_CREDIT;
    credit.id = 1;
    credit.window = 1;
    zm_fake_broker_send(fake->broker, routing, &credit);
    s_put_range(fake, routing, 1, 1, 2);
    s_check_read(fake, routing, 1, "{\"op\":\"get\",\"key\":\"k1\"}",
                 "{\"found\":true,\"value\":1}");
    s_node_stop(&node);
    zframe_destroy(&routing);
}

int
main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replica_join_fields, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_writes_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_duplicate_write_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_gap_missing_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_snapshot_catch_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_snapshot_amid_writes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_two_syncs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_rejoins, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_restart_from_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_damaged_log_good_prefix, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_disk_error_stops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replica_bad_input_then_good, s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("replica_peer", tests, NULL, NULL);
}
