//  test_engine_repl.c - unit tests of replicated services in the broker's
//  routing logic (ZMP.md section 20): nothing sequenced before N-W+1
//  replicas joined; the reference state and the epoch chosen at the start;
//  writes sent to every live replica in order and answered after W
//  APPLIED; quorum reads through the same path, plain reads to one current
//  replica; catch-up from the buffer (a replica a few writes behind, or one
//  that says MISSING) and through a relayed snapshot; a lost replica's acks
//  no longer counting; replies that differ counted; the set stopping when
//  no current replica is left; deadlines; JOINs and READYs that do not fit;
//  and the status section. Fabricated messages and an explicit clock.

#define _GNU_SOURCE
#include "engine_fixture.h"

#include <string.h>

#define S_KV "kv"
#define S_PUT ZT_BYTES("\x81\xa2op\xa3put")             //  {"op": "put"}, enough here
#define S_OK ZT_BYTES("\x81\xa2ok\xc3")                 //  {"ok": true}

static void
s_join_id(zm_engine_t *engine, const char *replica, uint32_t replicas, uint32_t quorum,
          uint64_t epoch, uint64_t seq, uint64_t replica_id, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_JOIN;
    snprintf(command.service, sizeof command.service, S_KV);
    command.heartbeat_ms = ZT_HEARTBEAT_MS;
    command.liveness = ZT_LIVENESS;
    command.replicas = replicas;
    command.quorum = quorum;
    command.epoch = epoch;
    command.seq = seq;
    command.id = replica_id;
    zt_feed(engine, replica, &command, now);
}

static void
s_join(zm_engine_t *engine, const char *replica, uint32_t replicas, uint32_t quorum,
       uint64_t epoch, uint64_t seq, int64_t now)
{
    s_join_id(engine, replica, replicas, quorum, epoch, seq, 0, now);
}

static void
s_write(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t flags,
        uint32_t timeout_ms, int64_t now)
{
    zt_call_flags(engine, client, request_id, S_KV, timeout_ms, flags, S_PUT, now);
}

static void
s_applied(zm_engine_t *engine, const char *replica, uint64_t epoch, uint64_t seq,
          uint32_t status, zt_bytes_t reply, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_APPLIED;
    command.epoch = epoch;
    command.seq = seq;
    command.status = status;
    command.body = zframe_new(reply.data, reply.size);
    zt_feed(engine, replica, &command, now);
}

static void
s_missing(zm_engine_t *engine, const char *replica, uint64_t epoch, uint64_t seq, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_MISSING;
    command.epoch = epoch;
    command.seq = seq;
    zt_feed(engine, replica, &command, now);
}

static void
s_snapshot(zm_engine_t *engine, const char *replica, uint64_t token, uint64_t epoch,
           uint64_t seq, uint32_t index, bool more, zt_bytes_t chunk, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_SNAPSHOT;
    command.id = token;
    command.epoch = epoch;
    command.seq = seq;
    command.index = index;
    command.more = more;
    command.body = zframe_new(chunk.data, chunk.size);
    zt_feed(engine, replica, &command, now);
}

//  Expects WRITE(epoch, seq, write_id, kind) to replica.
static void
s_expect_write(zm_engine_t *engine, const char *replica, uint64_t epoch, uint64_t seq,
               uint64_t write_id, uint32_t kind)
{
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, replica);
    zt_assert_cmd(out, ZM_CMD_WRITE);
    assert_true(out->command.epoch == epoch);
    assert_true(out->command.seq == seq);
    assert_true(out->command.id == write_id);
    assert_int_equal(out->command.kind, kind);
    zt_assert_body(out->command.body, S_PUT);
}

//  Expects SYNC to donor; returns its token.
static uint64_t
s_expect_sync(zm_engine_t *engine, const char *donor)
{
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, donor);
    zt_assert_cmd(out, ZM_CMD_SYNC);
    assert_true(out->command.id > 0);
    return out->command.id;
}

//  R1 and R2 of kv (3 replicas, majority) joined empty: the set runs in
//  epoch 1 from seq 0.
static void
s_start_two(zm_engine_t *engine)
{
    s_join(engine, "R1", 3, 0, 0, 0, ZT_T0);
    zt_expect_empty(engine);
    s_join(engine, "R2", 3, 0, 0, 0, ZT_T0);
    zt_expect_empty(engine);
}

//  Nothing is sequenced before N-W+1 replicas joined; then the waiting
//  write goes to both in order, and is answered after the second APPLIED
//  with the first reply.
static void
test_repl_write_quorum(void **state)
{
    zm_engine_t *engine = *state;
    s_join(engine, "R1", 3, 0, 0, 0, ZT_T0);
    s_write(engine, "C1", 41, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    zt_expect_empty(engine);                            //  waits: one replica of R = 2
    s_join(engine, "R2", 3, 0, 0, 0, ZT_T0 + 2);
    s_expect_write(engine, "R1", 1, 1, 41, ZM_WRITE_KIND_WRITE);
    s_expect_write(engine, "R2", 1, 1, 41, ZM_WRITE_KIND_WRITE);
    zt_expect_empty(engine);
    s_applied(engine, "R2", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 3);
    zt_expect_empty(engine);                            //  one of W = 2
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    zt_expect_reply(engine, "C1", 41, ZM_STATUS_OK, S_OK);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .writes = 1);
}

//  A quorum read is a WRITE of kind 1; a plain read is a REQUEST to one
//  current replica, answered by it alone.
static void
test_repl_reads(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_write(engine, "C1", 7, ZM_CALL_QUORUM, 0, ZT_T0 + 1);
    s_expect_write(engine, "R1", 1, 1, 7, ZM_WRITE_KIND_QUORUM_READ);
    s_expect_write(engine, "R2", 1, 1, 7, ZM_WRITE_KIND_QUORUM_READ);
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    s_applied(engine, "R2", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    zt_expect_reply(engine, "C1", 7, ZM_STATUS_OK, S_OK);
    s_write(engine, "C1", 8, 0, 0, ZT_T0 + 3);
    uint64_t ticket = zt_expect_request(engine, "R1", S_KV, 0, S_PUT);
    zt_answer(engine, "R1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 4);
    zt_expect_reply(engine, "C1", 8, ZM_STATUS_OK, ZT_ANSWER);
    s_write(engine, "C1", 9, 0, 0, ZT_T0 + 5);
    zt_expect_request(engine, "R2", S_KV, 0, S_PUT);    //  least recently used
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .replies = 2, .quorum_reads = 1);
}

//  The set starts from the most recent state among those that joined, in
//  an epoch past it and at least the broker's start time; the one behind
//  gets a snapshot of the reference, relayed, and serves once it has it.
static void
test_repl_reference_and_snapshot(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.epoch_base = 5;
    s_join(engine, "R1", 3, 2, 9, 3, ZT_T0);
    s_join(engine, "R2", 3, 2, 12, 7, ZT_T0);          //  R = 2: starts, from R2
    uint64_t token = s_expect_sync(engine, "R2");
    zt_expect_empty(engine);
    s_write(engine, "C1", 50, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R2", 13, 8, 50, ZM_WRITE_KIND_WRITE);  //  not to R1: no state yet
    zt_expect_empty(engine);
    s_snapshot(engine, "R2", token, 12, 7, 0, true, ZT_BYTES("\xc4\x01" "a"), ZT_T0 + 2);
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, "R1");
    zt_assert_cmd(out, ZM_CMD_SNAPSHOT);
    assert_true(out->command.id == token && out->command.seq == 7 && out->command.more);
    zt_expect_empty(engine);
    s_snapshot(engine, "R2", token, 12, 7, 1, false, ZT_BYTES("\xc4\x01" "b"), ZT_T0 + 3);
    out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_SNAPSHOT);
    assert_int_equal(out->command.index, 1);
    assert_false(out->command.more);
    zt_assert_body(out->command.body, ZT_BYTES("\xc4\x01" "b"));
    s_expect_write(engine, "R1", 13, 8, 50, ZM_WRITE_KIND_WRITE);   //  what followed it
    zt_expect_empty(engine);
    s_applied(engine, "R1", 13, 8, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    s_applied(engine, "R2", 13, 8, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    zt_expect_reply(engine, "C1", 50, ZM_STATUS_OK, S_OK);
    //  Both current: reads go to either.
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 5);
    const msgpack_object *set = zt_status_entry(status, "replicated", "service", S_KV);
    assert_non_null(set);
    assert_true(zt_map_uint(set, "epoch") == 13);
    assert_true(zt_map_uint(set, "seq") == 8);
    assert_true(zt_map_uint(set, "committed") == 8);
    const msgpack_object *members = zt_map_get(set, "members");
    assert_int_equal(members->via.array.size, 2);
    for (uint32_t index = 0; index < 2; index++) {
        assert_true(zt_str_is(zt_map_get(&members->via.array.ptr[index], "state"), "current"));
        assert_true(zt_map_uint(&members->via.array.ptr[index], "lag") == 0);
    }
    assert_int_equal(engine->counters.catchups, 1);
}

//  A replica a few writes behind in this epoch gets them from the buffer;
//  it serves once it applied them. One that says MISSING gets the rest.
static void
test_repl_buffer_catch_up(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        s_write(engine, "C1", 100 + seq, ZM_CALL_WRITE, 0, ZT_T0 + 1);
        s_expect_write(engine, "R1", 1, seq, 100 + seq, 0);
        s_expect_write(engine, "R2", 1, seq, 100 + seq, 0);
        s_applied(engine, "R1", 1, seq, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
        s_applied(engine, "R2", 1, seq, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
        zt_expect_reply(engine, "C1", 100 + seq, ZM_STATUS_OK, S_OK);
    }
    s_join(engine, "R3", 3, 0, 1, 1, ZT_T0 + 3);       //  has seq 1 of this epoch
    s_expect_write(engine, "R3", 1, 2, 102, 0);
    zt_expect_empty(engine);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 3);
    const msgpack_object *set = zt_status_entry(status, "replicated", "service", S_KV);
    const msgpack_object *third = &zt_map_get(set, "members")->via.array.ptr[2];
    assert_true(zt_str_is(zt_map_get(third, "state"), "catching up"));
    assert_true(zt_map_uint(third, "lag") == 1);
    s_applied(engine, "R3", 1, 2, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    zt_expect_empty(engine);
    //  R2 lost something: it gets what follows seq 1 again.
    s_missing(engine, "R2", 1, 1, ZT_T0 + 5);
    s_expect_write(engine, "R2", 1, 2, 102, 0);
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.catchup_resends, 1);
    assert_int_equal(engine->counters.catchups, 0);
}

//  The acks of a replica that left do not count: it may have lost the write.
static void
test_repl_lost_ack(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 0, 0, ZT_T0);
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_expect_write(engine, "R2", 1, 1, 5, 0);
    s_expect_write(engine, "R3", 1, 1, 5, 0);
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    zt_leave(engine, "R1", ZT_T0 + 3);
    s_applied(engine, "R2", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    zt_expect_empty(engine);                            //  R1's ack went with it
    s_applied(engine, "R3", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 5);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, S_OK);
}

//  Replicas that answer a write differently are counted and logged; the
//  client gets the first answer.
static void
test_repl_divergence(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_expect_write(engine, "R2", 1, 1, 5, 0);
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    s_applied(engine, "R2", 1, 1, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 2);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, S_OK);
    assert_int_equal(engine->counters.replica_divergence, 1);
}

//  With no current replica left, the set stops: waiting writes are
//  answered 502, a replica still catching up is asked to join again, and
//  the next JOINs start a new epoch.
static void
test_repl_stop_and_restart(void **state)
{
    zm_engine_t *engine = *state;
    s_join(engine, "R1", 3, 2, 0, 0, ZT_T0);
    s_join(engine, "R2", 3, 2, 4, 9, ZT_T0);           //  reference; R1 needs a snapshot
    s_expect_sync(engine, "R2");
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R2", 5, 10, 5, 0);
    zt_leave(engine, "R2", ZT_T0 + 2);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "same request id");
    zt_expect_disconnect(engine, "R1", ZM_STATUS_BUSY, "join again");
    zt_expect_empty(engine);
    assert_int_equal(zhashx_size(engine->workers), 0);
    s_join(engine, "R1", 3, 2, 0, 0, ZT_T0 + 3);
    s_join(engine, "R3", 3, 2, 5, 9, ZT_T0 + 3);
    s_expect_sync(engine, "R3");
    s_write(engine, "C1", 6, ZM_CALL_WRITE, 0, ZT_T0 + 4);
    s_expect_write(engine, "R3", 6, 10, 6, 0);
    ZT_COUNTERS(.calls = 2, .writes = 2, .worker_lost = 1, .catchups = 2);
}

//  A write whose deadline passes is answered 408 (it may still apply); a
//  later APPLIED for it answers nobody.
static void
test_repl_deadline(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 100, ZT_T0 + 1);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_expect_write(engine, "R2", 1, 1, 5, 0);
    zm_engine_on_tick(engine, ZT_T0 + 200);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_EXPIRED, "same request id");
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 201);
    s_applied(engine, "R2", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 201);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .writes = 1, .expired = 1);
}

//  What does not fit is refused: other replica counts, a READY for a
//  replicated service, a JOIN for a plain one, an APPLIED out of order.
static void
test_repl_refusals(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 5, 0, 0, 0, ZT_T0 + 1);
    zt_expect_disconnect(engine, "R3", ZM_STATUS_MALFORMED, "replicas=3");
    zt_ready(engine, "W1", S_KV, 1, ZT_T0 + 1);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "replicated");
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 1);
    zm_proto_t join;
    zm_proto_init(&join);
    join.cmd = ZM_CMD_JOIN;
    snprintf(join.service, sizeof join.service, "echo");
    join.heartbeat_ms = ZT_HEARTBEAT_MS;
    join.liveness = ZT_LIVENESS;
    join.replicas = 1;
    zt_feed(engine, "R4", &join, ZT_T0 + 1);
    zt_expect_disconnect(engine, "R4", ZM_STATUS_MALFORMED, "plain workers");
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 2);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_expect_write(engine, "R2", 1, 1, 5, 0);
    s_applied(engine, "R1", 1, 2, ZM_STATUS_OK, S_OK, ZT_T0 + 3);
    zt_expect_disconnect(engine, "R1", ZM_STATUS_MALFORMED, "out of sequence");
    //  A stray APPLIED of an old epoch is only counted.
    s_applied(engine, "R2", 0, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 3);
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.stray_applied, 1);
    assert_int_equal(engine->counters.workers_kicked, 1);
}

//  A donor that does not answer within ZM_REPLSET_SYNC_MS is replaced by
//  another current replica; its late chunks are dropped.
static void
test_repl_snapshot_deadline(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 7, 7, ZT_T0);
    uint64_t first = s_expect_sync(engine, "R1");
    zt_heartbeat(engine, "R1", ZT_T0 + 1);
    zt_heartbeat(engine, "R2", ZT_T0 + 1);
    zm_engine_on_tick(engine, ZT_T0 + 100);
    zt_expect_empty(engine);
    for (int64_t t = ZT_T0 + 500; t < ZT_T0 + 100 + ZM_REPLSET_SYNC_MS; t += 500) {
        zt_heartbeat(engine, "R1", t);          //  alive, but its snapshot never comes
        zt_heartbeat(engine, "R2", t);
        zt_heartbeat(engine, "R3", t);
        zm_engine_on_tick(engine, t);
        zmsg_t *msg;                            //  the broker's heartbeats, and only those
        while ((msg = zm_engine_outbox_pop(engine))) {
            zframe_t *header = zmsg_last(msg);
            assert_non_null(memmem(zframe_data(header), zframe_size(header), "HEARTBEAT", 9));
            zmsg_destroy(&msg);
        }
    }
    zm_engine_on_tick(engine, ZT_T0 + 100 + ZM_REPLSET_SYNC_MS);
    uint64_t second = s_expect_sync(engine, "R2");
    assert_true(second > first);
    s_snapshot(engine, "R1", first, 1, 1, 0, false, ZT_BYTES("\xc4\x01" "a"),
               ZT_T0 + 100 + ZM_REPLSET_SYNC_MS);
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.stray_applied, 1);
    assert_int_equal(engine->counters.catchups, 2);
}

//  Drops what the outbox holds.
static void
s_drain(zm_engine_t *engine)
{
    zmsg_t *msg;
    while ((msg = zm_engine_outbox_pop(engine)))
        zmsg_destroy(&msg);
}

//  A write the only current replica applied, then covered by the snapshot
//  a joiner installs, counts the joiner's acknowledgement once the joiner
//  applies a later write: W is reached, the client answered.
static void
test_repl_snapshot_credits_held(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    zt_leave(engine, "R2", ZT_T0 + 1);
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 2);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 3);
    zt_expect_empty(engine);                            //  one of W = 2
    s_join(engine, "R3", 3, 0, 7, 7, ZT_T0 + 4);        //  not a prefix: snapshot
    uint64_t token = s_expect_sync(engine, "R1");
    s_snapshot(engine, "R1", token, 1, 1, 0, false, ZT_BYTES("\xc4\x01" "a"), ZT_T0 + 5);
    zt_assert_cmd(zt_pop(engine), ZM_CMD_SNAPSHOT);
    zt_expect_empty(engine);                            //  not counted before it proves it
    s_write(engine, "C1", 6, ZM_CALL_WRITE, 0, ZT_T0 + 6);
    s_expect_write(engine, "R1", 1, 2, 6, 0);
    s_expect_write(engine, "R3", 1, 2, 6, 0);
    s_applied(engine, "R1", 1, 2, ZM_STATUS_OK, S_OK, ZT_T0 + 7);
    zt_expect_empty(engine);
    s_applied(engine, "R3", 1, 2, ZM_STATUS_OK, S_OK, ZT_T0 + 7);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, S_OK);
    zt_expect_reply(engine, "C1", 6, ZM_STATUS_OK, S_OK);
    zt_expect_empty(engine);
}

//  A donor that holds nothing yet sends its snapshot at (0, 0): relayed, and
//  the joiner is current.
static void
test_repl_snapshot_of_nothing(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 7, 7, ZT_T0 + 1);
    uint64_t token = s_expect_sync(engine, "R1");
    s_snapshot(engine, "R1", token, 0, 0, 0, false, ZT_BYTES("\xc4\x01" "a"), ZT_T0 + 2);
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, "R3");
    zt_assert_cmd(out, ZM_CMD_SNAPSHOT);
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.workers_kicked, 0);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 3);
    const msgpack_object *set = zt_status_entry(status, "replicated", "service", S_KV);
    const msgpack_object *third = &zt_map_get(set, "members")->via.array.ptr[2];
    assert_true(zt_str_is(zt_map_get(third, "state"), "current"));
}

//  A current replica that needs a snapshot gets one SYNC asked for it.
static void
test_repl_one_sync(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 0, 0, ZT_T0);
    s_missing(engine, "R2", 99, 5, ZT_T0 + 1);
    s_expect_sync(engine, "R1");
    zt_expect_empty(engine);
    assert_int_equal(engine->counters.catchups, 1);
}

//  Never more than N members: a fourth replica of a 3-replica service waits
//  (503) until one leaves; then it is let in.
static void
test_repl_at_most_n(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 0, 0, ZT_T0);
    s_join(engine, "R4", 3, 0, 0, 0, ZT_T0);
    zt_expect_disconnect(engine, "R4", ZM_STATUS_BUSY, "its 3 replicas");
    zt_leave(engine, "R3", ZT_T0 + 1);
    s_join(engine, "R4", 3, 0, 0, 0, ZT_T0 + 2);
    zt_expect_empty(engine);                            //  current at once: seq 0 of epoch 1
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_int_equal(zlistx_size(service->replset->members), 3);
}

//  The only current replica says MISSING of what the buffer holds: it gets
//  the writes again and the set goes on.
static void
test_repl_missing_keeps_set(void **state)
{
    zm_engine_t *engine = *state;
    s_join(engine, "R1", 1, 0, 0, 0, ZT_T0);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        s_write(engine, "C1", 10 + seq, ZM_CALL_WRITE, 0, ZT_T0 + 1);
        s_expect_write(engine, "R1", 1, seq, 10 + seq, 0);
    }
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    zt_expect_reply(engine, "C1", 11, ZM_STATUS_OK, S_OK);
    s_missing(engine, "R1", 1, 1, ZT_T0 + 3);
    s_expect_write(engine, "R1", 1, 2, 12, 0);
    zt_expect_empty(engine);
    s_applied(engine, "R1", 1, 2, ZM_STATUS_OK, S_OK, ZT_T0 + 4);
    zt_expect_reply(engine, "C1", 12, ZM_STATUS_OK, S_OK);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_true(service->replset->epoch == 1);
}

//  A replica that joins again on a new connection with its id replaces its
//  old session: one replica is one member, and it counts once for N-W+1.
static void
test_repl_same_replica_rejoins(void **state)
{
    zm_engine_t *engine = *state;
    s_join_id(engine, "R1", 3, 0, 0, 0, 77, ZT_T0);
    s_join_id(engine, "R1b", 3, 0, 0, 0, 77, ZT_T0 + 1);    //  R1 again: not a second
    zt_expect_empty(engine);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_true(service->replset->epoch == 0);               //  still one of R = 2
    assert_int_equal(zlistx_size(service->replset->members), 1);
    assert_null(zhashx_lookup(engine->workers, "5231"));
    s_join_id(engine, "R2", 3, 0, 0, 0, 78, ZT_T0 + 2);
    assert_true(service->replset->epoch == 1);
    s_drain(engine);
    assert_int_equal(engine->counters.sessions_replaced, 1);
}

//  A quorum holds a write whose every APPLIED was lost (its replicas joined
//  again before they went): the client is answered 502, resend with the same
//  id, instead of waiting for an answer that never comes.
static void
test_repl_held_without_reply(void **state)
{
    zm_engine_t *engine = *state;
    s_join_id(engine, "R1", 3, 2, 0, 0, 11, ZT_T0);
    s_join_id(engine, "R2", 3, 2, 0, 0, 12, ZT_T0);
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R1", 1, 1, 5, 0);
    s_expect_write(engine, "R2", 1, 1, 5, 0);
    s_join_id(engine, "R1b", 3, 2, 1, 1, 11, ZT_T0 + 2);
    zt_expect_empty(engine);
    s_join_id(engine, "R2b", 3, 2, 1, 1, 12, ZT_T0 + 2);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "same request id");
    zt_expect_empty(engine);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_int_equal(service->replset->unanswered, 0);
    assert_int_equal(engine->counters.sessions_replaced, 2);
}

//  The only current replica on a new connection: the set goes on (its new
//  session gets the write it had not applied), nobody is sent away.
static void
test_repl_rejoin_keeps_set(void **state)
{
    zm_engine_t *engine = *state;
    s_join_id(engine, "R1", 3, 2, 0, 0, 1, ZT_T0);
    s_join_id(engine, "R2", 3, 2, 4, 9, 2, ZT_T0);     //  reference; R1 catching
    s_expect_sync(engine, "R2");
    s_write(engine, "C1", 5, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    s_expect_write(engine, "R2", 5, 10, 5, 0);
    s_join_id(engine, "R2b", 3, 2, 4, 9, 2, ZT_T0 + 2);
    s_expect_write(engine, "R2b", 5, 10, 5, 0);
    zt_expect_empty(engine);
    s_applied(engine, "R2b", 5, 10, ZM_STATUS_OK, S_OK, ZT_T0 + 3);
    s_expect_sync(engine, "R2b");                       //  current again: R1's donor
    zt_expect_empty(engine);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_true(service->replset->epoch == 5);
}

//  A replica far behind is sent at most ZM_REPLSET_WINDOW writes it has not
//  applied; the rest follow as it applies.
static void
test_repl_window(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    for (uint64_t id = 1; id <= ZM_REPLSET_WINDOW + 10; id++)
        s_write(engine, "C1", id, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    zm_member_t *first = zlistx_first(service->replset->members);
    assert_true(first->sent == ZM_REPLSET_WINDOW && first->applied == 0);
    s_drain(engine);
    s_applied(engine, "R1", 1, 1, ZM_STATUS_OK, S_OK, ZT_T0 + 2);
    s_expect_write(engine, "R1", 1, ZM_REPLSET_WINDOW + 1, ZM_REPLSET_WINDOW + 1, 0);
    zt_expect_empty(engine);
}

//  Each broker start moves its epochs up by a random salt.
static void
test_repl_epoch_salt(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.epoch_salt = ZM_EPOCH_SALT_RANGE + 7;
    s_start_two(engine);
    zm_service_t *service = zhashx_lookup(engine->services, S_KV);
    assert_true(service->replset->epoch == 1 + 7);
}

//  The engine is destroyed with writes waiting and a snapshot in flight:
//  everything is freed (the sanitizer build checks).
static void
test_repl_teardown_busy(void **state)
{
    zm_engine_t *engine = *state;
    s_start_two(engine);
    s_join(engine, "R3", 3, 0, 7, 7, ZT_T0);
    s_expect_sync(engine, "R1");
    for (uint64_t id = 1; id <= 100; id++)
        s_write(engine, "C1", id, ZM_CALL_WRITE, 0, ZT_T0 + 1);
    assert_int_equal(engine->counters.writes, 100);
}

#define S_TEST(name) cmocka_unit_test_setup_teardown(name, zt_setup, zt_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        S_TEST(test_repl_write_quorum),
        S_TEST(test_repl_reads),
        S_TEST(test_repl_reference_and_snapshot),
        S_TEST(test_repl_buffer_catch_up),
        S_TEST(test_repl_lost_ack),
        S_TEST(test_repl_divergence),
        S_TEST(test_repl_stop_and_restart),
        S_TEST(test_repl_deadline),
        S_TEST(test_repl_refusals),
        S_TEST(test_repl_snapshot_deadline),
        S_TEST(test_repl_snapshot_credits_held),
        S_TEST(test_repl_snapshot_of_nothing),
        S_TEST(test_repl_one_sync),
        S_TEST(test_repl_at_most_n),
        S_TEST(test_repl_missing_keeps_set),
        S_TEST(test_repl_same_replica_rejoins),
        S_TEST(test_repl_held_without_reply),
        S_TEST(test_repl_rejoin_keeps_set),
        S_TEST(test_repl_window),
        S_TEST(test_repl_epoch_salt),
        S_TEST(test_repl_teardown_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
