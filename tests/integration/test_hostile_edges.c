//  test_hostile_edges - the malformed-input edges test_bad_input leaves out,
//  sent from a raw DEALER to a broker with --max-body 4096: service names
//  holding NUL, invalid UTF-8, valid UTF-8, DEL, control bytes, a newline,
//  nothing, or 256 bytes (400) against 255 printable bytes (accepted: 404
//  after the grace); fields of the wrong type or range and the encodings a
//  receiver MUST accept; truncated headers and bytes after the header array;
//  signatures and command names that are almost right (400, 505 for
//  "ZMP<n>"); wrong envelopes (1000 frames, a routing-like first frame, two
//  delimiters); a header of 511 and 512 bytes (not too big: 400 for what
//  else is wrong with it) against 513 (413); a body one byte under, at and
//  over max-body. Each gets its documented status and request id, and a good
//  client's call succeeds right after each. A valid CALL header cannot reach
//  512 bytes (at most about 300), so the 512-byte headers are valid CALLs
//  padded by trailing bytes or by a sixth field: both are 400 below the
//  size limit and 413 above it. --max-garbage 0 keeps the socket from
//  being kicked; test_hostile_kick tests kicking.
#include "harness.h"
#include "hostile.h"
#include "wire.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_MAX_BODY 4096
#define S_GRACE_MS "300"
#define S_BYTES(text) text, sizeof text - 1
#define S_TIMEOUT "\xcd\x13\x88"      //  5000 as uint 16
#define S_RAW_ID 42                   //  the request id inside whole raw headers

//  A CALL whose header is [ZMP1, CALL, id] and then tail, in an array of
//  count elements; or, with count 0, a header frame of exactly tail.
typedef struct {
    const char *name;
    uint8_t count;
    const char *tail;
    size_t tail_size;
    uint32_t status;
    zm_hostile_id_t rule;
} s_case_t;

static const s_case_t s_cases[] = {
    //  Service names: 1..255 bytes, each 0x21..0x7E.
    {"NUL in the service name", 5, S_BYTES("\xa5" "ec\0ho" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"invalid UTF-8 name ff fe", 5, S_BYTES("\xa2\xff\xfe" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"valid UTF-8 name, not ASCII", 5, S_BYTES("\xa5\xc3\xa9" "cho" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_EXACT},
    {"DEL (0x7f) in the name", 5, S_BYTES("\xa5" "echo\x7f" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"byte 0x80 in the name", 5, S_BYTES("\xa5" "ech\x80o" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"control byte 0x01 in the name", 5, S_BYTES("\xa5\x01" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_EXACT},
    {"newline in the name (log injection)", 5, S_BYTES("\xae" "echo\nbroker: x" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_EXACT},
    {"empty service name", 5, S_BYTES("\xa0" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"service name as bin", 5, S_BYTES("\xc4\x04" "echo" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"service name as an integer", 5, S_BYTES("\x01" S_TIMEOUT), 400, ZM_HOSTILE_ID_EXACT},
    {"service name cut short", 4, S_BYTES("\xaa" "echo"), 400, ZM_HOSTILE_ID_EXACT},
    //  Fields: wrong types and ranges, and encodings a receiver MUST accept.
    {"timeout 2^32", 5, S_BYTES("\xa4" "echo\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), 400,
     ZM_HOSTILE_ID_EXACT},
    {"timeout -1", 5, S_BYTES("\xa4" "echo\xff"), 400, ZM_HOSTILE_ID_EXACT},
    {"timeout as a string", 5, S_BYTES("\xa4" "echo\xa4" "5000"), 400, ZM_HOSTILE_ID_EXACT},
    {"timeout nil", 5, S_BYTES("\xa4" "echo\xc0"), 400, ZM_HOSTILE_ID_EXACT},
    {"array says 5, holds 4", 5, S_BYTES("\xa4" "echo"), 400, ZM_HOSTILE_ID_EXACT},
    {"bytes after the header array", 5, S_BYTES("\xa4" "echo" S_TIMEOUT "\xc0"), 400,
     ZM_HOSTILE_ID_EXACT},
    {"timeout 5000 as uint 64", 5, S_BYTES("\xa4" "echo\xcf\0\0\0\0\0\0\x13\x88"), 200,
     ZM_HOSTILE_ID_EXACT},
    {"timeout 5000 as int 32", 5, S_BYTES("\xa4" "echo\xd2\0\0\x13\x88"), 200,
     ZM_HOSTILE_ID_EXACT},
    {"timeout left out", 4, S_BYTES("\xa4" "echo"), 200, ZM_HOSTILE_ID_EXACT},
    {"header array as array 32", 0,
     S_BYTES("\xdd\0\0\0\x05\xa4ZMP1\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 200,
     ZM_HOSTILE_ID_EXACT},
    {"request id 42 as int 64", 0,
     S_BYTES("\x95\xa4ZMP1\xa4" "CALL\xd3\0\0\0\0\0\0\0\x2a\xa4" "echo" S_TIMEOUT), 200,
     ZM_HOSTILE_ID_EXACT},
    {"request id negative", 0, S_BYTES("\x95\xa4ZMP1\xa4" "CALL\xd0\xff\xa4" "echo" S_TIMEOUT),
     400, ZM_HOSTILE_ID_ZERO},
    {"request id as a string", 0, S_BYTES("\x95\xa4ZMP1\xa4" "CALL\xa2" "42\xa4" "echo" S_TIMEOUT),
     400, ZM_HOSTILE_ID_ZERO},
    {"request id as a float", 0,
     S_BYTES("\x95\xa4ZMP1\xa4" "CALL\xcb\x40\x45\0\0\0\0\0\0\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    //  Heads: almost the right signature and command.
    {"header is a map", 0, S_BYTES("\x81\xa4ZMP1\xa4" "CALL"), 400, ZM_HOSTILE_ID_ZERO},
    {"header is nil", 0, S_BYTES("\xc0"), 400, ZM_HOSTILE_ID_ZERO},
    {"header frame empty", 0, S_BYTES(""), 400, ZM_HOSTILE_ID_ZERO},
    {"header holds the signature only", 0, S_BYTES("\x91\xa4ZMP1"), 400, ZM_HOSTILE_ID_ZERO},
    {"signature as bin", 0, S_BYTES("\x95\xc4\x04ZMP1\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"signature ZMP1 NUL", 0, S_BYTES("\x95\xa5ZMP1\0\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"signature zmp1", 0, S_BYTES("\x95\xa4zmp1\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"signature ZMP", 0, S_BYTES("\x95\xa3ZMP\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"signature ZMP10", 0, S_BYTES("\x95\xa5ZMP10\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT), 505,
     ZM_HOSTILE_ID_ZERO},
    {"signature ZMP and 30 digits", 0,
     S_BYTES("\x95\xd9\x21ZMP999999999999999999999999999999\xa4" "CALL\x2a\xa4" "echo" S_TIMEOUT),
     505, ZM_HOSTILE_ID_ZERO},
    {"command call", 0, S_BYTES("\x95\xa4ZMP1\xa4" "call\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"command CALL NUL", 0, S_BYTES("\x95\xa4ZMP1\xa5" "CALL\0\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"command as bin", 0, S_BYTES("\x95\xa4ZMP1\xc4\x04" "CALL\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
    {"command as an integer", 0, S_BYTES("\x95\xa4ZMP1\x01\x2a\xa4" "echo" S_TIMEOUT), 400,
     ZM_HOSTILE_ID_ZERO},
};
#define S_CASES (sizeof s_cases / sizeof s_cases[0])

//  ["", header, body]
static zmsg_t *
s_message(const void *header, size_t header_size, const void *body, size_t body_size)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zm_wire_add(msg, header, header_size);
    zm_wire_add(msg, body, body_size);
    return msg;
}

//  [ZMP1, CALL, id] in an array of count, id as uint 64; returns the size.
static size_t
s_head(uint8_t *header, uint8_t count, uint64_t id)
{
    header[0] = (uint8_t) (0x90 | count);
    memcpy(header + 1, "\xa4ZMP1\xa4" "CALL\xcf", 11);
    for (int i = 0; i < 8; i++)
        header[12 + i] = (uint8_t) (id >> (56 - 8 * i));
    return 20;
}

static zmsg_t *
s_build(const s_case_t *test, uint64_t id)
{
    uint8_t header[600];
    size_t size = 0;
    if (test->count > 0)
        size = s_head(header, test->count, id);
    assert_true(size + test->tail_size <= sizeof header);
    memcpy(header + size, test->tail, test->tail_size);
    return s_message(header, size + test->tail_size, "\x91\x2a", 2);
}

//  A CALL to "echo" whose header is exactly size bytes: padded with nils
//  after the array, or with a sixth field (a str) inside it.
static zmsg_t *
s_header_of(size_t size, bool sixth_field, uint64_t id)
{
    uint8_t header[600];
    size_t used = s_head(header, sixth_field ? 6 : 5, id);
    memcpy(header + used, "\xa4" "echo" S_TIMEOUT, 8);
    used += 8;
    assert_true(size > used + 3 && size <= sizeof header);
    if (sixth_field) {
        size_t text = size - used - 3;                      //  str 16: da + 2 bytes of length
        header[used++] = 0xda;
        header[used++] = (uint8_t) (text >> 8);
        header[used++] = (uint8_t) text;
        memset(header + used, 'p', text);
    }
    else
        memset(header + used, 0xc0, size - used);
    return s_message(header, size, "\x91\x2a", 2);
}

//  A CALL to "echo" whose body is a str of exactly size bytes.
static zmsg_t *
s_body_of(size_t size, uint64_t id, zframe_t **body_p)
{
    uint8_t body[S_MAX_BODY + 16];
    assert_true(size >= 3 && size <= sizeof body);
    body[0] = 0xda;
    body[1] = (uint8_t) ((size - 3) >> 8);
    body[2] = (uint8_t) (size - 3);
    memset(body + 3, 'b', size - 3);
    *body_p = zframe_new(body, size);
    return zm_wire_call(id, body, size);
}

//  A CALL to the service named by length bytes of 'a'.
static zmsg_t *
s_named(size_t length, uint64_t id)
{
    char name[300];
    assert_true(length < sizeof name);
    memset(name, 'a', length);
    name[length] = '\0';
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zmesh_pack_t *header = zm_wire_header("ZMP1", "CALL", id, name, 0);
    zm_wire_add_pack(msg, &header);
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

//  Counts of 400, 413, 505 and 404 answers the test expects to see.
typedef struct {
    uint64_t malformed;
    uint64_t too_big;
    uint64_t bad_version;
    uint64_t no_service;
} s_tally_t;

static void
s_tally(s_tally_t *tally, uint32_t status)
{
    tally->malformed += status == 400;
    tally->too_big += status == 413;
    tally->bad_version += status == 505;
    tally->no_service += status == 404;
}

//  Sends msg, checks its answer, then proves a good client still works.
static void
s_check(zsock_t *raw, zmesh_client_t *client, const char *name, zmsg_t *msg, uint32_t status,
        uint64_t id, zm_hostile_id_t rule, s_tally_t *tally)
{
    print_message("case: %s -> %u\n", name, status);
    if (!zm_hostile_expect(raw, &msg, status, id, rule))
        fail_msg("case \"%s\" did not get its documented answer", name);
    assert_true(zm_wire_echo_ok(client));
    s_tally(tally, status);
}

static void
s_run_table(zsock_t *raw, zmesh_client_t *client, s_tally_t *tally)
{
    for (size_t i = 0; i < S_CASES; i++) {
        uint64_t id = s_cases[i].count > 0 ? 100 + i : S_RAW_ID;
        s_check(raw, client, s_cases[i].name, s_build(&s_cases[i], id), s_cases[i].status, id,
                s_cases[i].rule, tally);
    }
    uint8_t header[40];
    size_t size = s_head(header, 5, UINT64_MAX);
    memcpy(header + size, "\xa4" "echo" S_TIMEOUT, 8);
    s_check(raw, client, "request id 2^64-1", s_message(header, size + 8, "\xc0", 1), 200,
            UINT64_MAX, ZM_HOSTILE_ID_EXACT, tally);
}

//  Frames around the header that ZMP/1 does not allow.
static void
s_run_envelopes(zsock_t *raw, zmesh_client_t *client, s_tally_t *tally)
{
    zmsg_t *msg = zm_wire_call(200, "\xc0", 1);
    while (zmsg_size(msg) < 1000)
        zm_wire_add(msg, "\xc0", 1);
    s_check(raw, client, "CALL in 1000 frames", msg, 400, 200, ZM_HOSTILE_ID_EXACT, tally);
    msg = zm_wire_call(201, "\xc0", 1);
    zframe_t *frame = zframe_new("\x00\x6b\x8b\x45\x67", 5);   //  as a ROUTER's routing id
    zmsg_prepend(msg, &frame);
    s_check(raw, client, "a routing id in front (multi-hop)", msg, 400, 201, ZM_HOSTILE_ID_ZERO,
            tally);
    msg = zm_wire_call(202, "\xc0", 1);
    frame = zframe_new_empty();
    zmsg_prepend(msg, &frame);
    s_check(raw, client, "two empty delimiters", msg, 400, 202, ZM_HOSTILE_ID_ZERO, tally);
    msg = zm_wire_call(203, "\xc0", 1);
    frame = zmsg_first(msg);
    zframe_reset(frame, "x", 1);
    s_check(raw, client, "delimiter frame not empty", msg, 400, 203, ZM_HOSTILE_ID_ZERO, tally);
}

//  A body exactly size bytes long comes back unchanged.
static void
s_check_echo(zsock_t *raw, zmesh_client_t *client, size_t size, uint64_t id)
{
    print_message("case: body of %zu bytes (max-body %d) -> 200\n", size, S_MAX_BODY);
    zframe_t *sent;
    zmsg_t *msg = s_body_of(size, id, &sent);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, ZM_HOSTILE_TIMEOUT_MS));
    bool same = answer.body && zframe_eq(answer.body, sent);
    zframe_destroy(&answer.body);
    zframe_destroy(&sent);
    assert_string_equal(answer.command, "REPLY");
    assert_int_equal(answer.status, 200);
    assert_int_equal(answer.id, id);
    assert_true(same);
    assert_true(zm_wire_echo_ok(client));
}

//  Headers of 511, 512 and 513 bytes, bodies of max-body - 1, max-body and
//  max-body + 1 bytes.
static void
s_run_sizes(zsock_t *raw, zmesh_client_t *client, s_tally_t *tally)
{
    static const size_t sizes[] = {511, 512, 513};
    for (int sixth = 0; sixth < 2; sixth++)
        for (size_t i = 0; i < 3; i++) {
            uint64_t id = 300 + (uint64_t) (sixth * 3) + i;
            char name[96];
            snprintf(name, sizeof name, "header of %zu bytes (%s)", sizes[i],
                     sixth ? "a sixth field" : "bytes after the array");
            uint32_t status = sizes[i] > 512 ? 413 : 400;
            //  A sixth field is refused before its id is read; 413 may come first too.
            zm_hostile_id_t rule = sixth || status == 413 ? ZM_HOSTILE_ID_ANY : ZM_HOSTILE_ID_EXACT;
            s_check(raw, client, name, s_header_of(sizes[i], sixth, id), status, id, rule, tally);
        }
    s_check_echo(raw, client, S_MAX_BODY - 1, 310);
    s_check_echo(raw, client, S_MAX_BODY, 311);
    zframe_t *sent;
    zmsg_t *msg = s_body_of(S_MAX_BODY + 1, 312, &sent);
    zframe_destroy(&sent);
    s_check(raw, client, "body of max-body + 1 bytes", msg, 413, 312, ZM_HOSTILE_ID_EXACT, tally);
}

static void
test_hostile_edges_each_answered_and_good_calls_continue(void **state)
{
    char max_body[16];
    snprintf(max_body, sizeof max_body, "%d", S_MAX_BODY);
    const char *flags[] = {"--max-body", max_body, "--grace-ms", S_GRACE_MS, "--max-garbage",
                           "0", NULL};
    char endpoint[256];
    zm_proc_t *broker = zm_hostile_start(*state, flags, endpoint, sizeof endpoint);
    assert_non_null(broker);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    zsock_t *raw = zm_wire_dealer(*state, endpoint);
    assert_non_null(client);
    assert_non_null(raw);
    s_tally_t tally = {0};
    s_run_table(raw, client, &tally);
    s_run_envelopes(raw, client, &tally);
    s_run_sizes(raw, client, &tally);
    //  255 printable bytes is a valid name: with no worker, 404 once the grace ends.
    s_check(raw, client, "service name of 255 bytes", s_named(255, 400), 404, 400,
            ZM_HOSTILE_ID_EXACT, &tally);
    s_check(raw, client, "service name of 256 bytes", s_named(256, 401), 400, 401,
            ZM_HOSTILE_ID_EXACT, &tally);
    zmsg_t *good = zm_wire_call(402, "\x91\x2a", 2);     //  the offender is still served
    assert_true(zm_hostile_expect(raw, &good, 200, 402, ZM_HOSTILE_ID_EXACT));

    assert_true(zm_hostile_alive(broker));
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), tally.malformed);
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), tally.too_big);
    assert_int_equal(zm_status_counter(&status, "rejected_bad_version"), tally.bad_version);
    assert_int_equal(zm_status_counter(&status, "rejected_no_service"), tally.no_service);
    assert_int_equal(zm_status_counter(&status, "peers_kicked"), 0);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_edges_each_answered_and_good_calls_continue,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_hostile_edges", tests, NULL, NULL);
}
