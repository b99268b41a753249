//  test_proto.c - unit tests of the ZMP/1 codec (zm_proto): every command
//  encodes and decodes back with all its fields, headers from other packers
//  (wide integer and string encodings) are accepted, and every malformed
//  variant of every command, fed as a DEALER peer sends it
//  ([empty][header][body?]), is refused with the status of ZMP.md (400, 413
//  or 505), a reason, the command when its name was readable and the request
//  id when it was; after each refusal a good message still decodes. No
//  sockets, no sleeps: messages are built here, and a fixture owns them so a
//  failed assertion leaks nothing. The MessagePack layer is test_pack.c's.

#include "proto_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Header pieces. Each hex escape ends its literal, so a following letter
//  ("\xa4" "CALL") is not read as one more hex digit.
#define H_SIG "\xa4" "ZMP1"
#define H_CALL "\xa4" "CALL"
#define H_REPLY "\xa5" "REPLY"
#define H_READY "\xa5" "READY"
#define H_REQUEST "\xa7" "REQUEST"
#define H_HEARTBEAT "\xa9" "HEARTBEAT"
#define H_DISCONNECT "\xaa" "DISCONNECT"
#define H_PROGRESS "\xa8" "PROGRESS"
#define H_ECHO "\xa4" "echo"
#define H_BYE "\xa3" "bye"
#define H_200 "\xcc\xc8"
#define H_1000 "\xcd\x03\xe8"
#define H_2P32 "\xcf\x00\x00\x00\x01\x00\x00\x00\x00"   //  2^32 as uint 64

//  Good headers, with id or ticket 7 where there is one.
#define GOOD_CALL "\x95" H_SIG H_CALL "\x07" H_ECHO "\x00"
#define GOOD_REPLY "\x94" H_SIG H_REPLY "\x07" H_200
#define GOOD_READY "\x96" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03"
#define GOOD_REQUEST "\x95" H_SIG H_REQUEST "\x07" H_ECHO "\x00"
#define GOOD_HEARTBEAT "\x92" H_SIG H_HEARTBEAT
#define GOOD_DISCONNECT "\x94" H_SIG H_DISCONNECT H_200 H_BYE
#define GOOD_PROGRESS "\x94" H_SIG H_PROGRESS "\x07" H_1000

#define S_ID 7              //  the id of every table case that has one

//  One malformed message: [empty][header] and, if body, a nil body frame.
typedef struct {
    const char *name;       //  printed on failure
    const char *header;
    size_t header_size;
    bool body;
    zm_status_t status;     //  expected
    bool have_id;           //  expected; the id is then S_ID
} s_bad_t;

#define BAD(name, header, body, status, have_id) {name, BYTES(header), body, status, have_id}

//  Decodes a message that must be good into fx->self.
static void
s_decode_ok(zt_proto_fixture_t *fx, const void *header, size_t header_size, const void *body,
            size_t body_size, const zm_proto_limits_t *limits)
{
    zmsg_destroy(&fx->msg);
    fx->msg = zt_proto_frames(header, header_size, body, body_size);
    zt_proto_accept(fx, limits, "decode");
    assert_true(body ? fx->self.body != NULL : fx->self.body == NULL);
}

//  Runs each case, checking that the refusal still names cmd (unless 0),
//  then proves that a good message still decodes into the same struct.
static void
s_run_bad(zt_proto_fixture_t *fx, const s_bad_t *cases, size_t count, zm_cmd_t cmd,
          const char *good, size_t good_size, bool good_body)
{
    for (size_t index = 0; index < count; index++) {
        const s_bad_t *bad = &cases[index];
        fx->msg = zt_proto_frames(bad->header, bad->header_size, bad->body ? "\xc0" : NULL, 1);
        if (cmd)
            zt_proto_refuse_cmd(fx, &zt_proto_checked, bad->name, cmd, bad->status,
                                bad->have_id, S_ID);
        else
            zt_proto_refuse(fx, &zt_proto_checked, bad->name, bad->status, bad->have_id, S_ID);
        s_decode_ok(fx, good, good_size, good_body ? "\xc0" : NULL, 1, &zt_proto_checked);
    }
}

//  ---------------------------------------------------------------------
//  Round trips

static void
test_proto_round_trips_call_with_timeout(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->in.cmd = ZM_CMD_CALL;
    fx->in.id = 1;
    strcpy(fx->in.service, "echo");
    fx->in.timeout_ms = 5000;
    fx->in.body = zt_proto_frame(BYTES("\x81\xa1" "x" "\x93\x01\x02\x03"));
    uint8_t header[ZM_HEADER_MAX];
    size_t size = zt_proto_round_trip(fx, header);
    //  The worked example of ZMP.md section 4.3, byte for byte.
    static const char example[] = "\x95\xa4" "ZMP1" "\xa4" "CALL" "\x01\xa4" "echo" "\xcd\x13\x88";
    assert_int_equal(size, sizeof example - 1);
    assert_memory_equal(header, example, size);
    assert_int_equal(fx->self.id, 1);
    assert_string_equal(fx->self.service, "echo");
    assert_int_equal(fx->self.timeout_ms, 5000);
    assert_int_equal(zframe_size(fx->self.body), 7);
    assert_memory_equal(zframe_data(fx->self.body), "\x81\xa1" "x" "\x93\x01\x02\x03", 7);
    zm_proto_reset(&fx->self);
    assert_null(fx->self.body);

    //  Extreme values, and no body: encode sends nil.
    fx->in.id = UINT64_MAX;
    memset(fx->in.service, '~', ZM_NAME_MAX);
    fx->in.service[ZM_NAME_MAX] = '\0';
    fx->in.timeout_ms = UINT32_MAX;
    zt_proto_round_trip(fx, header);
    assert_true(fx->self.id == UINT64_MAX);
    assert_int_equal(strlen(fx->self.service), ZM_NAME_MAX);
    assert_string_equal(fx->self.service, fx->in.service);
    assert_int_equal(fx->self.timeout_ms, UINT32_MAX);
    assert_int_equal(zframe_size(fx->self.body), 1);
    assert_memory_equal(zframe_data(fx->self.body), "\xc0", 1);
}

static void
test_proto_round_trips_call_without_timeout(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->in.cmd = ZM_CMD_CALL;
    fx->in.id = 42;
    strcpy(fx->in.service, "kv.get");
    fx->in.body = zt_proto_frame(BYTES("\xa3" "key"));
    uint8_t header[ZM_HEADER_MAX];
    size_t size = zt_proto_round_trip(fx, header);
    //  timeout 0 is left out: a 4-element header.
    static const char expected[] = "\x94" H_SIG H_CALL "\x2a\xa6" "kv.get";
    assert_int_equal(size, sizeof expected - 1);
    assert_memory_equal(header, expected, size);
    assert_int_equal(fx->self.id, 42);
    assert_string_equal(fx->self.service, "kv.get");
    assert_int_equal(fx->self.timeout_ms, 0);
    assert_int_equal(zframe_size(fx->self.body), 4);
    assert_memory_equal(zframe_data(fx->self.body), "\xa3" "key", 4);
}

static void
test_proto_round_trips_reply(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->in.cmd = ZM_CMD_REPLY;
    fx->in.id = 1;
    fx->in.status = ZM_STATUS_OK;
    fx->in.body = zt_proto_frame(BYTES("\x92\xc3\xc2"));
    uint8_t header[ZM_HEADER_MAX];
    size_t size = zt_proto_round_trip(fx, header);
    //  The reply header of ZMP.md section 4.3.
    static const char example[] = "\x94\xa4\x5a\x4d\x50\x31\xa5\x52\x45\x50\x4c\x59\x01\xcc\xc8";
    assert_int_equal(size, sizeof example - 1);
    assert_memory_equal(header, example, size);
    assert_int_equal(fx->self.id, 1);
    assert_int_equal(fx->self.status, 200);
    assert_int_equal(zframe_size(fx->self.body), 3);
    assert_memory_equal(zframe_data(fx->self.body), "\x92\xc3\xc2", 3);

    fx->in.id = (uint64_t) 1 << 63;
    fx->in.status = ZM_STATUS_WORKER_LOST;
    fx->in.body = zm_proto_reason_frame("worker lost");
    zt_proto_round_trip(fx, header);
    assert_true(fx->self.id == (uint64_t) 1 << 63);
    assert_int_equal(fx->self.status, 502);
    assert_int_equal(zframe_size(fx->self.body), 12);
    assert_memory_equal(zframe_data(fx->self.body), "\xab" "worker lost", 12);
}

static void
test_proto_round_trips_ready(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint32_t values[][3] = {{1, 1000, 3}, {1, 100, 2}, {1024, 60000, 100}};
    for (size_t index = 0; index < COUNT(values); index++) {
        fx->in.cmd = ZM_CMD_READY;
        strcpy(fx->in.service, "!svc~");
        fx->in.slots = values[index][0];
        fx->in.heartbeat_ms = values[index][1];
        fx->in.liveness = values[index][2];
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(header[0], 0x97);          //  flags always written, 0 here
        assert_int_equal(fx->self.fields, 7);
        assert_int_equal(fx->self.flags, 0);
        assert_string_equal(fx->self.service, "!svc~");
        assert_int_equal(fx->self.slots, values[index][0]);
        assert_int_equal(fx->self.heartbeat_ms, values[index][1]);
        assert_int_equal(fx->self.liveness, values[index][2]);
    }
}

static void
test_proto_round_trips_request(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint32_t timeouts[] = {0, 1, 4999, UINT32_MAX};
    for (size_t index = 0; index < COUNT(timeouts); index++) {
        fx->in.cmd = ZM_CMD_REQUEST;
        fx->in.id = 0xfedcba9876543210ull;
        strcpy(fx->in.service, "echo");
        fx->in.timeout_ms = timeouts[index];
        fx->in.body = zt_proto_frame(BYTES("\xc4\x03\x00\x01\x02"));
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(header[0], 0x95);      //  timeout always present, even 0
        assert_true(fx->self.id == 0xfedcba9876543210ull);
        assert_string_equal(fx->self.service, "echo");
        assert_int_equal(fx->self.timeout_ms, timeouts[index]);
        assert_int_equal(zframe_size(fx->self.body), 5);
        assert_memory_equal(zframe_data(fx->self.body), "\xc4\x03\x00\x01\x02", 5);
    }
}

static void
test_proto_round_trips_heartbeat(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->in.cmd = ZM_CMD_HEARTBEAT;
    fx->in.body = zt_proto_frame(BYTES("\xc0"));       //  stray body: encode drops and frees it
    uint8_t header[ZM_HEADER_MAX];
    size_t size = zt_proto_round_trip(fx, header);
    assert_int_equal(size, sizeof GOOD_HEARTBEAT - 1);
    assert_memory_equal(header, GOOD_HEARTBEAT, size);
}

static void
test_proto_round_trips_disconnect(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const size_t sizes[] = {0, 3, 31, 32, ZM_REASON_MAX};
    for (size_t index = 0; index < COUNT(sizes); index++) {
        fx->in.cmd = ZM_CMD_DISCONNECT;
        fx->in.status = ZM_STATUS_MALFORMED;
        memset(fx->in.reason, 'r', sizes[index]);
        fx->in.reason[sizes[index]] = '\0';
        uint8_t header[ZM_HEADER_MAX];
        zt_proto_round_trip(fx, header);
        assert_int_equal(fx->self.status, 400);
        assert_string_equal(fx->self.reason, fx->in.reason);
    }
}

//  ---------------------------------------------------------------------
//  Optional fields (CALL and READY flags, REQUEST attempt) and PROGRESS

static void
test_proto_round_trips_call_with_flags(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_CALL;
    fx->in.id = 7;
    strcpy(fx->in.service, "echo");
    fx->in.timeout_ms = 5000;
    fx->in.flags = ZM_CALL_PROGRESS;
    fx->in.body = zt_proto_frame(BYTES("\x91\x01"));
    size_t size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size,
                          BYTES("\x96" H_SIG H_CALL "\x07" H_ECHO "\xcd\x13\x88\x01"));
    assert_int_equal(fx->self.id, 7);
    assert_string_equal(fx->self.service, "echo");
    assert_int_equal(fx->self.timeout_ms, 5000);
    assert_int_equal(fx->self.flags, ZM_CALL_PROGRESS);
    assert_int_equal(zframe_size(fx->self.body), 2);
    assert_memory_equal(zframe_data(fx->self.body), "\x91\x01", 2);

    //  Flags without a timeout: the timeout is written (0) to keep the position.
    fx->in.timeout_ms = 0;
    size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size, BYTES("\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\x01"));
    assert_int_equal(fx->self.timeout_ms, 0);
    assert_int_equal(fx->self.flags, ZM_CALL_PROGRESS);

    //  Bits this version does not know survive the trip: receivers ignore them.
    fx->in.flags = UINT32_MAX;
    size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size,
                          BYTES("\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\xce\xff\xff\xff\xff"));
    assert_int_equal(fx->self.flags, UINT32_MAX);
}

//  A CALL of 4 or 5 fields (every older client, every REQ socket) reads as
//  flags 0, and flags 0 are never written.
static void
test_proto_call_without_flags_has_flags_0(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->self.flags = 9;                         //  a stale value must not survive
    s_decode_ok(fx, BYTES(GOOD_CALL), BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.flags, 0);
    fx->self.flags = 9;
    s_decode_ok(fx, BYTES("\x94" H_SIG H_CALL "\x07" H_ECHO), BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.flags, 0);
    fx->in.cmd = ZM_CMD_CALL;
    fx->in.id = 7;
    strcpy(fx->in.service, "echo");
    fx->in.timeout_ms = 5000;
    size_t size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size, BYTES("\x95" H_SIG H_CALL "\x07" H_ECHO "\xcd\x13\x88"));
    assert_int_equal(fx->self.flags, 0);
}

static void
test_proto_round_trips_ready_with_flags(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    const uint32_t flags[] = {ZM_READY_IDEMPOTENT, 2, UINT32_MAX};
    for (size_t index = 0; index < COUNT(flags); index++) {
        fx->in.cmd = ZM_CMD_READY;
        strcpy(fx->in.service, "echo");
        fx->in.slots = 1;
        fx->in.heartbeat_ms = 1000;
        fx->in.liveness = 3;
        fx->in.flags = flags[index];
        size_t size = zt_proto_round_trip(fx, header);
        assert_int_equal(header[0], 0x97);
        if (flags[index] == ZM_READY_IDEMPOTENT)
            zt_proto_assert_bytes(header, size,
                                  BYTES("\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\x01"));
        assert_string_equal(fx->self.service, "echo");
        assert_int_equal(fx->self.slots, 1);
        assert_int_equal(fx->self.heartbeat_ms, 1000);
        assert_int_equal(fx->self.liveness, 3);
        assert_int_equal(fx->self.flags, flags[index]);
    }
    //  Flags 0 are written too: a 7-field READY tells the broker this worker
    //  reads REQUEST's attempt field; a 6-field one (older workers) decodes.
    zm_proto_reset(&fx->in);
    fx->in.cmd = ZM_CMD_READY;
    strcpy(fx->in.service, "echo");
    fx->in.slots = 1;
    fx->in.heartbeat_ms = 1000;
    fx->in.liveness = 3;
    size_t size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size,
                          BYTES("\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\x00"));
    assert_int_equal(fx->self.flags, 0);
    s_decode_ok(fx, BYTES(GOOD_READY), NULL, 0, NULL);
    assert_int_equal(fx->self.fields, 6);
    //  An explicit 0 reads as 0.
    s_decode_ok(fx, BYTES("\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\x00"), NULL, 0,
                &zt_proto_checked);
    assert_int_equal(fx->self.flags, 0);
}

static void
test_proto_round_trips_request_with_attempt(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    const uint32_t attempts[] = {1, 2, 100, UINT32_MAX};
    for (size_t index = 0; index < COUNT(attempts); index++) {
        fx->in.cmd = ZM_CMD_REQUEST;
        fx->in.id = 7;
        strcpy(fx->in.service, "echo");
        fx->in.attempt = attempts[index];
        fx->in.body = zt_proto_frame(BYTES("\xa2" "hi"));
        size_t size = zt_proto_round_trip(fx, header);
        assert_int_equal(header[0], 0x96);
        if (attempts[index] == 2)
            zt_proto_assert_bytes(header, size,
                                  BYTES("\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\x02"));
        assert_int_equal(fx->self.id, 7);
        assert_int_equal(fx->self.timeout_ms, 0);
        assert_int_equal(fx->self.attempt, attempts[index]);
        assert_int_equal(zframe_size(fx->self.body), 3);
        assert_memory_equal(zframe_data(fx->self.body), "\xa2" "hi", 3);
    }
    //  No attempt (0): the 5-field REQUEST of older brokers, read as attempt 0.
    zm_proto_reset(&fx->in);
    fx->in.cmd = ZM_CMD_REQUEST;
    fx->in.id = 7;
    strcpy(fx->in.service, "echo");
    size_t size = zt_proto_round_trip(fx, header);
    zt_proto_assert_bytes(header, size, BYTES(GOOD_REQUEST));
    assert_int_equal(fx->self.attempt, 0);
}

//  PROGRESS goes worker to broker with a ticket and broker to client with
//  a request id: one shape, [.., id, extend_ms], and no body.
//  Streamed replies: CALL and REQUEST with a window, PART (a body), CREDIT
//  and CANCEL (ZMP.md section 6.10).
static void
test_proto_round_trips_stream_commands(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_CALL;
    fx->in.id = 7;
    snprintf(fx->in.service, sizeof fx->in.service, "echo");
    fx->in.flags = ZM_CALL_PROGRESS | ZM_CALL_STREAM;
    fx->in.window = 16;
    zt_proto_round_trip(fx, header);
    assert_int_equal(header[0], 0x97);
    assert_int_equal(fx->self.fields, 7);
    assert_int_equal(fx->self.flags, 3);
    assert_int_equal(fx->self.window, 16);
    assert_int_equal(fx->self.timeout_ms, 0);

    fx->in.cmd = ZM_CMD_REQUEST;
    fx->in.id = 9;
    snprintf(fx->in.service, sizeof fx->in.service, "files");
    fx->in.attempt = 1;
    fx->in.window = ZM_WINDOW_MAX;
    zt_proto_round_trip(fx, header);
    assert_int_equal(header[0], 0x97);
    assert_int_equal(fx->self.attempt, 1);
    assert_int_equal(fx->self.window, ZM_WINDOW_MAX);

    fx->in.cmd = ZM_CMD_PART;
    fx->in.id = 7;
    fx->in.seq = 3;
    fx->in.body = zt_proto_frame(BYTES("\xc4\x02" "ab"));
    size_t size = zt_proto_round_trip(fx, header);
    //  ["ZMP1", "PART", 7, 3]
    static const char part[] = "\x94\xa4" "ZMP1" "\xa4" "PART" "\x07\x03";
    zt_proto_assert_bytes(header, size, part, sizeof part - 1);
    assert_true(fx->self.seq == 3);
    assert_non_null(fx->self.body);
    assert_int_equal(zframe_size(fx->self.body), 4);

    fx->in.cmd = ZM_CMD_CREDIT;
    fx->in.id = UINT64_MAX;
    fx->in.window = 4;
    zt_proto_round_trip(fx, header);
    assert_true(fx->self.id == UINT64_MAX);
    assert_int_equal(fx->self.window, 4);

    fx->in.cmd = ZM_CMD_CANCEL;
    fx->in.id = 5;
    size = zt_proto_round_trip(fx, header);
    static const char cancel[] = "\x93\xa4" "ZMP1" "\xa6" "CANCEL" "\x05";
    zt_proto_assert_bytes(header, size, cancel, sizeof cancel - 1);

    //  Out of range: seq 0, credit 0 and 1025, a PART without its body.
    zm_proto_error_t error;
    const struct {
        const char *data;
        size_t size;
        bool body;
    } bad[] = {
        {BYTES("\x94\xa4" "ZMP1" "\xa4" "PART" "\x07\x00"), true},
        {BYTES("\x94\xa4" "ZMP1" "\xa6" "CREDIT" "\x07\x00"), false},
        {BYTES("\x94\xa4" "ZMP1" "\xa6" "CREDIT" "\x07\xcd\x04\x01"), false},
        {BYTES("\x94\xa4" "ZMP1" "\xa4" "PART" "\x07\x01"), false},
    };
    for (size_t index = 0; index < COUNT(bad); index++) {
        zmsg_destroy(&fx->msg);
        fx->msg = zmsg_new();
        zmsg_addmem(fx->msg, "", 0);
        zmsg_addmem(fx->msg, bad[index].data, bad[index].size);
        if (bad[index].body)
            zmsg_addmem(fx->msg, "\xc0", 1);
        assert_false(zm_proto_decode(&fx->self, fx->msg, NULL, &error));
        assert_int_equal(error.status, ZM_STATUS_MALFORMED);
        assert_true(error.have_id);
    }
}

static void
test_proto_round_trips_progress(void **state)
{
    zt_proto_fixture_t *fx = *state;
    uint8_t header[ZM_HEADER_MAX];
    fx->in.cmd = ZM_CMD_PROGRESS;
    fx->in.id = 7;
    fx->in.extend_ms = 1000;
    fx->in.body = zt_proto_frame(BYTES("\xc0"));       //  stray body: encode drops and frees it
    size_t size = zt_proto_round_trip(fx, header);
    //  ["ZMP1", "PROGRESS", 7, 1000]
    static const char expected[] = "\x94\xa4\x5a\x4d\x50\x31\xa8\x50\x52\x4f\x47\x52\x45\x53\x53"
                                   "\x07\xcd\x03\xe8";
    zt_proto_assert_bytes(header, size, expected, sizeof expected - 1);
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.extend_ms, 1000);
    const struct {
        uint64_t id;
        uint32_t extend_ms;
    } cases[] = {{0, 0}, {UINT64_MAX, UINT32_MAX}, {(uint64_t) 1 << 40, 1}};
    for (size_t index = 0; index < COUNT(cases); index++) {
        fx->in.cmd = ZM_CMD_PROGRESS;
        fx->in.id = cases[index].id;
        fx->in.extend_ms = cases[index].extend_ms;
        zt_proto_round_trip(fx, header);
        assert_int_equal(header[0], 0x94);
        assert_true(fx->self.id == cases[index].id);
        assert_int_equal(fx->self.extend_ms, cases[index].extend_ms);
    }
    //  Wide encodings from other packers.
    s_decode_ok(fx, BYTES("\x94" H_SIG "\xd9\x08" "PROGRESS" "\xcf\x00\x00\x00\x00\x00\x00\x00\x07"
                          "\xd2\x00\x00\x03\xe8"), NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_PROGRESS);
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.extend_ms, 1000);
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_PROGRESS), "PROGRESS");
}

//  A decode replaces whatever self held, freeing its body.
static void
test_proto_decode_replaces_the_previous_command(void **state)
{
    zt_proto_fixture_t *fx = *state;
    s_decode_ok(fx, BYTES(GOOD_CALL), BYTES("\xc0"), &zt_proto_checked);
    assert_string_equal(fx->self.service, "echo");
    s_decode_ok(fx, BYTES(GOOD_HEARTBEAT), NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_HEARTBEAT);
    assert_string_equal(fx->self.service, "");
    assert_int_equal(fx->self.id, 0);
    //  A failed decode also drops the old body.
    s_decode_ok(fx, BYTES(GOOD_REQUEST), BYTES("\xc0"), &zt_proto_checked);
    fx->msg = zt_proto_frames(BYTES("\xc0"), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "nil header", ZM_STATUS_MALFORMED, false, 0);
}

//  Other packers use wider encodings than needed; every one must be accepted.
static void
test_proto_accepts_foreign_encodings(void **state)
{
    zt_proto_fixture_t *fx = *state;
    // clang-format off
    s_decode_ok(fx, BYTES("\xdc\x00\x05" "\xd9\x04" "ZMP1" "\xd9\x04" "CALL"
                          "\xcf\x00\x00\x00\x00\x00\x00\x00\x07" "\xda\x00\x04" "echo"
                          "\xd0\x64"), BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_CALL);
    assert_int_equal(fx->self.id, 7);
    assert_string_equal(fx->self.service, "echo");
    assert_int_equal(fx->self.timeout_ms, 100);
    s_decode_ok(fx, BYTES("\xdd\x00\x00\x00\x04" "\xdb\x00\x00\x00\x04" "ZMP1"
                          "\xd9\x05" "REPLY" "\xd3\x00\x00\x00\x00\x00\x00\x00\x07"
                          "\xd1\x00\xc8"), BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_REPLY);
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.status, 200);
    s_decode_ok(fx, BYTES("\x96" H_SIG "\xd9\x05" "READY" "\xd9\x04" "echo"
                          "\xcf\x00\x00\x00\x00\x00\x00\x00\x04" "\xd2\x00\x00\x03\xe8"
                          "\xd0\x03"), NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_READY);
    assert_string_equal(fx->self.service, "echo");
    assert_int_equal(fx->self.slots, 4);
    assert_int_equal(fx->self.heartbeat_ms, 1000);
    assert_int_equal(fx->self.liveness, 3);
    s_decode_ok(fx, BYTES("\x95" H_SIG "\xda\x00\x07" "REQUEST" "\xce\x00\x00\x00\x07"
                          "\xdb\x00\x00\x00\x04" "echo"
                          "\xd3\x00\x00\x00\x00\xff\xff\xff\xff"),
                BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_REQUEST);
    assert_int_equal(fx->self.id, 7);
    assert_int_equal(fx->self.timeout_ms, UINT32_MAX);
    s_decode_ok(fx, BYTES("\xdc\x00\x02" "\xd9\x04" "ZMP1" "\xdb\x00\x00\x00\x09" "HEARTBEAT"),
                NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_HEARTBEAT);
    s_decode_ok(fx, BYTES("\x94" H_SIG "\xda\x00\x0a" "DISCONNECT" "\xd1\x01\xf4" "\xd9\x00"),
                NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.cmd, ZM_CMD_DISCONNECT);
    assert_int_equal(fx->self.status, 500);
    assert_string_equal(fx->self.reason, "");
    //  A CALL with an explicit timeout of 0, and an id of 0 as int 8.
    s_decode_ok(fx, BYTES("\x95" H_SIG H_CALL "\xd0\x00" H_ECHO "\x00"), BYTES("\xc0"),
                &zt_proto_checked);
    assert_int_equal(fx->self.id, 0);
    assert_int_equal(fx->self.timeout_ms, 0);
    // clang-format on
}

//  The range edges of READY, REPLY, DISCONNECT and CALL are inside the range.
static void
test_proto_accepts_range_edges(void **state)
{
    zt_proto_fixture_t *fx = *state;
    s_decode_ok(fx, BYTES("\x96" H_SIG H_READY H_ECHO "\x01\x64\x02"), NULL, 0, &zt_proto_checked);
    assert_int_equal(fx->self.slots, 1);
    assert_int_equal(fx->self.heartbeat_ms, 100);
    assert_int_equal(fx->self.liveness, 2);
    s_decode_ok(fx, BYTES("\x96" H_SIG H_READY H_ECHO "\xcd\x04\x00\xcd\xea\x60\x64"), NULL, 0,
                &zt_proto_checked);
    assert_int_equal(fx->self.slots, 1024);
    assert_int_equal(fx->self.heartbeat_ms, 60000);
    assert_int_equal(fx->self.liveness, 100);
    s_decode_ok(fx, BYTES("\x94" H_SIG H_REPLY "\x07\x64"), BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.status, 100);
    s_decode_ok(fx, BYTES("\x94" H_SIG H_REPLY "\x07\xcd\x03\xe7"), BYTES("\xc0"),
                &zt_proto_checked);
    assert_int_equal(fx->self.status, 999);
    s_decode_ok(fx, BYTES("\x94" H_SIG H_DISCONNECT "\xcd\x03\xe7\xa0"), NULL, 0,
                &zt_proto_checked);
    assert_int_equal(fx->self.status, 999);
    s_decode_ok(fx, BYTES("\x95" H_SIG H_CALL "\x07" H_ECHO "\xce\xff\xff\xff\xff"),
                BYTES("\xc0"), &zt_proto_checked);
    assert_int_equal(fx->self.timeout_ms, UINT32_MAX);
}

//  ---------------------------------------------------------------------
//  Malformed headers, command by command

// clang-format off
static const s_bad_t s_bad_head[] = {
    BAD("empty header frame", "", true, 400, false),
    BAD("header is nil", "\xc0", true, 400, false),
    BAD("header is a map", "\x82" H_SIG H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("header is a str", H_SIG, true, 400, false),
    BAD("header is bin", "\xc4\x04" "ZMP1", true, 400, false),
    BAD("header is 0xc1", "\xc1", true, 400, false),
    BAD("header is an empty array", "\x90", true, 400, false),
    BAD("header is an array of 1", "\x91" H_SIG, true, 400, false),
    BAD("header array cut short", "\x94" H_SIG, true, 400, false),
    BAD("header str cut short", "\x94\xa4" "ZM", true, 400, false),
    BAD("signature is a uint", "\x94\x01" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature is nil", "\x94\xc0" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature is bin", "\x94\xc4\x04" "ZMP1" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature is empty", "\x94\xa0" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature ZMQ1", "\x94\xa4" "ZMQ1" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature zmp1", "\x94\xa4" "zmp1" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature ZMP", "\x94\xa3" "ZMP" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature ZM", "\x94\xa2" "ZM" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("signature ZMP2", "\x94\xa4" "ZMP2" H_CALL "\x07" H_ECHO, true, 505, false),
    BAD("signature ZMP0", "\x94\xa4" "ZMP0" H_CALL "\x07" H_ECHO, true, 505, false),
    BAD("signature ZMP10", "\x94\xa5" "ZMP10" H_CALL "\x07" H_ECHO, true, 505, false),
    BAD("ZMP2 HEARTBEAT", "\x92\xa4" "ZMP2" H_HEARTBEAT, false, 505, false),
    BAD("ZMP2 with an unknown command", "\x93\xa4" "ZMP2" "\xa4" "PING" "\x01", false, 505,
        false),
    BAD("command is a uint", "\x94" H_SIG "\x01\x07" H_ECHO, true, 400, false),
    BAD("command is nil", "\x94" H_SIG "\xc0\x07" H_ECHO, true, 400, false),
    BAD("command is bin", "\x94" H_SIG "\xc4\x04" "CALL" "\x07" H_ECHO, true, 400, false),
    BAD("command is an array", "\x94" H_SIG "\x91" H_CALL "\x07" H_ECHO, true, 400, false),
    BAD("unknown command", "\x94" H_SIG "\xa4" "CALX" "\x07" H_ECHO, true, 400, false),
    BAD("command in lower case", "\x94" H_SIG "\xa4" "call" "\x07" H_ECHO, true, 400, false),
    BAD("command with a NUL after it", "\x94" H_SIG "\xa5" "CALL\x00" "\x07" H_ECHO, true, 400,
        false),
    BAD("command prefix", "\x94" H_SIG "\xa3" "CAL" "\x07" H_ECHO, true, 400, false),
    BAD("command empty", "\x94" H_SIG "\xa0\x07" H_ECHO, true, 400, false),
    BAD("heartbeat in lower case", "\x92" H_SIG "\xa9" "heartbeat", false, 400, false),
};

static const s_bad_t s_bad_call[] = {
    BAD("3 fields", "\x93" H_SIG H_CALL "\x07", true, 400, false),
    BAD("8 fields", "\x98" H_SIG H_CALL "\x07" H_ECHO "\x00\x02\x01\x00", true, 400, false),
    BAD("window 0", "\x97" H_SIG H_CALL "\x07" H_ECHO "\x00\x02\x00", true, 400, true),
    BAD("window 1025", "\x97" H_SIG H_CALL "\x07" H_ECHO "\x00\x02\xcd\x04\x01", true, 400, true),
    BAD("flags not a uint", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\xa1x", true, 400, true),
    BAD("id is a str", "\x94" H_SIG H_CALL "\xa1" "7" H_ECHO, true, 400, false),
    BAD("id is nil", "\x94" H_SIG H_CALL "\xc0" H_ECHO, true, 400, false),
    BAD("id is true", "\x94" H_SIG H_CALL "\xc3" H_ECHO, true, 400, false),
    BAD("id is a float", "\x94" H_SIG H_CALL "\xcb\x40\x1c\x00\x00\x00\x00\x00\x00" H_ECHO, true,
        400, false),
    BAD("id is -1", "\x94" H_SIG H_CALL "\xff" H_ECHO, true, 400, false),
    BAD("id is int 8 -128", "\x94" H_SIG H_CALL "\xd0\x80" H_ECHO, true, 400, false),
    BAD("id is int 64 -1", "\x94" H_SIG H_CALL "\xd3\xff\xff\xff\xff\xff\xff\xff\xff" H_ECHO,
        true, 400, false),
    BAD("service is a uint", "\x94" H_SIG H_CALL "\x07\x01", true, 400, true),
    BAD("service is nil", "\x94" H_SIG H_CALL "\x07\xc0", true, 400, true),
    BAD("service is bin", "\x94" H_SIG H_CALL "\x07\xc4\x04" "echo", true, 400, true),
    BAD("service is empty", "\x94" H_SIG H_CALL "\x07\xa0", true, 400, true),
    BAD("service has a space", "\x94" H_SIG H_CALL "\x07\xa3" "a b", true, 400, true),
    BAD("service has a NUL", "\x94" H_SIG H_CALL "\x07\xa3" "a\x00" "b", true, 400, true),
    BAD("service has 0x7f", "\x94" H_SIG H_CALL "\x07\xa3" "a\x7f" "b", true, 400, true),
    BAD("service is UTF-8", "\x94" H_SIG H_CALL "\x07\xa5" "caf\xc3\xa9", true, 400, true),
    BAD("timeout is a str", "\x95" H_SIG H_CALL "\x07" H_ECHO "\xa1" "1", true, 400, true),
    BAD("timeout is nil", "\x95" H_SIG H_CALL "\x07" H_ECHO "\xc0", true, 400, true),
    BAD("timeout is -1", "\x95" H_SIG H_CALL "\x07" H_ECHO "\xff", true, 400, true),
    BAD("timeout is int 16 -1", "\x95" H_SIG H_CALL "\x07" H_ECHO "\xd1\xff\xff", true, 400,
        true),
    BAD("timeout is 2^32", "\x95" H_SIG H_CALL "\x07" H_ECHO H_2P32, true, 400, true),
    BAD("timeout is a float", "\x95" H_SIG H_CALL "\x07" H_ECHO "\xca\x3f\x80\x00\x00", true,
        400, true),
    BAD("array of 5 holding 4", "\x95" H_SIG H_CALL "\x07" H_ECHO, true, 400, true),
    BAD("a byte after the array", "\x94" H_SIG H_CALL "\x07" H_ECHO "\xc0", true, 400, true),
    BAD("a byte after a 5-field array", GOOD_CALL "\x00", true, 400, true),
    BAD("no body frame", GOOD_CALL, false, 400, true),
};

static const s_bad_t s_bad_reply[] = {
    BAD("3 fields", "\x93" H_SIG H_REPLY "\x07", true, 400, false),
    BAD("5 fields", "\x95" H_SIG H_REPLY "\x07" H_200 "\x00", true, 400, false),
    BAD("id is a str", "\x94" H_SIG H_REPLY "\xa1" "7" H_200, true, 400, false),
    BAD("id is -1", "\x94" H_SIG H_REPLY "\xff" H_200, true, 400, false),
    BAD("id is int 32 negative", "\x94" H_SIG H_REPLY "\xd2\x80\x00\x00\x00" H_200, true, 400,
        false),
    BAD("status is a str", "\x94" H_SIG H_REPLY "\x07\xa3" "200", true, 400, true),
    BAD("status is nil", "\x94" H_SIG H_REPLY "\x07\xc0", true, 400, true),
    BAD("status is -200", "\x94" H_SIG H_REPLY "\x07\xd1\xff\x38", true, 400, true),
    BAD("status 99", "\x94" H_SIG H_REPLY "\x07\x63", true, 400, true),
    BAD("status 0", "\x94" H_SIG H_REPLY "\x07\x00", true, 400, true),
    BAD("status 1000", "\x94" H_SIG H_REPLY "\x07" H_1000, true, 400, true),
    BAD("status 2^32 + 200", "\x94" H_SIG H_REPLY "\x07\xcf\x00\x00\x00\x01\x00\x00\x00\xc8",
        true, 400, true),
    BAD("status is a float", "\x94" H_SIG H_REPLY "\x07\xcb\x40\x69\x00\x00\x00\x00\x00\x00",
        true, 400, true),
    BAD("a byte after the array", GOOD_REPLY "\x00", true, 400, true),
    BAD("no body frame", GOOD_REPLY, false, 400, true),
};

static const s_bad_t s_bad_ready[] = {
    BAD("5 fields", "\x95" H_SIG H_READY H_ECHO "\x01" H_1000, false, 400, false),
    BAD("8 fields", "\x98" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\x00\x00", false, 400, false),
    BAD("flags not a uint", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\xa1x", false, 400,
        false),
    BAD("2 fields", "\x92" H_SIG H_READY, false, 400, false),
    BAD("service is a uint", "\x96" H_SIG H_READY "\x07\x01" H_1000 "\x03", false, 400, false),
    BAD("service is bin", "\x96" H_SIG H_READY "\xc4\x01" "e" "\x01" H_1000 "\x03", false, 400,
        false),
    BAD("service is empty", "\x96" H_SIG H_READY "\xa0\x01" H_1000 "\x03", false, 400, false),
    BAD("service has a space", "\x96" H_SIG H_READY "\xa3" "a b" "\x01" H_1000 "\x03", false, 400,
        false),
    BAD("service has 0xff", "\x96" H_SIG H_READY "\xa1\xff\x01" H_1000 "\x03", false, 400, false),
    BAD("slots 0", "\x96" H_SIG H_READY H_ECHO "\x00" H_1000 "\x03", false, 400, false),
    BAD("slots 1025", "\x96" H_SIG H_READY H_ECHO "\xcd\x04\x01" H_1000 "\x03", false, 400,
        false),
    BAD("slots -1", "\x96" H_SIG H_READY H_ECHO "\xff" H_1000 "\x03", false, 400, false),
    BAD("slots is a str", "\x96" H_SIG H_READY H_ECHO "\xa1" "1" H_1000 "\x03", false, 400,
        false),
    BAD("slots 2^32 + 1", "\x96" H_SIG H_READY H_ECHO "\xcf\x00\x00\x00\x01\x00\x00\x00\x01"
        H_1000 "\x03", false, 400, false),
    BAD("heartbeat 99", "\x96" H_SIG H_READY H_ECHO "\x01\x63\x03", false, 400, false),
    BAD("heartbeat 60001", "\x96" H_SIG H_READY H_ECHO "\x01\xcd\xea\x61\x03", false, 400,
        false),
    BAD("heartbeat 0", "\x96" H_SIG H_READY H_ECHO "\x01\x00\x03", false, 400, false),
    BAD("heartbeat is a str", "\x96" H_SIG H_READY H_ECHO "\x01\xa4" "1000" "\x03", false, 400,
        false),
    BAD("liveness 1", "\x96" H_SIG H_READY H_ECHO "\x01" H_1000 "\x01", false, 400, false),
    BAD("liveness 101", "\x96" H_SIG H_READY H_ECHO "\x01" H_1000 "\x65", false, 400, false),
    BAD("liveness -3", "\x96" H_SIG H_READY H_ECHO "\x01" H_1000 "\xfd", false, 400, false),
    BAD("liveness is nil", "\x96" H_SIG H_READY H_ECHO "\x01" H_1000 "\xc0", false, 400, false),
    BAD("array of 6 holding 5", "\x96" H_SIG H_READY H_ECHO "\x01" H_1000, false, 400, false),
    BAD("a byte after the array", GOOD_READY "\x00", false, 400, false),
    BAD("with a body frame", GOOD_READY, true, 400, false),
};

static const s_bad_t s_bad_request[] = {
    BAD("4 fields, no timeout", "\x94" H_SIG H_REQUEST "\x07" H_ECHO, true, 400, false),
    BAD("8 fields", "\x98" H_SIG H_REQUEST "\x07" H_ECHO "\x00\x01\x01\x00", true, 400, false),
    BAD("window 0", "\x97" H_SIG H_REQUEST "\x07" H_ECHO "\x00\x01\x00", true, 400, true),
    BAD("attempt 0", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\x00", true, 400, true),
    BAD("3 fields", "\x93" H_SIG H_REQUEST "\x07", true, 400, false),
    BAD("ticket is a str", "\x95" H_SIG H_REQUEST "\xa1" "7" H_ECHO "\x00", true, 400, false),
    BAD("ticket is -1", "\x95" H_SIG H_REQUEST "\xff" H_ECHO "\x00", true, 400, false),
    BAD("ticket is bin", "\x95" H_SIG H_REQUEST "\xc4\x01\x07" H_ECHO "\x00", true, 400, false),
    BAD("service is a uint", "\x95" H_SIG H_REQUEST "\x07\x01\x00", true, 400, true),
    BAD("service is empty", "\x95" H_SIG H_REQUEST "\x07\xa0\x00", true, 400, true),
    BAD("service has a tab", "\x95" H_SIG H_REQUEST "\x07\xa3" "a\tb" "\x00", true, 400, true),
    BAD("timeout is 2^32", "\x95" H_SIG H_REQUEST "\x07" H_ECHO H_2P32, true, 400, true),
    BAD("timeout is -1", "\x95" H_SIG H_REQUEST "\x07" H_ECHO "\xff", true, 400, true),
    BAD("timeout is a str", "\x95" H_SIG H_REQUEST "\x07" H_ECHO "\xa1" "0", true, 400, true),
    BAD("a byte after the array", GOOD_REQUEST "\x00", true, 400, true),
    BAD("no body frame", GOOD_REQUEST, false, 400, true),
};

static const s_bad_t s_bad_heartbeat[] = {
    BAD("3 fields", "\x93" H_SIG H_HEARTBEAT "\x00", false, 400, false),
    BAD("a byte after the array", GOOD_HEARTBEAT "\x00", false, 400, false),
    BAD("with a body frame", GOOD_HEARTBEAT, true, 400, false),
};

static const s_bad_t s_bad_disconnect[] = {
    BAD("3 fields", "\x93" H_SIG H_DISCONNECT H_200, false, 400, false),
    BAD("5 fields", "\x95" H_SIG H_DISCONNECT H_200 H_BYE "\x00", false, 400, false),
    BAD("2 fields", "\x92" H_SIG H_DISCONNECT, false, 400, false),
    BAD("status is a str", "\x94" H_SIG H_DISCONNECT "\xa3" "200" H_BYE, false, 400, false),
    BAD("status 99", "\x94" H_SIG H_DISCONNECT "\x63" H_BYE, false, 400, false),
    BAD("status 1000", "\x94" H_SIG H_DISCONNECT H_1000 H_BYE, false, 400, false),
    BAD("status -1", "\x94" H_SIG H_DISCONNECT "\xff" H_BYE, false, 400, false),
    BAD("reason is a uint", "\x94" H_SIG H_DISCONNECT H_200 "\x01", false, 400, false),
    BAD("reason is nil", "\x94" H_SIG H_DISCONNECT H_200 "\xc0", false, 400, false),
    BAD("reason is bin", "\x94" H_SIG H_DISCONNECT H_200 "\xc4\x03" "bye", false, 400, false),
    BAD("reason cut short", "\x94" H_SIG H_DISCONNECT H_200 "\xa5" "bye", false, 400, false),
    BAD("a byte after the array", GOOD_DISCONNECT "\x00", false, 400, false),
    BAD("with a body frame", GOOD_DISCONNECT, true, 400, false),
};

static const s_bad_t s_bad_progress[] = {
    BAD("3 fields", "\x93" H_SIG H_PROGRESS "\x07", false, 400, false),
    BAD("5 fields", "\x95" H_SIG H_PROGRESS "\x07" H_1000 "\x00", false, 400, false),
    BAD("2 fields", "\x92" H_SIG H_PROGRESS, false, 400, false),
    BAD("id is a str", "\x94" H_SIG H_PROGRESS "\xa1" "7" H_1000, false, 400, false),
    BAD("id is -1", "\x94" H_SIG H_PROGRESS "\xff" H_1000, false, 400, false),
    BAD("id is nil", "\x94" H_SIG H_PROGRESS "\xc0" H_1000, false, 400, false),
    BAD("id is a float", "\x94" H_SIG H_PROGRESS "\xcb\x40\x1c\x00\x00\x00\x00\x00\x00" H_1000,
        false, 400, false),
    BAD("extend is a str", "\x94" H_SIG H_PROGRESS "\x07\xa4" "1000", false, 400, true),
    BAD("extend is -1", "\x94" H_SIG H_PROGRESS "\x07\xff", false, 400, true),
    BAD("extend is int 64 -1", "\x94" H_SIG H_PROGRESS "\x07\xd3\xff\xff\xff\xff\xff\xff\xff\xff",
        false, 400, true),
    BAD("extend is nil", "\x94" H_SIG H_PROGRESS "\x07\xc0", false, 400, true),
    BAD("extend is true", "\x94" H_SIG H_PROGRESS "\x07\xc3", false, 400, true),
    BAD("extend is 2^32", "\x94" H_SIG H_PROGRESS "\x07" H_2P32, false, 400, true),
    BAD("extend is a float", "\x94" H_SIG H_PROGRESS "\x07\xca\x3f\x80\x00\x00", false, 400,
        true),
    BAD("array of 4 holding 3", "\x94" H_SIG H_PROGRESS "\x07", false, 400, true),
    BAD("a byte after the array", GOOD_PROGRESS "\x00", false, 400, true),
    BAD("with a body frame", GOOD_PROGRESS, true, 400, true),
    BAD("signature ZMP2", "\x94\xa4" "ZMP2" H_PROGRESS "\x07" H_1000, false, 505, false),
};

static const s_bad_t s_bad_call_flags[] = {
    BAD("flags is -1", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\xff", true, 400, true),
    BAD("flags is 2^32", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00" H_2P32, true, 400, true),
    BAD("flags is nil", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\xc0", true, 400, true),
    BAD("flags is a float", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\xca\x3f\x80\x00\x00", true,
        400, true),
    BAD("flags after a str timeout", "\x96" H_SIG H_CALL "\x07" H_ECHO "\xa1" "0" "\x01", true,
        400, true),
    BAD("flags and no body frame", "\x96" H_SIG H_CALL "\x07" H_ECHO "\x00\x01", false, 400, true),
};

static const s_bad_t s_bad_ready_flags[] = {
    BAD("flags is -1", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\xff", false, 400, false),
    BAD("flags is 2^32", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03" H_2P32, false, 400,
        false),
    BAD("flags is nil", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\xc0", false, 400, false),
    BAD("flags is true", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\xc3", false, 400, false),
    BAD("flags and a body frame", "\x97" H_SIG H_READY H_ECHO "\x01" H_1000 "\x03\x01", true, 400,
        false),
};

static const s_bad_t s_bad_request_attempt[] = {
    BAD("attempt is a str", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\xa1" "1", true, 400, true),
    BAD("attempt is -1", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\xff", true, 400, true),
    BAD("attempt is 2^32", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00" H_2P32, true, 400, true),
    BAD("attempt is nil", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\xc0", true, 400, true),
    BAD("attempt and no body frame", "\x96" H_SIG H_REQUEST "\x07" H_ECHO "\x00\x01", false, 400,
        true),
};
// clang-format on

static void
test_proto_rejects_malformed_head(void **state)
{
    s_run_bad(*state, s_bad_head, COUNT(s_bad_head), 0, BYTES(GOOD_CALL), true);
}

static void
test_proto_rejects_malformed_call(void **state)
{
    s_run_bad(*state, s_bad_call, COUNT(s_bad_call), ZM_CMD_CALL, BYTES(GOOD_CALL), true);
}

static void
test_proto_rejects_malformed_reply(void **state)
{
    s_run_bad(*state, s_bad_reply, COUNT(s_bad_reply), ZM_CMD_REPLY, BYTES(GOOD_REPLY), true);
}

static void
test_proto_rejects_malformed_ready(void **state)
{
    s_run_bad(*state, s_bad_ready, COUNT(s_bad_ready), ZM_CMD_READY, BYTES(GOOD_READY), false);
}

static void
test_proto_rejects_malformed_request(void **state)
{
    s_run_bad(*state, s_bad_request, COUNT(s_bad_request), ZM_CMD_REQUEST, BYTES(GOOD_REQUEST),
              true);
}

static void
test_proto_rejects_malformed_heartbeat(void **state)
{
    s_run_bad(*state, s_bad_heartbeat, COUNT(s_bad_heartbeat), ZM_CMD_HEARTBEAT,
              BYTES(GOOD_HEARTBEAT), false);
}

static void
test_proto_rejects_malformed_disconnect(void **state)
{
    s_run_bad(*state, s_bad_disconnect, COUNT(s_bad_disconnect), ZM_CMD_DISCONNECT,
              BYTES(GOOD_DISCONNECT), false);
}

static void
test_proto_rejects_malformed_progress(void **state)
{
    s_run_bad(*state, s_bad_progress, COUNT(s_bad_progress), ZM_CMD_PROGRESS, BYTES(GOOD_PROGRESS),
              false);
}

//  The optional trailing fields are checked like any other: a uint in range.
static void
test_proto_rejects_bad_optional_fields(void **state)
{
    s_run_bad(*state, s_bad_call_flags, COUNT(s_bad_call_flags), ZM_CMD_CALL, BYTES(GOOD_CALL),
              true);
    s_run_bad(*state, s_bad_ready_flags, COUNT(s_bad_ready_flags), ZM_CMD_READY,
              BYTES(GOOD_READY), false);
    s_run_bad(*state, s_bad_request_attempt, COUNT(s_bad_request_attempt), ZM_CMD_REQUEST,
              BYTES(GOOD_REQUEST), true);
}

//  ZMP.md section 14: only "ZMP" followed by a number other than 1 is 505;
//  any other signature is 400.
static void
test_proto_rejects_non_numeric_zmp_signature_as_malformed(void **state)
{
    static const s_bad_t cases[] = {
        BAD("signature ZMPx", "\x94\xa4" "ZMPx" H_CALL "\x07" H_ECHO, true, 400, false),
        BAD("signature ZMP/1", "\x94\xa5" "ZMP/1" H_CALL "\x07" H_ECHO, true, 400, false),
    };
    s_run_bad(*state, cases, COUNT(cases), ZM_CMD_CALL, BYTES(GOOD_CALL), true);
}

//  ---------------------------------------------------------------------
//  Framing and sizes

//  Returns a new message of count frames, given as (data, size) pairs.
static zmsg_t *
s_frames(int count, ...)
{
    zmsg_t *msg = zmsg_new();
    assert_non_null(msg);
    va_list args;
    va_start(args, count);
    for (int index = 0; index < count; index++) {
        const void *data = va_arg(args, const void *);
        size_t size = va_arg(args, size_t);
        zmsg_addmem(msg, data, size);
    }
    va_end(args);
    return msg;
}

static void
test_proto_rejects_bad_framing(void **state)
{
    zt_proto_fixture_t *fx = *state;
    fx->msg = s_frames(0);
    zt_proto_refuse(fx, &zt_proto_checked, "no frames", 400, false, 0);
    fx->msg = s_frames(2, BYTES(GOOD_CALL), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "missing delimiter", 400, false, 0);
    fx->msg = s_frames(3, BYTES("x"), BYTES(GOOD_CALL), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "non-empty delimiter", 400, false, 0);
    fx->msg = s_frames(4, BYTES("\x00\x6b\x8b\x45\x67"), BYTES(""), BYTES(GOOD_CALL),
                       BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "routing id in front", 400, false, 0);
    fx->msg = s_frames(1, BYTES(""));
    zt_proto_refuse(fx, &zt_proto_checked, "no header", 400, false, 0);
    fx->msg = s_frames(4, BYTES(""), BYTES(""), BYTES(GOOD_CALL), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "two delimiters", 400, false, 0);
    fx->msg = s_frames(4, BYTES(""), BYTES(GOOD_CALL), BYTES("\xc0"), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "CALL in 4 frames", 400, true, S_ID);
    fx->msg = s_frames(4, BYTES(""), BYTES(GOOD_REPLY), BYTES("\xc0"), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "REPLY in 4 frames", 400, true, S_ID);
    fx->msg = s_frames(4, BYTES(""), BYTES(GOOD_HEARTBEAT), BYTES("\xc0"), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "HEARTBEAT in 4 frames", 400, false, 0);
    fx->msg = s_frames(3, BYTES(""), BYTES(GOOD_READY), BYTES(""));
    zt_proto_refuse(fx, &zt_proto_checked, "READY with an empty third frame", 400, false, 0);
    s_decode_ok(fx, BYTES(GOOD_CALL), BYTES("\xc0"), &zt_proto_checked);
}

//  A refusal names the command when its name was readable, even under a bad
//  signature or an oversized header, so the broker answers a would-be
//  worker with DISCONNECT and a client with REPLY; otherwise cmd is 0.
static void
test_proto_names_the_command_of_a_refused_message(void **state)
{
    zt_proto_fixture_t *fx = *state;
    static const struct {
        s_bad_t bad;
        zm_cmd_t cmd;
    } cases[] = {
        {BAD("nil header", "\xc0", false, 400, false), 0},
        {BAD("no command", "\x91" H_SIG, false, 400, false), 0},
        {BAD("signature not a str", "\x92\x01" H_READY, false, 400, false), 0},
        {BAD("command not a str", "\x96" H_SIG "\x01" H_ECHO "\x01" H_1000 "\x03", false, 400,
             false), 0},
        {BAD("unknown command", "\x92" H_SIG "\xa5" "READI", false, 400, false), 0},
        {BAD("ZMP2 READY", "\x96\xa4" "ZMP2" H_READY H_ECHO "\x01" H_1000 "\x03", false, 505,
             false), ZM_CMD_READY},
        {BAD("ZMQ1 READY", "\x96\xa4" "ZMQ1" H_READY H_ECHO "\x01" H_1000 "\x03", false, 400,
             false), ZM_CMD_READY},
        {BAD("ZMP2 CALL", "\x94\xa4" "ZMP2" H_CALL "\x07" H_ECHO, true, 505, false), ZM_CMD_CALL},
        {BAD("READY slots 0", "\x96" H_SIG H_READY H_ECHO "\x00" H_1000 "\x03", false, 400,
             false), ZM_CMD_READY},
        {BAD("READY of 5 fields", "\x95" H_SIG H_READY H_ECHO "\x01" H_1000, false, 400, false),
         ZM_CMD_READY},
        {BAD("HEARTBEAT with a body", GOOD_HEARTBEAT, true, 400, false), ZM_CMD_HEARTBEAT},
        {BAD("REPLY without a body", GOOD_REPLY, false, 400, true), ZM_CMD_REPLY},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        const s_bad_t *bad = &cases[index].bad;
        s_decode_ok(fx, BYTES(GOOD_DISCONNECT), NULL, 0, &zt_proto_checked);   //  a stale command
        fx->msg = zt_proto_frames(bad->header, bad->header_size, bad->body ? "\xc0" : NULL, 1);
        zt_proto_refuse(fx, &zt_proto_checked, bad->name, bad->status, bad->have_id, S_ID);
        if (fx->self.cmd != cases[index].cmd)
            fail_msg("%s: refused as command %d, expected %d", bad->name, fx->self.cmd,
                     cases[index].cmd);
    }
    //  An oversized READY header is 413, and still a READY.
    static const char head[] = "\x96" H_SIG H_READY "\xda\x01\xf2";     //  a 498-byte name
    uint8_t header[ZM_HEADER_MAX + 1];
    memcpy(header, head, sizeof head - 1);
    memset(header + sizeof head - 1, 'x', sizeof header - (sizeof head - 1));
    fx->msg = zt_proto_frames(header, sizeof header, NULL, 0);
    zt_proto_refuse(fx, &zt_proto_checked, "513-byte READY", 413, false, 0);
    assert_int_equal(fx->self.cmd, ZM_CMD_READY);
    //  A refused delimiter reads no header at all.
    fx->msg = s_frames(3, BYTES("x"), BYTES(GOOD_READY), BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "bad delimiter", 400, false, 0);
    assert_int_equal(fx->self.cmd, 0);
}

//  The header limit is 512 bytes, checked before anything else in it.
static void
test_proto_rejects_header_over_512_bytes(void **state)
{
    zt_proto_fixture_t *fx = *state;
    //  A CALL with a 255-byte service, then filler bytes up to the size.
    static const char head[] = "\x94" H_SIG H_CALL "\x07\xd9\xff";
    const size_t head_size = sizeof head - 1;
    uint8_t header[ZM_HEADER_MAX + 1];
    memcpy(header, head, head_size);
    memset(header + head_size, 's', 255);
    memset(header + head_size + 255, 0xc0, sizeof header - head_size - 255);
    fx->msg = zt_proto_frames(header, ZM_HEADER_MAX + 1, BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "513-byte header", 413, false, 0);
    //  At 512 bytes the size is fine: the trailing bytes are what is wrong.
    fx->msg = zt_proto_frames(header, ZM_HEADER_MAX, BYTES("\xc0"));
    zt_proto_refuse(fx, &zt_proto_checked, "512-byte header", 400, true, S_ID);
    //  Garbage over the limit is 413 too, whatever it holds.
    memset(header, 0xc1, sizeof header);
    fx->msg = zt_proto_frames(header, sizeof header, NULL, 0);
    zt_proto_refuse(fx, &zt_proto_checked, "513 bytes of 0xc1", 413, false, 0);
    s_decode_ok(fx, BYTES(GOOD_CALL), BYTES("\xc0"), &zt_proto_checked);
}

static const char *const s_body_headers[] = {GOOD_CALL, GOOD_REPLY, GOOD_REQUEST};
static const size_t s_body_header_sizes[] = {sizeof GOOD_CALL - 1, sizeof GOOD_REPLY - 1,
                                             sizeof GOOD_REQUEST - 1};

static void
test_proto_enforces_max_body(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zm_proto_limits_t limits = {.max_body = 16, .check_body = true};
    for (size_t index = 0; index < COUNT(s_body_headers); index++) {
        const char *header = s_body_headers[index];
        size_t size = s_body_header_sizes[index];
        //  A 16-byte str (fixstr of 15) is at the limit; 17 bytes is over.
        s_decode_ok(fx, header, size, BYTES("\xaf" "0123456789abcde"), &limits);
        assert_int_equal(zframe_size(fx->self.body), 16);
        fx->msg = zt_proto_frames(header, size, BYTES("\xb0" "0123456789abcdef"));
        zt_proto_refuse(fx, &limits, "17-byte body", 413, true, S_ID);
        //  Too big and malformed: the size is what the peer hears about.
        fx->msg = zt_proto_frames(header, size, BYTES("\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1"
                                  "\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1"));
        zt_proto_refuse(fx, &limits, "17 bytes of 0xc1", 413, true, S_ID);
    }
}

//  max_body 0, and no limits at all, mean 1 MiB.
static void
test_proto_enforces_default_max_body(void **state)
{
    zt_proto_fixture_t *fx = *state;
    size_t size = ZM_BODY_MAX_DEFAULT + 1;
    fx->data = calloc(1, size);
    assert_non_null(fx->data);
    memcpy(fx->data, "\xc6\x00\x0f\xff\xfb", 5);   //  bin 32 of 1 MiB - 5 bytes
    zm_proto_limits_t zero = {.max_body = 0, .check_body = true};
    const zm_proto_limits_t *limits[] = {&zero, NULL};
    for (size_t index = 0; index < COUNT(limits); index++) {
        s_decode_ok(fx, BYTES(GOOD_CALL), fx->data, ZM_BODY_MAX_DEFAULT, limits[index]);
        assert_int_equal(zframe_size(fx->self.body), ZM_BODY_MAX_DEFAULT);
        fx->msg = zt_proto_frames(BYTES(GOOD_CALL), fx->data, size);
        zt_proto_refuse(fx, limits[index], "1 MiB + 1 body", 413, true, S_ID);
    }
}

// clang-format off
static const struct {
    const char *name;
    const char *data;
    size_t size;
} s_bad_bodies[] = {
    {"empty body frame", BYTES("")},
    {"0xc1", BYTES("\xc1")},
    {"trailing bytes", BYTES("\x91\x01" "junk")},
    {"two objects", BYTES("\x01\x02")},
    {"truncated array", BYTES("\x92\x01")},
    {"truncated str", BYTES("\xa5" "abc")},
    {"huge array count", BYTES("\xdd\xff\xff\xff\xff")},
    {"huge map count", BYTES("\xdf\xff\xff\xff\xff")},
};
// clang-format on

//  Puts count nested arrays around 1 in fx->data; returns the size.
static size_t
s_deep_body(zt_proto_fixture_t *fx, size_t count)
{
    free(fx->data);
    fx->data = malloc(count + 1);
    assert_non_null(fx->data);
    memset(fx->data, 0x91, count);
    fx->data[count] = 0x01;
    return count + 1;
}

static void
test_proto_checks_body_when_asked(void **state)
{
    zt_proto_fixture_t *fx = *state;
    for (size_t h = 0; h < COUNT(s_body_headers); h++) {
        const char *header = s_body_headers[h];
        size_t header_size = s_body_header_sizes[h];
        for (size_t index = 0; index < COUNT(s_bad_bodies); index++) {
            fx->msg = zt_proto_frames(header, header_size, s_bad_bodies[index].data,
                                      s_bad_bodies[index].size);
            zt_proto_refuse(fx, &zt_proto_checked, s_bad_bodies[index].name, 400, true, S_ID);
        }
        size_t size = s_deep_body(fx, 65);
        fx->msg = zt_proto_frames(header, header_size, fx->data, size);
        zt_proto_refuse(fx, &zt_proto_checked, "65 levels", 400, true, S_ID);
        s_decode_ok(fx, header, header_size, fx->data + 1, size - 1, &zt_proto_checked);   //  64
        assert_int_equal(zframe_size(fx->self.body), 65);
    }
    //  A tighter depth bound is honoured.
    zm_proto_limits_t shallow = {.check_body = true, .max_depth = 2};
    s_decode_ok(fx, BYTES(GOOD_CALL), BYTES("\x91\x91\x01"), &shallow);
    fx->msg = zt_proto_frames(BYTES(GOOD_CALL), BYTES("\x91\x91\x91\x01"));
    zt_proto_refuse(fx, &shallow, "3 levels, max 2", 400, true, S_ID);
}

//  With check_body off the body is opaque: only its size is checked.
static void
test_proto_passes_unchecked_body_through(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zm_proto_limits_t unchecked = {.max_body = 128, .check_body = false};
    for (size_t h = 0; h < COUNT(s_body_headers); h++) {
        for (size_t index = 0; index < COUNT(s_bad_bodies); index++) {
            size_t size = s_bad_bodies[index].size;
            s_decode_ok(fx, s_body_headers[h], s_body_header_sizes[h], s_bad_bodies[index].data,
                        size, &unchecked);
            assert_int_equal(zframe_size(fx->self.body), size);
            if (size)
                assert_memory_equal(zframe_data(fx->self.body), s_bad_bodies[index].data, size);
        }
        size_t size = s_deep_body(fx, 65);
        s_decode_ok(fx, s_body_headers[h], s_body_header_sizes[h], fx->data, size, &unchecked);
        assert_int_equal(zframe_size(fx->self.body), 66);
    }
}

//  ---------------------------------------------------------------------
//  Service names and the request id of a refused CALL

//  Packs into fx->pack a CALL, READY or REQUEST header naming service (any bytes).
static void
s_pack_named(zt_proto_fixture_t *fx, zm_cmd_t cmd, uint64_t id, const char *name, size_t size)
{
    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, cmd == ZM_CMD_READY ? 6 : 5);
    zmesh_pack_str(fx->pack, "ZMP1");
    zmesh_pack_str(fx->pack, zm_proto_cmd_name(cmd));
    if (cmd == ZM_CMD_READY) {
        zmesh_pack_strn(fx->pack, name, size);
        zmesh_pack_uint(fx->pack, 1);
        zmesh_pack_uint(fx->pack, 1000);
        zmesh_pack_uint(fx->pack, 3);
    }
    else {
        zmesh_pack_uint(fx->pack, id);
        zmesh_pack_strn(fx->pack, name, size);
        zmesh_pack_uint(fx->pack, 250);
    }
}

static void
test_proto_checks_service_names(void **state)
{
    zt_proto_fixture_t *fx = *state;
    char long_name[ZM_NAME_MAX + 1];
    memset(long_name, 'n', sizeof long_name);
    char printable[0x7e - 0x21 + 1];
    for (int c = 0x21; c <= 0x7e; c++)
        printable[c - 0x21] = (char) c;
    // clang-format off
    const struct {
        const char *name;
        size_t size;
        bool valid;
    } names[] = {
        {"a", 1, true}, {long_name, ZM_NAME_MAX, true}, {printable, sizeof printable, true},
        {"zmesh.status", 12, true}, {"", 0, false}, {long_name, ZM_NAME_MAX + 1, false},
        {"a b", 3, false}, {"a\0b", 3, false}, {"a\x7f", 2, false}, {"caf\xc3\xa9", 5, false},
        {"\x80", 1, false}, {"\xff", 1, false}, {" ", 1, false}, {"tab\t", 4, false},
        {"new\nline", 8, false},
    };
    // clang-format on
    const zm_cmd_t cmds[] = {ZM_CMD_CALL, ZM_CMD_READY, ZM_CMD_REQUEST};
    const uint64_t id = 0xdeadbeefcafeull;
    for (size_t c = 0; c < COUNT(cmds); c++) {
        bool body = cmds[c] != ZM_CMD_READY;
        for (size_t n = 0; n < COUNT(names); n++) {
            assert_int_equal(zm_proto_valid_name(names[n].name, names[n].size), names[n].valid);
            s_pack_named(fx, cmds[c], id, names[n].name, names[n].size);
            const void *header = zmesh_pack_data(fx->pack);
            size_t header_size = zmesh_pack_size(fx->pack);
            if (names[n].valid) {
                s_decode_ok(fx, header, header_size, body ? "\xc0" : NULL, 1, &zt_proto_checked);
                assert_int_equal(strlen(fx->self.service), names[n].size);
                assert_memory_equal(fx->self.service, names[n].name, names[n].size);
                continue;
            }
            char label[64];
            snprintf(label, sizeof label, "%s, name #%zu", zm_proto_cmd_name(cmds[c]), n);
            fx->msg = zt_proto_frames(header, header_size, body ? "\xc0" : NULL, 1);
            zt_proto_refuse(fx, &zt_proto_checked, label, 400, body, id);   //  READY has no id
        }
    }
    assert_false(zm_proto_valid_name(NULL, 0));
    assert_false(zm_proto_valid_name(NULL, 3));
}

//  The broker answers a refused CALL on its request id, so a refusal after
//  the id must say it read it, whatever went wrong next.
static void
test_proto_reports_request_id_of_a_refused_call(void **state)
{
    zt_proto_fixture_t *fx = *state;
    const uint64_t id = UINT64_MAX - 1;
    s_pack_named(fx, ZM_CMD_CALL, id, "bad name", 8);
    fx->msg = zt_proto_frames(zmesh_pack_data(fx->pack), zmesh_pack_size(fx->pack), BYTES("\xc0"));
    zm_proto_error_t error = zt_proto_refuse(fx, &zt_proto_checked, "bad name", 400, true, id);
    assert_non_null(strstr(error.reason, "service"));
    //  A good header whose body is wrong, too big, or missing.
    s_pack_named(fx, ZM_CMD_CALL, id, "echo", 4);
    const void *header = zmesh_pack_data(fx->pack);
    size_t size = zmesh_pack_size(fx->pack);
    zm_proto_limits_t limits = {.max_body = 4, .check_body = true};
    fx->msg = zt_proto_frames(header, size, BYTES("\xc1"));
    zt_proto_refuse(fx, &limits, "bad body", 400, true, id);
    fx->msg = zt_proto_frames(header, size, BYTES("\xa4" "abcd"));
    zt_proto_refuse(fx, &limits, "big body", 413, true, id);
    fx->msg = zt_proto_frames(header, size, NULL, 0);
    zt_proto_refuse(fx, &limits, "no body", 400, true, id);
}

static void
test_proto_checks_disconnect_reason_length(void **state)
{
    zt_proto_fixture_t *fx = *state;
    char reason[ZM_REASON_MAX + 1];
    memset(reason, 'r', sizeof reason);
    for (size_t size = ZM_REASON_MAX - 1; size <= ZM_REASON_MAX + 1; size++) {
        zmesh_pack_destroy(&fx->pack);
        fx->pack = zmesh_pack_new();
        zmesh_pack_array(fx->pack, 4);
        zmesh_pack_str(fx->pack, "ZMP1");
        zmesh_pack_str(fx->pack, "DISCONNECT");
        zmesh_pack_uint(fx->pack, 200);
        zmesh_pack_strn(fx->pack, reason, size);
        const void *header = zmesh_pack_data(fx->pack);
        size_t header_size = zmesh_pack_size(fx->pack);
        if (size <= ZM_REASON_MAX) {
            s_decode_ok(fx, header, header_size, NULL, 0, &zt_proto_checked);
            assert_int_equal(strlen(fx->self.reason), size);
            continue;
        }
        fx->msg = zt_proto_frames(header, header_size, NULL, 0);
        zt_proto_refuse(fx, &zt_proto_checked, "256-byte reason", 400, false, 0);
    }
}

//  ---------------------------------------------------------------------
//  Status mapping, reason frames, names

static void
test_proto_maps_status_to_error(void **state)
{
    (void) state;
    // clang-format off
    const struct {
        uint32_t status;
        int error;
    } table[] = {
        {200, ZMESH_OK}, {400, ZMESH_EINVAL}, {403, ZMESH_EDENIED}, {404, ZMESH_ENOSERVICE},
        {408, ZMESH_ETIMEDOUT}, {413, ZMESH_ETOOBIG}, {500, ZMESH_EHANDLER},
        {502, ZMESH_EWORKERLOST}, {503, ZMESH_EAGAIN}, {505, ZMESH_EPROTO}, {0, ZMESH_EPROTO},
        {201, ZMESH_EPROTO}, {499, ZMESH_EPROTO}, {999, ZMESH_EPROTO}, {UINT32_MAX, ZMESH_EPROTO},
    };
    // clang-format on
    for (size_t index = 0; index < COUNT(table); index++)
        if (zm_proto_status_error(table[index].status) != table[index].error)
            fail_msg("status %u maps to %d, expected %d", table[index].status,
                     zm_proto_status_error(table[index].status), table[index].error);
}

static void
test_proto_reason_frame_is_a_msgpack_str(void **state)
{
    (void) state;
    char long_reason[400];
    memset(long_reason, 'x', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';
    const struct {
        const char *reason;
        size_t head;        //  header bytes of the str
        size_t size;        //  bytes kept
    } cases[] = {
        {"", 1, 0}, {"no worker", 1, 9}, {long_reason + 399 - 40, 2, 40}, {long_reason, 2, 255},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        zframe_t *frame = zm_proto_reason_frame(cases[index].reason);
        assert_non_null(frame);
        size_t frame_size = zframe_size(frame);
        uint8_t data[ZM_REASON_MAX + 8];
        assert_true(frame_size <= sizeof data);
        memcpy(data, zframe_data(frame), frame_size);
        zframe_destroy(&frame);
        assert_int_equal(frame_size, cases[index].head + cases[index].size);
        assert_int_equal(zm_pack_check(data, frame_size, 0), ZMESH_OK);
        zm_reader_t reader;
        zm_reader_init(&reader, data, frame_size);
        const char *text;
        size_t size;
        assert_true(zm_reader_str(&reader, &text, &size));
        assert_true(zm_reader_done(&reader));
        assert_int_equal(size, cases[index].size);
        assert_memory_equal(text, cases[index].reason, size);
    }
}

static void
test_proto_names_commands_and_statuses(void **state)
{
    (void) state;
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_CALL), "CALL");
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_REPLY), "REPLY");
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_READY), "READY");
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_REQUEST), "REQUEST");
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_HEARTBEAT), "HEARTBEAT");
    assert_string_equal(zm_proto_cmd_name(ZM_CMD_DISCONNECT), "DISCONNECT");
    assert_string_equal(zm_proto_cmd_name((zm_cmd_t) 0), "UNKNOWN");
    assert_string_equal(zm_proto_cmd_name((zm_cmd_t) 99), "UNKNOWN");
    // clang-format off
    const struct {
        uint32_t status;
        const char *name;
    } table[] = {
        {200, "OK"}, {400, "MALFORMED"}, {403, "DENIED"}, {404, "NO_SERVICE"}, {408, "EXPIRED"},
        {413, "TOO_BIG"}, {500, "HANDLER_ERROR"}, {502, "WORKER_LOST"}, {503, "BUSY"},
        {505, "BAD_VERSION"}, {0, "UNKNOWN"}, {201, "UNKNOWN"}, {999, "UNKNOWN"},
    };
    // clang-format on
    for (size_t index = 0; index < COUNT(table); index++)
        assert_string_equal(zm_proto_status_name(table[index].status), table[index].name);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ZT_PROTO_TEST(test_proto_round_trips_call_with_timeout),
        ZT_PROTO_TEST(test_proto_round_trips_call_without_timeout),
        ZT_PROTO_TEST(test_proto_round_trips_reply),
        ZT_PROTO_TEST(test_proto_round_trips_ready),
        ZT_PROTO_TEST(test_proto_round_trips_request),
        ZT_PROTO_TEST(test_proto_round_trips_heartbeat),
        ZT_PROTO_TEST(test_proto_round_trips_disconnect),
        ZT_PROTO_TEST(test_proto_round_trips_call_with_flags),
        ZT_PROTO_TEST(test_proto_call_without_flags_has_flags_0),
        ZT_PROTO_TEST(test_proto_round_trips_ready_with_flags),
        ZT_PROTO_TEST(test_proto_round_trips_request_with_attempt),
        ZT_PROTO_TEST(test_proto_round_trips_progress),
        ZT_PROTO_TEST(test_proto_decode_replaces_the_previous_command),
        ZT_PROTO_TEST(test_proto_accepts_foreign_encodings),
        ZT_PROTO_TEST(test_proto_accepts_range_edges),
        ZT_PROTO_TEST(test_proto_rejects_malformed_head),
        ZT_PROTO_TEST(test_proto_rejects_malformed_call),
        ZT_PROTO_TEST(test_proto_rejects_malformed_reply),
        ZT_PROTO_TEST(test_proto_rejects_malformed_ready),
        ZT_PROTO_TEST(test_proto_rejects_malformed_request),
        ZT_PROTO_TEST(test_proto_rejects_malformed_heartbeat),
        ZT_PROTO_TEST(test_proto_rejects_malformed_disconnect),
        ZT_PROTO_TEST(test_proto_rejects_malformed_progress),
        ZT_PROTO_TEST(test_proto_rejects_bad_optional_fields),
        ZT_PROTO_TEST(test_proto_rejects_non_numeric_zmp_signature_as_malformed),
        ZT_PROTO_TEST(test_proto_rejects_bad_framing),
        ZT_PROTO_TEST(test_proto_names_the_command_of_a_refused_message),
        ZT_PROTO_TEST(test_proto_rejects_header_over_512_bytes),
        ZT_PROTO_TEST(test_proto_enforces_max_body),
        ZT_PROTO_TEST(test_proto_enforces_default_max_body),
        ZT_PROTO_TEST(test_proto_checks_body_when_asked),
        ZT_PROTO_TEST(test_proto_passes_unchecked_body_through),
        ZT_PROTO_TEST(test_proto_checks_service_names),
        ZT_PROTO_TEST(test_proto_reports_request_id_of_a_refused_call),
        ZT_PROTO_TEST(test_proto_checks_disconnect_reason_length),
        ZT_PROTO_TEST(test_proto_round_trips_stream_commands),
        cmocka_unit_test(test_proto_maps_status_to_error),
        cmocka_unit_test(test_proto_reason_frame_is_a_msgpack_str),
        cmocka_unit_test(test_proto_names_commands_and_statuses),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
