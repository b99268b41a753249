//  test_proto_pipe.c - unit tests of the codec's pipeline commands (ZMP.md
//  section 16.2): PUSH ACCEPT REFUSE RESUME DONE CONSUME DELIVER ACK encode
//  and decode back with all their fields; every field's range edges are
//  accepted and the values just past them refused with 400; wrong field and
//  frame counts are refused; a PUSH refused for its frames or body still
//  yields its pipeline and seq, so the broker can answer REFUSE(seq); and one
//  header per direction is compared byte for byte with a header written by
//  hand from the spec's grammar, so the spec and the codec cannot drift.
//  After each refusal a good message still decodes into the same struct. No
//  sockets, no sleeps; a fixture owns every allocation.

#include "proto_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A good message of each command, with seq or message id 7.
static void
s_good(zt_proto_fixture_t *fx, zm_cmd_t cmd)
{
    int bodies = 0;
    switch (cmd) {
    case ZM_CMD_PUSH:
        zt_proto_header(fx, "PUSH", "suu", "jobs", U(7), U(0));
        bodies = 1;
        break;
    case ZM_CMD_ACCEPT:
        zt_proto_header(fx, "ACCEPT", "su", "jobs", U(7));
        break;
    case ZM_CMD_REFUSE:
        zt_proto_header(fx, "REFUSE", "suu", "jobs", U(7), U(503));
        bodies = 1;
        break;
    case ZM_CMD_RESUME:
        zt_proto_header(fx, "RESUME", "su", "jobs", U(256));
        break;
    case ZM_CMD_DONE:
        zt_proto_header(fx, "DONE", "suu", "jobs", U(7), U(200));
        break;
    case ZM_CMD_CONSUME:
        zt_proto_header(fx, "CONSUME", "suuu", "jobs", U(10), U(1000), U(3));
        break;
    case ZM_CMD_DELIVER:
        zt_proto_header(fx, "DELIVER", "suu", "jobs", U(7), U(1));
        bodies = 1;
        break;
    case ZM_CMD_RELEASE:
        zt_proto_header(fx, "RELEASE", "u", U(7));
        break;
    default:
        zt_proto_header(fx, "ACK", "u", U(7));
        break;
    }
    zt_proto_message(fx, bodies, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, zm_proto_cmd_name(cmd));
    assert_int_equal(fx->self.cmd, cmd);
    assert_true(cmd == ZM_CMD_RESUME || cmd == ZM_CMD_CONSUME || fx->self.id == 7);
}

//  ---------------------------------------------------------------------
//  Round trips

static void
test_proto_pipe_round_trips_push(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint64_t seqs[] = {0, 1, UINT32_MAX, UINT64_MAX};
    const uint32_t flags[] = {ZM_PUSH_DONE, 0, UINT32_MAX, 2};
    for (size_t index = 0; index < COUNT(seqs); index++) {
        fx->in.cmd = ZM_CMD_PUSH;
        strcpy(fx->in.service, index == 3 ? "!~" : "numbers");
        fx->in.id = seqs[index];
        fx->in.flags = flags[index];
        fx->in.body = zframe_new("\x92\x01\xa1" "a", 4);
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_true(fx->self.id == seqs[index]);
        assert_int_equal(fx->self.flags, flags[index]);
        assert_string_equal(fx->self.service, fx->in.service);
        assert_int_equal(fx->self.fields, 5);
        assert_int_equal(zframe_size(fx->self.body), 4);
        assert_memory_equal(zframe_data(fx->self.body), "\x92\x01\xa1" "a", 4);
    }
    //  The longest name, and no body: encode sends nil.
    fx->in.cmd = ZM_CMD_PUSH;
    memcpy(fx->in.service, fx->name, ZM_NAME_MAX);
    fx->in.service[ZM_NAME_MAX] = '\0';
    uint8_t header[ZM_HEADER_MAX];
    zt_proto_round_trip(fx, header);
    assert_int_equal(strlen(fx->self.service), ZM_NAME_MAX);
    assert_int_equal(zframe_size(fx->self.body), 1);
    assert_memory_equal(zframe_data(fx->self.body), "\xc0", 1);
}

static void
test_proto_pipe_round_trips_producer_answers(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_ACCEPT;
    strcpy(fx->in.service, "jobs");
    fx->in.id = UINT64_MAX;
    zt_proto_round_trip(fx, header);
    assert_true(fx->self.id == UINT64_MAX);
    assert_string_equal(fx->self.service, "jobs");

    fx->in.cmd = ZM_CMD_RESUME;
    strcpy(fx->in.service, "jobs.2");
    fx->in.id = UINT64_MAX;
    zt_proto_round_trip(fx, header);
    assert_string_equal(fx->self.service, "jobs.2");
    assert_int_equal(fx->self.fields, 4);
    assert_true(fx->self.id == UINT64_MAX);
    fx->in.cmd = ZM_CMD_RESUME;
    strcpy(fx->in.service, "jobs.2");
    fx->in.id = 0;                              //  0: no limit
    zt_proto_round_trip(fx, header);
    assert_true(fx->self.id == 0);

    const uint32_t statuses[] = {200, 502, 100, 999};
    for (size_t index = 0; index < COUNT(statuses); index++) {
        fx->in.cmd = ZM_CMD_DONE;
        strcpy(fx->in.service, "jobs");
        fx->in.id = index;
        fx->in.status = statuses[index];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.id, index);
        assert_int_equal(fx->self.status, statuses[index]);
    }
}

static void
test_proto_pipe_round_trips_refuse(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_REFUSE;
    strcpy(fx->in.service, "jobs");
    fx->in.id = 12;
    fx->in.status = ZM_STATUS_BUSY;
    fx->in.body = zm_proto_reason_frame("pipeline is full");
    zt_proto_round_trip(fx, header);
    assert_int_equal(fx->self.id, 12);
    assert_int_equal(fx->self.status, 503);
    assert_string_equal(fx->self.service, "jobs");
    assert_int_equal(zframe_size(fx->self.body), 17);
    assert_memory_equal(zframe_data(fx->self.body), "\xb0" "pipeline is full", 17);

    //  Without a body, the reason field becomes the body: a str, as the
    //  grammar's reason-body asks, never nil.
    fx->in.cmd = ZM_CMD_REFUSE;
    strcpy(fx->in.service, "jobs");
    fx->in.id = 0;
    fx->in.status = ZM_STATUS_TOO_BIG;
    strcpy(fx->in.reason, "too big");
    zt_proto_round_trip(fx, header);
    assert_int_equal(fx->self.status, 413);
    assert_int_equal(zframe_size(fx->self.body), 8);
    assert_memory_equal(zframe_data(fx->self.body), "\xa7" "too big", 8);
    fx->in.cmd = ZM_CMD_REFUSE;
    fx->in.status = ZM_STATUS_MALFORMED;
    fx->in.reason[0] = '\0';
    zt_proto_round_trip(fx, header);
    assert_int_equal(zframe_size(fx->self.body), 1);
    assert_memory_equal(zframe_data(fx->self.body), "\xa0", 1);
}

static void
test_proto_pipe_round_trips_consume(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint32_t values[][3] = {{10, 1000, 3}, {1, 100, 2}, {1000, 60000, 100}};
    for (size_t index = 0; index < COUNT(values); index++) {
        fx->in.cmd = ZM_CMD_CONSUME;
        strcpy(fx->in.service, "numbers");
        fx->in.credit = values[index][0];
        fx->in.heartbeat_ms = values[index][1];
        fx->in.liveness = values[index][2];
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_string_equal(fx->self.service, "numbers");
        assert_int_equal(fx->self.credit, values[index][0]);
        assert_int_equal(fx->self.heartbeat_ms, values[index][1]);
        assert_int_equal(fx->self.liveness, values[index][2]);
    }
}

static void
test_proto_pipe_round_trips_deliver(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint64_t ids[] = {1, 1000, UINT64_MAX};
    const uint32_t attempts[] = {1, 2, UINT32_MAX};
    for (size_t index = 0; index < COUNT(ids); index++) {
        fx->in.cmd = ZM_CMD_DELIVER;
        strcpy(fx->in.service, "numbers");
        fx->in.id = ids[index];
        fx->in.attempt = attempts[index];
        fx->in.body = zframe_new("\xcd\x01\x00", 3);
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_true(fx->self.id == ids[index]);
        assert_int_equal(fx->self.attempt, attempts[index]);
        assert_string_equal(fx->self.service, "numbers");
        assert_int_equal(zframe_size(fx->self.body), 3);
        assert_memory_equal(zframe_data(fx->self.body), "\xcd\x01\x00", 3);
    }
}

//  ACK of 1 and of ZM_ACK_MAX ids; the longest, all of 9 bytes, still fits
//  the 512-byte header.
static void
test_proto_pipe_round_trips_ack(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_ACK;
    fx->in.ack_count = 1;
    fx->in.acks[0] = 1;
    zt_proto_round_trip(fx, header);
    assert_int_equal(fx->self.ack_count, 1);
    assert_int_equal(fx->self.acks[0], 1);
    assert_int_equal(fx->self.id, 1);
    assert_string_equal(fx->self.service, "");

    fx->in.cmd = ZM_CMD_ACK;
    fx->in.ack_count = ZM_ACK_MAX;
    for (uint32_t index = 0; index < ZM_ACK_MAX; index++)
        fx->in.acks[index] = UINT64_MAX - index;
    size_t size = zt_proto_round_trip(fx, header);
    assert_int_equal(size, 3 + 5 + 4 + ZM_ACK_MAX * 9);
    assert_true(size <= ZM_HEADER_MAX);
    assert_int_equal(fx->self.ack_count, ZM_ACK_MAX);
    assert_int_equal(fx->self.fields, 2 + ZM_ACK_MAX);
    assert_true(fx->self.id == UINT64_MAX);
    for (uint32_t index = 0; index < ZM_ACK_MAX; index++)
        assert_true(fx->self.acks[index] == UINT64_MAX - index);
}

//  ---------------------------------------------------------------------
//  The spec's grammar, byte for byte

static void
test_proto_pipe_headers_match_the_spec(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    //  push-header = array(signature, str("PUSH"), pipeline, seq, push-flags)
    //  for pipeline "numbers", seq 1, flags 1 (send DONE):
    //  fixarray 5, fixstr 4 "ZMP1", fixstr 4 "PUSH", fixstr 7 "numbers",
    //  positive fixint 1, positive fixint 1.
    static const char push[] = "\x95"
                               "\xa4" "ZMP1"
                               "\xa4" "PUSH"
                               "\xa7" "numbers"
                               "\x01"
                               "\x01";
    fx->in.cmd = ZM_CMD_PUSH;
    strcpy(fx->in.service, "numbers");
    fx->in.id = 1;
    fx->in.flags = ZM_PUSH_DONE;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(push));

    //  C-CONSUME: array(signature, str("CONSUME"), pipeline, credit,
    //  heartbeat-ms, liveness) for "numbers", 10, 1000 (uint 16), 3.
    static const char consume[] = "\x96\xa4" "ZMP1" "\xa7" "CONSUME" "\xa7" "numbers"
                                  "\x0a\xcd\x03\xe8\x03";
    fx->in.cmd = ZM_CMD_CONSUME;
    strcpy(fx->in.service, "numbers");
    fx->in.credit = 10;
    fx->in.heartbeat_ms = 1000;
    fx->in.liveness = 3;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(consume));

    //  C-ACK: array(signature, str("ACK"), message-id *47(message-id)) for
    //  ids 5 and 300 (uint 16).
    static const char ack[] = "\x94\xa4" "ZMP1" "\xa3" "ACK" "\x05\xcd\x01\x2c";
    fx->in.cmd = ZM_CMD_ACK;
    fx->in.ack_count = 2;
    fx->in.acks[0] = 5;
    fx->in.acks[1] = 300;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(ack));

    //  S-DELIVER for "numbers", message id 2^32 (uint 64), attempt 2.
    static const char deliver[] = "\x95\xa4" "ZMP1" "\xa7" "DELIVER" "\xa7" "numbers"
                                  "\xcf\x00\x00\x00\x01\x00\x00\x00\x00" "\x02";
    fx->in.cmd = ZM_CMD_DELIVER;
    strcpy(fx->in.service, "numbers");
    fx->in.id = (uint64_t) 1 << 32;
    fx->in.attempt = 2;
    zt_proto_assert_bytes(header, zt_proto_round_trip(fx, header), BYTES(deliver));
}

//  ---------------------------------------------------------------------
//  Range edges

static void
test_proto_pipe_accepts_range_edges(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zt_proto_header(fx, "PUSH", "suu", "p", U(0), U(UINT32_MAX));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "seq 0");
    assert_int_equal(fx->self.id, 0);
    zt_proto_header(fx, "PUSH", "suu", "p", U(UINT64_MAX), U(0));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "seq max");
    assert_true(fx->self.id == UINT64_MAX);
    zt_proto_header(fx, "ACCEPT", "su", "p", U(0));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "accept seq 0");
    zt_proto_header(fx, "DONE", "suu", "p", U(UINT64_MAX), U(100));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "done status 100");
    zt_proto_header(fx, "REFUSE", "suu", "p", U(0), U(999));
    zt_proto_message(fx, 1, "\xa0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "refuse status 999");
    const uint64_t consume[][3] = {{1, 100, 2}, {1000, 60000, 100}, {1000, 100, 100}};
    for (size_t index = 0; index < COUNT(consume); index++) {
        zt_proto_header(fx, "CONSUME", "suuu", "p", consume[index][0], consume[index][1],
                        consume[index][2]);
        zt_proto_message(fx, 0, NULL, 0);
        zt_proto_accept(fx, &zt_proto_checked, "consume edges");
        assert_int_equal(fx->self.credit, consume[index][0]);
    }
    zt_proto_header(fx, "DELIVER", "suu", "p", U(1), U(1));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "deliver 1 1");
    zt_proto_header(fx, "DELIVER", "suu", "p", U(UINT64_MAX), U(UINT32_MAX));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "deliver max max");
    assert_int_equal(fx->self.attempt, UINT32_MAX);
    zt_proto_header(fx, "ACK", "uu", U(1), U(UINT64_MAX));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_accept(fx, &zt_proto_checked, "ack 1 max");
    assert_int_equal(fx->self.ack_count, 2);
}

//  fx->pack must be refused 400, with the id (7) when have_id; the good
//  message of cmd decodes after.
static void
s_expect_400(zt_proto_fixture_t *fx, zm_cmd_t cmd, int bodies, const char *label, bool have_id)
{
    zt_proto_message(fx, bodies, "\xc0", 1);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, label, cmd, ZM_STATUS_MALFORMED, have_id, 7);
    s_good(fx, cmd);
}

static void
test_proto_pipe_rejects_out_of_range_fields(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(0), U(1000), U(3));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "credit 0", false);
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(ZM_CREDIT_MAX + 1), U(1000), U(3));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "credit 1001", false);
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(10), U(99), U(3));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "heartbeat 99", false);
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(10), U(60001), U(3));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "heartbeat 60001", false);
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(10), U(1000), U(1));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "liveness 1", false);
    zt_proto_header(fx, "CONSUME", "suuu", "p", U(10), U(1000), U(101));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "liveness 101", false);
    zt_proto_header(fx, "CONSUME", "suiu", "p", U(10), I(-1000), U(3));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "negative heartbeat", false);
    zt_proto_header(fx, "DELIVER", "suu", "p", U(0), U(1));
    s_expect_400(fx, ZM_CMD_DELIVER, 1, "message id 0", false);
    zt_proto_header(fx, "DELIVER", "suu", "p", U(7), U(0));
    s_expect_400(fx, ZM_CMD_DELIVER, 1, "attempt 0", true);
    zt_proto_header(fx, "DELIVER", "suu", "p", U(7), U((uint64_t) UINT32_MAX + 1));
    s_expect_400(fx, ZM_CMD_DELIVER, 1, "attempt 2^32", true);
    zt_proto_header(fx, "PUSH", "siu", "p", I(-1), U(0));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "negative seq", false);
    zt_proto_header(fx, "PUSH", "ssu", "p", "7", U(0));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "seq as a str", false);
    zt_proto_header(fx, "PUSH", "sun", "p", U(7));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "flags nil", true);
    zt_proto_header(fx, "PUSH", "suu", "p", U(7), U((uint64_t) UINT32_MAX + 1));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "flags 2^32", true);
    zt_proto_header(fx, "REFUSE", "suu", "p", U(7), U(99));
    s_expect_400(fx, ZM_CMD_REFUSE, 1, "refuse status 99", true);
    zt_proto_header(fx, "DONE", "suu", "p", U(7), U(1000));
    s_expect_400(fx, ZM_CMD_DONE, 0, "done status 1000", true);
    zt_proto_header(fx, "ACCEPT", "sn", "p");
    s_expect_400(fx, ZM_CMD_ACCEPT, 0, "accept seq nil", false);
    zt_proto_header(fx, "ACK", "u", U(0));
    s_expect_400(fx, ZM_CMD_ACK, 0, "ack id 0 alone", false);
    zt_proto_header(fx, "ACK", "uuu", U(7), U(0), U(8));
    s_expect_400(fx, ZM_CMD_ACK, 0, "ack id 0 in the middle", true);
    zt_proto_header(fx, "ACK", "uui", U(7), U(8), I(-8));
    s_expect_400(fx, ZM_CMD_ACK, 0, "ack negative id last", true);
    zt_proto_header(fx, "ACK", "s", "7");
    s_expect_400(fx, ZM_CMD_ACK, 0, "ack id as a str", false);
}

//  Pipeline names follow the rules of service names, in every command.
static void
test_proto_pipe_checks_pipeline_names(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const char *bad[] = {"", "a b", "caf\xc3\xa9", "tab\t", fx->name};
    for (size_t index = 0; index < COUNT(bad); index++) {
        zt_proto_header(fx, "PUSH", "suu", bad[index], U(7), U(0));
        s_expect_400(fx, ZM_CMD_PUSH, 1, "push name", false);
        zt_proto_header(fx, "ACCEPT", "su", bad[index], U(7));
        s_expect_400(fx, ZM_CMD_ACCEPT, 0, "accept name", false);
        zt_proto_header(fx, "REFUSE", "suu", bad[index], U(7), U(503));
        s_expect_400(fx, ZM_CMD_REFUSE, 1, "refuse name", false);
        zt_proto_header(fx, "RESUME", "su", bad[index], U(1));
        s_expect_400(fx, ZM_CMD_RESUME, 0, "resume name", false);
        zt_proto_header(fx, "DONE", "suu", bad[index], U(7), U(200));
        s_expect_400(fx, ZM_CMD_DONE, 0, "done name", false);
        zt_proto_header(fx, "CONSUME", "suuu", bad[index], U(1), U(1000), U(3));
        s_expect_400(fx, ZM_CMD_CONSUME, 0, "consume name", false);
        zt_proto_header(fx, "DELIVER", "suu", bad[index], U(7), U(1));
        s_expect_400(fx, ZM_CMD_DELIVER, 1, "deliver name", false);
    }
    zt_proto_header(fx, "RESUME", "uu", U(7), U(1));
    s_expect_400(fx, ZM_CMD_RESUME, 0, "resume name as a uint", false);
    //  The longest valid name, and reserved names: policy is the broker's.
    fx->name[ZM_NAME_MAX] = '\0';
    zt_proto_header(fx, "PUSH", "suu", fx->name, U(7), U(0));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "255-byte name");
    assert_int_equal(strlen(fx->self.service), ZM_NAME_MAX);
    zt_proto_header(fx, "PUSH", "suu", "zmesh.status", U(7), U(0));
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_accept(fx, &zt_proto_checked, "reserved name");
}

//  ---------------------------------------------------------------------
//  Field and frame counts

static void
test_proto_pipe_rejects_wrong_field_counts(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zt_proto_header(fx, "PUSH", "su", "p", U(7));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "push without flags", false);
    zt_proto_header(fx, "PUSH", "suuu", "p", U(7), U(0), U(0));
    s_expect_400(fx, ZM_CMD_PUSH, 1, "push with 6 fields", false);
    zt_proto_header(fx, "ACCEPT", "s", "p");
    s_expect_400(fx, ZM_CMD_ACCEPT, 0, "accept without seq", false);
    zt_proto_header(fx, "ACCEPT", "suu", "p", U(7), U(200));
    s_expect_400(fx, ZM_CMD_ACCEPT, 0, "accept with 5 fields", false);
    zt_proto_header(fx, "REFUSE", "su", "p", U(7));
    s_expect_400(fx, ZM_CMD_REFUSE, 1, "refuse without status", false);
    zt_proto_header(fx, "REFUSE", "suuu", "p", U(7), U(503), U(0));
    s_expect_400(fx, ZM_CMD_REFUSE, 1, "refuse with 6 fields", false);
    zt_proto_header(fx, "RESUME", "s", "p");
    s_expect_400(fx, ZM_CMD_RESUME, 0, "resume without room", false);
    zt_proto_header(fx, "RESUME", "suu", "p", U(7), U(0));
    s_expect_400(fx, ZM_CMD_RESUME, 0, "resume with 5 fields", false);
    zt_proto_header(fx, "DONE", "su", "p", U(7));
    s_expect_400(fx, ZM_CMD_DONE, 0, "done without status", false);
    zt_proto_header(fx, "DONE", "suuu", "p", U(7), U(200), U(0));
    s_expect_400(fx, ZM_CMD_DONE, 0, "done with 6 fields", false);
    zt_proto_header(fx, "CONSUME", "suu", "p", U(1), U(1000));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "consume without liveness", false);
    zt_proto_header(fx, "CONSUME", "suuuu", "p", U(1), U(1000), U(3), U(0));
    s_expect_400(fx, ZM_CMD_CONSUME, 0, "consume with 7 fields", false);
    zt_proto_header(fx, "DELIVER", "su", "p", U(7));
    s_expect_400(fx, ZM_CMD_DELIVER, 1, "deliver without attempt", false);
    zt_proto_header(fx, "DELIVER", "suuu", "p", U(7), U(1), U(0));
    s_expect_400(fx, ZM_CMD_DELIVER, 1, "deliver with 6 fields", false);
    zt_proto_header(fx, "ACK", "");
    s_expect_400(fx, ZM_CMD_ACK, 0, "ack of no id", false);
}

//  ACK of ZM_ACK_MAX + 1 ids: refused on its count, although its header
//  would fit 512 bytes.
static void
test_proto_pipe_rejects_ack_over_the_maximum(void **state)
{
    zt_proto_fixture_t *fx = *state;
    for (uint32_t count = ZM_ACK_MAX; count <= ZM_ACK_MAX + 1; count++) {
        zmesh_pack_destroy(&fx->pack);
        fx->pack = zmesh_pack_new();
        zmesh_pack_array(fx->pack, 2 + count);
        zmesh_pack_str(fx->pack, "ZMP1");
        zmesh_pack_str(fx->pack, "ACK");
        for (uint32_t index = 0; index < count; index++)
            zmesh_pack_uint(fx->pack, 7 + index);
        assert_true(zmesh_pack_size(fx->pack) <= ZM_HEADER_MAX);
        zt_proto_message(fx, 0, NULL, 0);
        if (count > ZM_ACK_MAX) {
            zt_proto_refuse_cmd(fx, &zt_proto_checked, "ack of 49", ZM_CMD_ACK,
                                ZM_STATUS_MALFORMED, false, 0);
            continue;
        }
        zt_proto_accept(fx, &zt_proto_checked, "ack of 48");
        assert_int_equal(fx->self.ack_count, ZM_ACK_MAX);
        assert_int_equal(fx->self.acks[ZM_ACK_MAX - 1], 7 + ZM_ACK_MAX - 1);
    }
    s_good(fx, ZM_CMD_ACK);
}

static void
test_proto_pipe_rejects_wrong_frame_counts(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  Commands with a body, with none or two; the id was read before.
    const zm_cmd_t with_body[] = {ZM_CMD_PUSH, ZM_CMD_REFUSE, ZM_CMD_DELIVER};
    for (size_t index = 0; index < COUNT(with_body); index++) {
        for (int bodies = 0; bodies <= 2; bodies += 2) {
            s_good(fx, with_body[index]);       //  leaves the good header in fx->pack
            zt_proto_message(fx, bodies, "\xc0", 1);
            zt_proto_refuse_cmd(fx, &zt_proto_checked, "frames", with_body[index],
                                ZM_STATUS_MALFORMED, true, 7);
        }
    }
    //  Commands without a body, with one.
    const zm_cmd_t without[] = {ZM_CMD_ACCEPT, ZM_CMD_RESUME, ZM_CMD_DONE, ZM_CMD_CONSUME,
                                ZM_CMD_ACK};
    for (size_t index = 0; index < COUNT(without); index++) {
        s_good(fx, without[index]);
        zt_proto_message(fx, 1, "\xc0", 1);
        bool have_id = without[index] != ZM_CMD_RESUME && without[index] != ZM_CMD_CONSUME;
        zt_proto_refuse_cmd(fx, &zt_proto_checked, "body", without[index], ZM_STATUS_MALFORMED,
                            have_id, 7);
        s_good(fx, without[index]);
    }
    //  No delimiter: the push endpoint's two frames are not a DEALER's message.
    s_good(fx, ZM_CMD_PUSH);
    zmsg_destroy(&fx->msg);
    fx->msg = zmsg_new();
    zmsg_addmem(fx->msg, zmesh_pack_data(fx->pack), zmesh_pack_size(fx->pack));
    zmsg_addmem(fx->msg, "\xc0", 1);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "no delimiter", 0, ZM_STATUS_MALFORMED, false, 0);
}

//  ---------------------------------------------------------------------
//  Bodies, and what a refused PUSH still tells

static void
s_expect_refused_push(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits, const char *label,
                      zm_status_t status, const void *body, size_t size)
{
    zt_proto_header(fx, "PUSH", "suu", "jobs.in", U(UINT64_MAX - 1), U(ZM_PUSH_DONE));
    zt_proto_message(fx, 1, body, size);
    zt_proto_refuse_cmd(fx, limits, label, ZM_CMD_PUSH, status, true, UINT64_MAX - 1);
    //  What the broker needs for REFUSE(seq) is there.
    assert_string_equal(fx->self.service, "jobs.in");
    assert_int_equal(fx->self.flags, ZM_PUSH_DONE);
}

static void
test_proto_pipe_refused_push_keeps_pipeline_and_seq(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const zm_proto_limits_t small = {.max_body = 4, .check_body = true, .max_depth = 2};
    s_expect_refused_push(fx, &small, "not msgpack", ZM_STATUS_MALFORMED, BYTES("\xc1"));
    s_expect_refused_push(fx, &small, "trailing bytes", ZM_STATUS_MALFORMED, BYTES("\x01\x02"));
    s_expect_refused_push(fx, &small, "truncated", ZM_STATUS_MALFORMED, BYTES("\x92\x01"));
    s_expect_refused_push(fx, &small, "too deep", ZM_STATUS_MALFORMED, BYTES("\x91\x91\x91\x01"));
    s_expect_refused_push(fx, &small, "empty", ZM_STATUS_MALFORMED, "", 0);
    s_expect_refused_push(fx, &small, "too big", ZM_STATUS_TOO_BIG, BYTES("\xa4" "abcd"));
    //  A str of ZM_BODY_MAX_DEFAULT bytes: one object, 5 bytes over the default.
    fx->data = calloc(1, ZM_BODY_MAX_DEFAULT + 5);
    assert_non_null(fx->data);
    memcpy(fx->data, "\xdb\x00\x10\x00\x00", 5);
    s_expect_refused_push(fx, NULL, "over the default", ZM_STATUS_TOO_BIG, fx->data,
                          ZM_BODY_MAX_DEFAULT + 5);
    //  The same header refused for its frames: no body at all.
    zt_proto_header(fx, "PUSH", "suu", "jobs.in", U(9), U(0));
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_refuse_cmd(fx, &small, "no body", ZM_CMD_PUSH, ZM_STATUS_MALFORMED, true, 9);
    assert_string_equal(fx->self.service, "jobs.in");
    //  A body at the limit, and an unchecked one, pass.
    zt_proto_header(fx, "PUSH", "suu", "jobs.in", U(9), U(0));
    zt_proto_message(fx, 1, BYTES("\xa3" "abc"));
    zm_proto_error_t error;
    assert_true(zm_proto_decode(&fx->self, fx->msg, &small, &error));
    assert_int_equal(zframe_size(fx->self.body), 4);
    zt_proto_message(fx, 1, BYTES("\xc1\xc1"));
    assert_true(zm_proto_decode(&fx->self, fx->msg, NULL, &error));
    assert_int_equal(zframe_size(fx->self.body), 2);
    zmsg_destroy(&fx->msg);
}

//  REFUSE's and DELIVER's bodies obey the same limits as PUSH's.
static void
test_proto_pipe_checks_refuse_and_deliver_bodies(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const zm_proto_limits_t small = {.max_body = 4, .check_body = true, .max_depth = 0};
    zt_proto_header(fx, "REFUSE", "suu", "p", U(7), U(503));
    zt_proto_message(fx, 1, BYTES("\xa4" "full"));
    zt_proto_refuse_cmd(fx, &small, "refuse too big", ZM_CMD_REFUSE, ZM_STATUS_TOO_BIG, true, 7);
    zt_proto_header(fx, "REFUSE", "suu", "p", U(7), U(503));
    zt_proto_message(fx, 1, BYTES("\xa5" "ful"));
    zt_proto_refuse_cmd(fx, &small, "refuse truncated", ZM_CMD_REFUSE,
                        ZM_STATUS_MALFORMED, true, 7);
    zt_proto_header(fx, "DELIVER", "suu", "p", U(7), U(1));
    zt_proto_message(fx, 1, BYTES("\x94\x01\x02\x03\x04"));
    zt_proto_refuse_cmd(fx, &small, "deliver too big", ZM_CMD_DELIVER, ZM_STATUS_TOO_BIG, true, 7);
    zt_proto_header(fx, "DELIVER", "suu", "p", U(7), U(1));
    zt_proto_message(fx, 1, BYTES("\xc1"));
    zt_proto_refuse_cmd(fx, &small, "deliver not msgpack", ZM_CMD_DELIVER, ZM_STATUS_MALFORMED,
                        true, 7);
    s_good(fx, ZM_CMD_DELIVER);
}

//  Over-long headers are 413 even for pipeline commands, and a pipeline
//  command under another protocol version is 505 with its name known.
static void
test_proto_pipe_rejects_long_header_and_other_version(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, 2 + ZM_ACK_MAX);
    zmesh_pack_str(fx->pack, "ZMP1");
    zmesh_pack_str(fx->pack, "ACK");
    for (uint32_t index = 0; index < ZM_ACK_MAX; index++)
        zmesh_pack_strn(fx->pack, fx->name, 20);        //  not ids, and too long anyway
    assert_true(zmesh_pack_size(fx->pack) > ZM_HEADER_MAX);
    zt_proto_message(fx, 0, NULL, 0);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "long ack", ZM_CMD_ACK, ZM_STATUS_TOO_BIG, false, 0);

    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, 5);
    zmesh_pack_str(fx->pack, "ZMP2");
    zmesh_pack_str(fx->pack, "PUSH");
    zmesh_pack_str(fx->pack, "p");
    zmesh_pack_uint(fx->pack, 7);
    zmesh_pack_uint(fx->pack, 0);
    zt_proto_message(fx, 1, "\xc0", 1);
    zt_proto_refuse_cmd(fx, &zt_proto_checked, "ZMP2 push", ZM_CMD_PUSH, ZM_STATUS_BAD_VERSION,
                        false, 0);
    s_good(fx, ZM_CMD_PUSH);
}

//  RELEASE has ACK's shape, no name, but 0 to ZM_ACK_MAX message ids.
static void
test_proto_pipe_release(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_RELEASE;
    fx->in.ack_count = ZM_ACK_MAX;
    for (uint32_t i = 0; i < ZM_ACK_MAX; i++)
        fx->in.acks[i] = UINT64_MAX - i;
    zt_proto_round_trip(fx, header);
    assert_int_equal(fx->self.cmd, ZM_CMD_RELEASE);
    assert_int_equal(fx->self.ack_count, ZM_ACK_MAX);
    assert_true(fx->self.acks[ZM_ACK_MAX - 1] == UINT64_MAX - (ZM_ACK_MAX - 1));
    zt_proto_header(fx, "RELEASE", "uu", U(7), U(0));
    s_expect_400(fx, ZM_CMD_RELEASE, 0, "release of id 0", true);
    fx->in.cmd = ZM_CMD_RELEASE;                //  no id: "I am leaving" alone
    fx->in.ack_count = 0;
    zt_proto_round_trip(fx, header);
    assert_int_equal(fx->self.ack_count, 0);
    assert_int_equal(fx->self.fields, 2);
}

static void
test_proto_pipe_names_commands(void **state)
{
    (void) state;
    const struct {
        zm_cmd_t cmd;
        const char *name;
    } table[] = {
        {ZM_CMD_PUSH, "PUSH"},       {ZM_CMD_ACCEPT, "ACCEPT"},   {ZM_CMD_REFUSE, "REFUSE"},
        {ZM_CMD_RESUME, "RESUME"},   {ZM_CMD_DONE, "DONE"},       {ZM_CMD_CONSUME, "CONSUME"},
        {ZM_CMD_DELIVER, "DELIVER"}, {ZM_CMD_ACK, "ACK"},         {ZM_CMD_RELEASE, "RELEASE"},
        {ZM_CMD_PART, "PART"},       {ZM_CMD_CREDIT, "CREDIT"},   {ZM_CMD_CANCEL, "CANCEL"},
        {ZM_CMD_JOIN, "JOIN"},       {ZM_CMD_WRITE, "WRITE"},     {ZM_CMD_APPLIED, "APPLIED"},
        {ZM_CMD_MISSING, "MISSING"}, {ZM_CMD_SYNC, "SYNC"},       {ZM_CMD_SNAPSHOT, "SNAPSHOT"},
        {ZM_CMD_SNAPSHOT + 1, "UNKNOWN"},
    };
    for (size_t index = 0; index < COUNT(table); index++)
        assert_string_equal(zm_proto_cmd_name(table[index].cmd), table[index].name);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ZT_PROTO_TEST(test_proto_pipe_round_trips_push),
        ZT_PROTO_TEST(test_proto_pipe_round_trips_producer_answers),
        ZT_PROTO_TEST(test_proto_pipe_round_trips_refuse),
        ZT_PROTO_TEST(test_proto_pipe_round_trips_consume),
        ZT_PROTO_TEST(test_proto_pipe_round_trips_deliver),
        ZT_PROTO_TEST(test_proto_pipe_round_trips_ack),
        ZT_PROTO_TEST(test_proto_pipe_headers_match_the_spec),
        ZT_PROTO_TEST(test_proto_pipe_accepts_range_edges),
        ZT_PROTO_TEST(test_proto_pipe_rejects_out_of_range_fields),
        ZT_PROTO_TEST(test_proto_pipe_checks_pipeline_names),
        ZT_PROTO_TEST(test_proto_pipe_rejects_wrong_field_counts),
        ZT_PROTO_TEST(test_proto_pipe_rejects_ack_over_the_maximum),
        ZT_PROTO_TEST(test_proto_pipe_rejects_wrong_frame_counts),
        ZT_PROTO_TEST(test_proto_pipe_refused_push_keeps_pipeline_and_seq),
        ZT_PROTO_TEST(test_proto_pipe_checks_refuse_and_deliver_bodies),
        ZT_PROTO_TEST(test_proto_pipe_rejects_long_header_and_other_version),
        ZT_PROTO_TEST(test_proto_pipe_release),
        cmocka_unit_test(test_proto_pipe_names_commands),
    };
    return cmocka_run_group_tests_name("proto_pipe", tests, NULL, NULL);
}
