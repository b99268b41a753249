//  test_engine_pipe - the broker's pipeline logic (ZMP.md section 16), driven
//  with fabricated messages and an explicit clock: seq order and go-back-N,
//  the bound and RESUME, credit, acks, redelivery after a lost consumer,
//  DONE, poison messages, the push endpoint, and what status shows.
#include "engine_fixture.h"

#include <string.h>


#define S_PIPE "nums"

//  Inputs.

static void
s_push(zm_engine_t *engine, const char *producer, uint64_t seq, uint32_t flags, zt_bytes_t body,
       int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_PUSH;
    snprintf(command.service, sizeof command.service, "%s", S_PIPE);
    command.id = seq;
    command.flags = flags;
    command.body = zframe_new(body.data, body.size);
    zt_feed(engine, producer, &command, now);
}

static void
s_consume(zm_engine_t *engine, const char *consumer, uint32_t credit, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CONSUME;
    snprintf(command.service, sizeof command.service, "%s", S_PIPE);
    command.credit = credit;
    command.heartbeat_ms = ZT_HEARTBEAT_MS;
    command.liveness = ZT_LIVENESS;
    zt_feed(engine, consumer, &command, now);
}

static void
s_ack(zm_engine_t *engine, const char *consumer, const uint64_t *ids, uint32_t count,
      int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_ACK;
    command.ack_count = count;
    memcpy(command.acks, ids, count * sizeof ids[0]);
    zt_feed(engine, consumer, &command, now);
}

static void
s_ack1(zm_engine_t *engine, const char *consumer, uint64_t id, int64_t now)
{
    s_ack(engine, consumer, &id, 1, now);
}

//  Expectations.

static const zt_out_t *
s_expect(zm_engine_t *engine, const char *peer, zm_cmd_t cmd)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, cmd);
    zt_assert_peer(out, peer);
    if (cmd != ZM_CMD_HEARTBEAT && cmd != ZM_CMD_DISCONNECT && cmd != ZM_CMD_ACK)
        assert_string_equal(out->command.service, S_PIPE);
    return out;
}

static void
s_expect_accept(zm_engine_t *engine, const char *producer, uint64_t seq)
{
    assert_int_equal(s_expect(engine, producer, ZM_CMD_ACCEPT)->command.id, seq);
}

static void
s_expect_refuse(zm_engine_t *engine, const char *producer, uint64_t seq, uint32_t status)
{
    const zt_out_t *out = s_expect(engine, producer, ZM_CMD_REFUSE);
    assert_int_equal(out->command.id, seq);
    assert_int_equal(out->command.status, status);
}

static void
s_expect_done(zm_engine_t *engine, const char *producer, uint64_t seq, uint32_t status)
{
    const zt_out_t *out = s_expect(engine, producer, ZM_CMD_DONE);
    assert_int_equal(out->command.id, seq);
    assert_int_equal(out->command.status, status);
}

//  Expects a DELIVER of body at its attempt; returns the message id.
static uint64_t
s_expect_deliver(zm_engine_t *engine, const char *consumer, zt_bytes_t body, uint32_t attempt)
{
    const zt_out_t *out = s_expect(engine, consumer, ZM_CMD_DELIVER);
    zt_assert_body(out->command.body, body);
    assert_int_equal(out->command.attempt, attempt);
    assert_true(out->command.id > 0);
    return out->command.id;
}

//  P pushes 1, 2, 3 (bodies 1, 2, 3): taken, one ACCEPT for the run.
static void
s_fill(zm_engine_t *engine, uint32_t flags)
{
    for (int seq = 1; seq <= 3; seq++)
        s_push(engine, "P", (uint64_t) seq, flags, zt_fixint(seq), ZT_T0);
    s_expect_accept(engine, "P", 3);
    zt_expect_empty(engine);
}

static void
test_order_and_credit(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C", 2, ZT_T0 + 1);
    uint64_t id1 = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    uint64_t id2 = s_expect_deliver(engine, "C", zt_fixint(2), 1);
    zt_expect_empty(engine);                    //  credit 2: the third waits
    s_ack1(engine, "C", id1, ZT_T0 + 2);
    uint64_t id3 = s_expect_deliver(engine, "C", zt_fixint(3), 1);
    zt_expect_empty(engine);
    assert_true(id1 < id2 && id2 < id3);
    uint64_t rest[] = {id2, id3};
    s_ack(engine, "C", rest, 2, ZT_T0 + 3);
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 3, .acks = 3);
}

static void
test_full_refuses_then_resumes(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);                          //  the bound is ZT_MAX_QUEUE = 3
    s_push(engine, "P", 4, 0, zt_fixint(4), ZT_T0);
    s_expect_refuse(engine, "P", 4, ZM_STATUS_BUSY);
    s_push(engine, "P", 5, 0, zt_fixint(5), ZT_T0);     //  after a refused one: skipped
    zt_expect_empty(engine);
    s_consume(engine, "C", 1, ZT_T0 + 1);
    uint64_t id1 = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    zt_expect_empty(engine);                    //  delivered is still held: no room yet
    s_ack1(engine, "C", id1, ZT_T0 + 2);
    assert_int_equal(s_expect(engine, "P", ZM_CMD_RESUME)->command.id, 4);   //  room for one
    s_expect_deliver(engine, "C", zt_fixint(2), 1);
    zt_expect_empty(engine);
    s_push(engine, "P", 4, 0, zt_fixint(4), ZT_T0 + 3);   //  the resend, from the refused seq
    s_push(engine, "P", 5, 0, zt_fixint(5), ZT_T0 + 3);
    s_expect_refuse(engine, "P", 5, ZM_STATUS_BUSY);     //  room for one only
    s_expect_accept(engine, "P", 4);
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 7, .pushes_accepted = 4, .refused_full = 2, .skipped_pushes = 1,
                .deliveries = 2, .acks = 1);
}

static void
test_grants_pace_a_refused_producer(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);                          //  the bound is 3
    s_push(engine, "P", 4, 0, zt_fixint(4), ZT_T0);
    s_expect_refuse(engine, "P", 4, ZM_STATUS_BUSY);
    s_consume(engine, "C", 1, ZT_T0);
    uint64_t id = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_ack1(engine, "C", id, ZT_T0 + 1);         //  room for one: seq 4 granted
    assert_int_equal(s_expect(engine, "P", ZM_CMD_RESUME)->command.id, 4);
    id = s_expect_deliver(engine, "C", zt_fixint(2), 1);
    zt_expect_empty(engine);
    s_push(engine, "P", 4, 0, zt_fixint(4), ZT_T0 + 2);  //  uses the grant up
    s_expect_accept(engine, "P", 4);
    zt_expect_empty(engine);                    //  full: the next grant waits for room
    s_ack1(engine, "C", id, ZT_T0 + 3);
    assert_int_equal(s_expect(engine, "P", ZM_CMD_RESUME)->command.id, 5);
    s_expect_deliver(engine, "C", zt_fixint(3), 1);
    zt_expect_empty(engine);                    //  paced without a second refusal
    ZT_COUNTERS(.pushes = 5, .pushes_accepted = 4, .refused_full = 1, .deliveries = 3, .acks = 2);
}

static void
test_big_refused_body_waits_for_its_room(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.max_queue = 10;              //  the byte bound decides here
    engine->config.max_queue_bytes = 12;
    for (int seq = 1; seq <= 3; seq++)
        s_push(engine, "P", (uint64_t) seq, 0, ZT_BYTES("\xa3" "abc"), ZT_T0);
    s_expect_accept(engine, "P", 3);            //  12 bytes held
    s_push(engine, "Q", 1, 0, ZT_BYTES("\xa7" "abcdefg"), ZT_T0);
    s_expect_refuse(engine, "Q", 1, ZM_STATUS_BUSY);
    s_consume(engine, "C", 1, ZT_T0);
    uint64_t id = s_expect_deliver(engine, "C", ZT_BYTES("\xa3" "abc"), 1);
    s_ack1(engine, "C", id, ZT_T0 + 1);         //  8 held: a quarter free, but 8 more do not fit
    id = s_expect_deliver(engine, "C", ZT_BYTES("\xa3" "abc"), 1);
    zt_expect_empty(engine);                    //  no RESUME that would only be refused
    s_ack1(engine, "C", id, ZT_T0 + 2);         //  4 held: now it fits
    s_expect(engine, "Q", ZM_CMD_RESUME);
    s_expect_deliver(engine, "C", ZT_BYTES("\xa3" "abc"), 1);
    zt_expect_empty(engine);
}

static void
test_resend_of_settled_is_accepted_again(void **state)
{
    zm_engine_t *engine = *state;
    s_push(engine, "P", 1, 0, zt_fixint(1), ZT_T0);
    s_push(engine, "P", 2, 0, zt_fixint(2), ZT_T0);
    s_expect_accept(engine, "P", 2);
    s_push(engine, "P", 1, 0, zt_fixint(1), ZT_T0 + 1);   //  the ACCEPT was lost, say
    s_expect_accept(engine, "P", 2);
    s_consume(engine, "C", 5, ZT_T0 + 2);
    s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_expect_deliver(engine, "C", zt_fixint(2), 1);
    zt_expect_empty(engine);                    //  taken once only
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 2, .duplicate_pushes = 1, .deliveries = 2);
}

static void
test_unannounced_gap_sends_producer_back(void **state)
{
    zm_engine_t *engine = *state;
    s_push(engine, "P", 7, 0, zt_fixint(7), ZT_T0);       //  a link starts where it starts
    s_push(engine, "P", 9, 0, zt_fixint(9), ZT_T0);
    s_expect_refuse(engine, "P", 8, ZM_STATUS_BUSY);
    //  There is room: resend at once, one message; the next grant follows it.
    assert_int_equal(s_expect(engine, "P", ZM_CMD_RESUME)->command.id, 8);
    s_expect_accept(engine, "P", 7);
    zt_expect_empty(engine);
}

static void
test_links_are_per_producer(void **state)
{
    zm_engine_t *engine = *state;
    s_push(engine, "P", 1, 0, zt_fixint(1), ZT_T0);
    s_push(engine, "Q", 1, 0, zt_fixint(2), ZT_T0);
    s_expect_accept(engine, "P", 1);
    s_expect_accept(engine, "Q", 1);
    zt_expect_empty(engine);
}

static void
test_lost_consumer_redelivers_in_order(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C1", 2, ZT_T0 + 1);
    uint64_t id1 = s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    uint64_t id2 = s_expect_deliver(engine, "C1", zt_fixint(2), 1);
    zt_leave(engine, "C1", ZT_T0 + 2);          //  DISCONNECT holding both
    zt_expect_empty(engine);
    s_consume(engine, "C2", 3, ZT_T0 + 3);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(1), 2), id1);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(2), 2), id2);
    s_expect_deliver(engine, "C2", zt_fixint(3), 1);
    zt_expect_empty(engine);
    s_ack1(engine, "C1", id1, ZT_T0 + 4);       //  a late ack from the gone session
    zt_expect_disconnect(engine, "C1", ZM_STATUS_MALFORMED, "not registered");
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 5, .redeliveries = 2,
                .stray_acks = 1);
}

static void
test_silent_consumer_expires(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C1", 1, ZT_T0);
    uint64_t id1 = s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    s_consume(engine, "C2", 1, ZT_T0);
    uint64_t id2 = s_expect_deliver(engine, "C2", zt_fixint(2), 1);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS);
    char first[ZT_HEX_MAX];
    const zt_out_t *out = zt_pop(engine);       //  one each, in the table's order
    zt_assert_cmd(out, ZM_CMD_HEARTBEAT);
    snprintf(first, sizeof first, "%s", out->peer);
    zt_expect_heartbeat(engine, strcmp(first, "4331") == 0 ? "C2" : "C1");
    zt_heartbeat(engine, "C2", ZT_T0 + 2000);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS * ZT_LIVENESS);
    zt_expect_heartbeat(engine, "C2");
    zt_expect_empty(engine);                    //  C1 expired; C2 has no credit left
    s_ack1(engine, "C2", id2, ZT_T0 + 3001);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(1), 2), id1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 3, .redeliveries = 1,
                .acks = 1, .consumers_expired = 1);
}

//  Each consumer is heartbeated on its own clock, when due and not before;
//  one heard from lives on, a silent one dies at its own time, and one
//  that left is sent nothing more.
static void
test_consumers_heartbeated_when_due(void **state)
{
    zm_engine_t *engine = *state;
    s_consume(engine, "C1", 1, ZT_T0);
    s_consume(engine, "C2", 1, ZT_T0 + 250);
    s_consume(engine, "C3", 1, ZT_T0 + 550);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 999);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 1000);
    zt_expect_heartbeat(engine, "C1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 1249);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 1300);
    zt_expect_heartbeat(engine, "C2");
    zt_expect_empty(engine);
    zt_leave(engine, "C3", ZT_T0 + 1400);
    zm_engine_on_tick(engine, ZT_T0 + 1600);    //  C3 would have been due at +1550
    zt_expect_empty(engine);
    zt_heartbeat(engine, "C1", ZT_T0 + 1700);
    zm_engine_on_tick(engine, ZT_T0 + 2000);
    zt_expect_heartbeat(engine, "C1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 2300);
    zt_expect_heartbeat(engine, "C2");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 3000);    //  C1 was heard at +1700: alive
    zt_expect_heartbeat(engine, "C1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 3249);
    zt_expect_empty(engine);
    ZT_COUNTERS(0);
    zm_engine_on_tick(engine, ZT_T0 + 3250);    //  C2: silent since its CONSUME
    zt_expect_empty(engine);
    ZT_COUNTERS(.consumers_expired = 1);
    zm_engine_on_tick(engine, ZT_T0 + 4699);
    zt_expect_heartbeat(engine, "C1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 4700);    //  C1: silent since +1700
    zt_expect_empty(engine);
    ZT_COUNTERS(.consumers_expired = 2);
    zm_engine_on_tick(engine, ZT_T0 + 60000);
    zt_expect_empty(engine);
    assert_int_equal(zm_liveness_sched_size(engine->consumer_beats), 0);
}

static void
test_slow_consumer_does_not_hold_up_fast_one(void **state)
{
    zm_engine_t *engine = *state;
    s_consume(engine, "SLOW", 1, ZT_T0);
    s_consume(engine, "FAST", 1, ZT_T0);
    for (int seq = 1; seq <= 3; seq++)
        s_push(engine, "P", (uint64_t) seq, 0, zt_fixint(seq), ZT_T0);
    s_expect_deliver(engine, "SLOW", zt_fixint(1), 1);
    uint64_t id = s_expect_deliver(engine, "FAST", zt_fixint(2), 1);
    s_expect_accept(engine, "P", 3);            //  owed ACCEPTs go out last
    zt_expect_empty(engine);
    s_ack1(engine, "FAST", id, ZT_T0 + 1);      //  SLOW never acks
    s_expect_deliver(engine, "FAST", zt_fixint(3), 1);
    zt_expect_empty(engine);
}

static void
test_processed_gets_done(void **state)
{
    zm_engine_t *engine = *state;
    s_push(engine, "P", 1, ZM_PUSH_DONE, zt_fixint(1), ZT_T0);
    s_push(engine, "P", 2, 0, zt_fixint(2), ZT_T0);
    s_expect_accept(engine, "P", 2);
    s_consume(engine, "C", 2, ZT_T0 + 1);
    uint64_t id1 = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    uint64_t id2 = s_expect_deliver(engine, "C", zt_fixint(2), 1);
    s_ack1(engine, "C", id2, ZT_T0 + 2);
    zt_expect_empty(engine);                    //  2 did not ask for DONE
    s_ack1(engine, "C", id1, ZT_T0 + 3);
    s_expect_done(engine, "P", 1, ZM_STATUS_OK);
    zt_expect_empty(engine);
}

//  Each message remembers whom to answer DONE, across a lost consumer and
//  among fresh messages taken after it went back.
static void
test_done_goes_to_each_producer_after_redelivery(void **state)
{
    zm_engine_t *engine = *state;
    s_push(engine, "P", 1, ZM_PUSH_DONE, zt_fixint(1), ZT_T0);
    s_push(engine, "Q", 1, ZM_PUSH_DONE, zt_fixint(2), ZT_T0);
    s_expect_accept(engine, "P", 1);
    s_expect_accept(engine, "Q", 1);
    s_consume(engine, "C1", 2, ZT_T0 + 1);
    uint64_t id1 = s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    uint64_t id2 = s_expect_deliver(engine, "C1", zt_fixint(2), 1);
    zt_leave(engine, "C1", ZT_T0 + 2);
    s_push(engine, "P", 2, ZM_PUSH_DONE, zt_fixint(3), ZT_T0 + 3);
    s_expect_accept(engine, "P", 2);
    zt_expect_empty(engine);
    s_consume(engine, "C2", 3, ZT_T0 + 4);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(1), 2), id1);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(2), 2), id2);
    uint64_t id3 = s_expect_deliver(engine, "C2", zt_fixint(3), 1);
    uint64_t acks[] = {id2, id3, id1};
    s_ack(engine, "C2", acks, 3, ZT_T0 + 5);
    s_expect_done(engine, "Q", 1, ZM_STATUS_OK);
    s_expect_done(engine, "P", 2, ZM_STATUS_OK);
    s_expect_done(engine, "P", 1, ZM_STATUS_OK);
    zt_expect_empty(engine);
}

static void
test_poison_message_is_given_up(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.max_deliveries = 2;
    s_push(engine, "P", 1, ZM_PUSH_DONE, zt_fixint(1), ZT_T0);
    s_expect_accept(engine, "P", 1);
    s_consume(engine, "C1", 1, ZT_T0);
    s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    zt_send_failed(engine, "C1", false, ZT_T0 + 1);       //  died holding it
    s_consume(engine, "C2", 1, ZT_T0 + 2);
    s_expect_deliver(engine, "C2", zt_fixint(1), 2);
    zt_leave(engine, "C2", ZT_T0 + 3);
    s_expect_done(engine, "P", 1, ZM_STATUS_WORKER_LOST);
    zt_expect_empty(engine);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 4);
    const msgpack_object *pipelines = zt_map_get(status->root, "pipelines");
    const msgpack_object *pipe = zt_map_get(pipelines, S_PIPE);
    assert_int_equal(zt_map_uint(zt_map_get(pipe, "drops"), "poison"), 1);
    assert_int_equal(zt_map_uint(pipe, "queued"), 0);
}

static void
test_bad_body_refused_alone(void **state)
{
    zm_engine_t *engine = *state;
    //  Header of PUSH "nums" seq 1 flags 0, with a body that is not msgpack.
    zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\x95\xa4ZMP1\xa4PUSH\xa4nums\x01\x00"),
                           ZT_BYTES("\xc1")};
    zt_feed_raw(engine, "P", frames, 3, ZT_T0);
    s_expect_refuse(engine, "P", 1, ZM_STATUS_MALFORMED);
    s_push(engine, "P", 2, 0, zt_fixint(2), ZT_T0);
    s_expect_accept(engine, "P", 2);
    zt_expect_empty(engine);
    s_push(engine, "P", 0, 0, zt_fixint(3), ZT_T0);       //  seq 0 is for the push endpoint
    s_expect_refuse(engine, "P", 0, ZM_STATUS_MALFORMED);
}

static void
test_consumer_may_not_push(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C", 1, ZT_T0);
    s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_push(engine, "C", 1, 0, zt_fixint(1), ZT_T0 + 1);
    zt_expect_disconnect(engine, "C", ZM_STATUS_MALFORMED, "consumer");
    zt_expect_empty(engine);
    s_consume(engine, "C2", 1, ZT_T0 + 2);
    s_expect_deliver(engine, "C2", zt_fixint(1), 2);
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 2, .redeliveries = 1,
                .consumers_kicked = 1);
}

static void
test_release_gives_back_unseen(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C1", 3, ZT_T0);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = s_expect_deliver(engine, "C1", zt_fixint(i + 1), 1);
    s_ack1(engine, "C1", ids[0], ZT_T0 + 1);    //  handled the first, not the others
    zm_proto_t release;
    zm_proto_init(&release);
    release.cmd = ZM_CMD_RELEASE;
    release.ack_count = 2;
    release.acks[0] = ids[1];
    release.acks[1] = ids[2];
    zt_feed(engine, "C1", &release, ZT_T0 + 2);
    zt_expect_empty(engine);                    //  C1 is leaving: nothing more for it
    s_consume(engine, "C2", 3, ZT_T0 + 3);      //  first in line, attempt 1 still
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(2), 1), ids[1]);
    assert_int_equal(s_expect_deliver(engine, "C2", zt_fixint(3), 1), ids[2]);
    zt_expect_empty(engine);
    zt_leave(engine, "C1", ZT_T0 + 4);
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 5, .acks = 1, .released = 2);
}

static void
test_stray_ack_ignored(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C1", 1, ZT_T0);
    uint64_t id1 = s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    s_consume(engine, "C2", 1, ZT_T0);
    s_expect_deliver(engine, "C2", zt_fixint(2), 1);
    s_ack1(engine, "C2", id1, ZT_T0 + 1);       //  not C2's
    s_ack1(engine, "C2", 999999, ZT_T0 + 1);    //  nobody's
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 3, .pushes_accepted = 3, .deliveries = 2, .stray_acks = 2);
}

//  A message off the push endpoint: [header][body], no delimiter.
static void
s_push_plain(zm_engine_t *engine, zt_bytes_t header, zt_bytes_t body, int64_t now)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, header.data, header.size);
    zmsg_addmem(msg, body.data, body.size);
    zm_engine_on_push(engine, &msg, NULL, now);
    assert_null(msg);
}

#define S_PLAIN_HEADER ZT_BYTES("\x95\xa4ZMP1\xa4PUSH\xa4nums\x00\x00")

static void
test_push_endpoint_blocks_when_full(void **state)
{
    zm_engine_t *engine = *state;
    for (int i = 1; i <= 3; i++)
        s_push_plain(engine, S_PLAIN_HEADER, zt_fixint(i), ZT_T0);
    assert_false(zm_engine_push_blocked(engine));
    s_push_plain(engine, S_PLAIN_HEADER, zt_fixint(4), ZT_T0);
    assert_true(zm_engine_push_blocked(engine));        //  kept, not dropped
    zt_expect_empty(engine);
    s_consume(engine, "C", 1, ZT_T0 + 1);
    uint64_t id = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_ack1(engine, "C", id, ZT_T0 + 2);
    assert_false(zm_engine_push_blocked(engine));
    for (int i = 2; i <= 4; i++) {
        id = s_expect_deliver(engine, "C", zt_fixint(i), 1);
        s_ack1(engine, "C", id, ZT_T0 + 3);
    }
    zt_expect_empty(engine);
    ZT_COUNTERS(.pushes = 4, .pushes_accepted = 4, .deliveries = 4, .acks = 4);
}

static void
test_parked_message_goes_first(void **state)
{
    zm_engine_t *engine = *state;
    for (int i = 1; i <= 3; i++)
        s_push_plain(engine, S_PLAIN_HEADER, zt_fixint(i), ZT_T0);
    s_push_plain(engine, S_PLAIN_HEADER, zt_fixint(4), ZT_T0);      //  parked
    s_consume(engine, "C", 1, ZT_T0);
    uint64_t id = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_ack1(engine, "C", id, ZT_T0 + 1);         //  room for one: the parked message
    assert_false(zm_engine_push_blocked(engine));
    id = s_expect_deliver(engine, "C", zt_fixint(2), 1);
    s_push(engine, "P", 1, 0, zt_fixint(5), ZT_T0 + 2);   //  no room left for P
    s_expect_refuse(engine, "P", 1, ZM_STATUS_BUSY);
    zt_expect_empty(engine);
}

static void
test_redelivered_in_taken_order(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_consume(engine, "C1", 1, ZT_T0);
    uint64_t id1 = s_expect_deliver(engine, "C1", zt_fixint(1), 1);
    s_consume(engine, "C2", 1, ZT_T0);
    uint64_t id2 = s_expect_deliver(engine, "C2", zt_fixint(2), 1);
    s_consume(engine, "C3", 1, ZT_T0);
    s_expect_deliver(engine, "C3", zt_fixint(3), 1);
    zt_leave(engine, "C1", ZT_T0 + 1);          //  1 goes back first...
    zt_leave(engine, "C2", ZT_T0 + 1);          //  ...then 2, which must not pass it
    zt_expect_empty(engine);
    s_consume(engine, "C4", 2, ZT_T0 + 2);
    assert_int_equal(s_expect_deliver(engine, "C4", zt_fixint(1), 2), id1);
    assert_int_equal(s_expect_deliver(engine, "C4", zt_fixint(2), 2), id2);
    zt_expect_empty(engine);
}

static void
test_push_endpoint_drops_bad_input_counted(void **state)
{
    zm_engine_t *engine = *state;
    s_push_plain(engine, ZT_BYTES("\x93\xa4ZMP1\xa4PUSH\xa4nums"), zt_fixint(1), ZT_T0);
    s_push_plain(engine, S_PLAIN_HEADER, ZT_BYTES("\xc1"), ZT_T0);
    s_push_plain(engine, ZT_BYTES("\x95\xa4ZMP1\xa4PUSH\xaazmesh.nums\x00\x00"), zt_fixint(1),
                 ZT_T0);
    s_push_plain(engine, ZT_BYTES("garbage"), zt_fixint(1), ZT_T0);
    assert_false(zm_engine_push_blocked(engine));
    zt_expect_empty(engine);                    //  nobody to answer
    ZT_COUNTERS(.pushes = 4, .dropped_push_malformed = 4);
}

static void
test_status_shows_pipeline(void **state)
{
    zm_engine_t *engine = *state;
    s_fill(engine, 0);
    s_push(engine, "P", 4, 0, zt_fixint(4), ZT_T0);
    s_expect_refuse(engine, "P", 4, ZM_STATUS_BUSY);
    s_consume(engine, "C", 2, ZT_T0);
    s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_expect_deliver(engine, "C", zt_fixint(2), 1);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 1);
    const msgpack_object *pipe = zt_map_get(zt_map_get(status->root, "pipelines"), S_PIPE);
    assert_non_null(pipe);
    assert_int_equal(zt_map_uint(pipe, "queued"), 1);
    assert_int_equal(zt_map_uint(pipe, "in_flight"), 2);
    assert_int_equal(zt_map_uint(pipe, "delivered"), 2);
    assert_int_equal(zt_map_uint(pipe, "acked"), 0);
    assert_int_equal(zt_map_uint(pipe, "consumers"), 1);
    assert_int_equal(zt_map_uint(pipe, "credit"), 2);
    assert_int_equal(zt_map_uint(pipe, "free_credit"), 0);
    assert_int_equal(zt_map_uint(pipe, "waiting_producers"), 1);
    assert_int_equal(zt_map_uint(pipe, "refused_full"), 1);
    assert_int_equal(zt_map_uint(zt_map_get(pipe, "drops"), "push_malformed"), 0);
}

static void
test_idle_pipeline_forgotten(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.link_idle_ms = 1000;
    s_push(engine, "P", 1, 0, zt_fixint(1), ZT_T0);
    s_expect_accept(engine, "P", 1);
    s_consume(engine, "C", 1, ZT_T0);
    uint64_t id = s_expect_deliver(engine, "C", zt_fixint(1), 1);
    s_ack1(engine, "C", id, ZT_T0);
    zt_leave(engine, "C", ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + 500);
    assert_int_equal(zhashx_size(engine->pipelines), 1);     //  the link keeps it
    zm_engine_on_tick(engine, ZT_T0 + 1000);
    assert_int_equal(zhashx_size(engine->links), 1);        //  links are swept each second
    zm_engine_on_tick(engine, ZT_T0 + 1500);                 //  the link goes
    assert_int_equal(zhashx_size(engine->links), 0);
    zm_engine_on_tick(engine, ZT_T0 + 1500 + ZT_GRACE_MS);
    assert_int_equal(zhashx_size(engine->pipelines), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_credit, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_full_refuses_then_resumes, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_grants_pace_a_refused_producer, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_big_refused_body_waits_for_its_room, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_resend_of_settled_is_accepted_again, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_unannounced_gap_sends_producer_back, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_links_are_per_producer, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_lost_consumer_redelivers_in_order, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_silent_consumer_expires, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_consumers_heartbeated_when_due, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_slow_consumer_does_not_hold_up_fast_one, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_done_goes_to_each_producer_after_redelivery,
                                        zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_processed_gets_done, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_poison_message_is_given_up, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_body_refused_alone, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_consumer_may_not_push, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_release_gives_back_unseen, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_stray_ack_ignored, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_push_endpoint_blocks_when_full, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_parked_message_goes_first, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_in_taken_order, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_push_endpoint_drops_bad_input_counted, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_status_shows_pipeline, zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_idle_pipeline_forgotten, zt_setup, zt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
