//  test_bad_input - hostile and malformed bytes against the real broker, sent
//  from a raw CZMQ DEALER socket: each bad message gets the status ZMP.md
//  documents (400, 413, 505; DISCONNECT 400 for a stranger's HEARTBEAT or
//  REPLY; nothing for its DISCONNECT), and after each one a well-behaved
//  client's call still succeeds, as does a good call from the offending
//  socket itself. A frame above libzmq's ZMQ_MAXMSGSIZE costs its sender the
//  connection, and nobody else anything. Refused READYs are test_bad_ready's.
//  The broker runs with --max-body 65536 so the size cases stay small.
#include "harness.h"
#include "wire.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT_MS 5000

//  What to expect in the request_id of the answer.
typedef enum {
    S_ID_EXACT,                 //  the id we sent: the broker could read it
    S_ID_ZERO,                  //  0: there was no id to read
    S_ID_ANY,                   //  ours or 0: the spec leaves it to the broker
} s_id_rule_t;

typedef struct {
    const char *name;
    zmsg_t *(*build)(uint64_t id);
    uint32_t status;            //  in the REPLY
    s_id_rule_t id_rule;
} s_case_t;

//  Appends a header and destroys its builder.
static void
s_add_pack(zmsg_t *msg, zmesh_pack_t *pack)
{
    zm_wire_add_pack(msg, &pack);
}

static zmsg_t *
s_garbage_header(uint64_t id)
{
    (void) id;
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zm_wire_add(msg, "\x01\x02garbage", 9);
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_signature(const char *signature, uint64_t id)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, zm_wire_header(signature, "CALL", id, "echo", 0));
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_wrong_signature(uint64_t id)
{
    return s_signature("ZMQ1", id);
}

static zmsg_t *
s_bad_version(uint64_t id)
{
    return s_signature("ZMP2", id);
}

static zmsg_t *
s_body_not_msgpack(uint64_t id)
{
    return zm_wire_call(id, "\xc1", 1);               //  0xc1 is never used
}

static zmsg_t *
s_body_truncated(uint64_t id)
{
    return zm_wire_call(id, "\x92\x01", 2);           //  array of 2 holding 1
}

static zmsg_t *
s_body_trailing(uint64_t id)
{
    return zm_wire_call(id, "\x01\x02", 2);           //  two objects
}

static zmsg_t *
s_body_huge_count(uint64_t id)
{
    return zm_wire_call(id, "\xdd\xff\xff\xff\xff", 5);   //  array32 of 4 Gi elements
}

static zmsg_t *
s_body_too_deep(uint64_t id)
{
    uint8_t body[66];
    memset(body, 0x91, 65);                     //  65 nested arrays of one...
    body[65] = 0xc0;                            //  ...around a nil: depth 65 > 64
    return zm_wire_call(id, body, sizeof body);
}

static zmsg_t *
s_body_over_max(uint64_t id)
{
    return zm_wire_call_bin(id, ZM_WIRE_MAX_BODY + 1);
}

static zmsg_t *
s_too_many_fields(uint64_t id)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, zm_wire_header("ZMP1", "CALL", id, "echo", 1));
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_header_too_big(uint64_t id)
{
    char service[601];
    memset(service, 's', 600);
    service[600] = '\0';
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, zm_wire_header("ZMP1", "CALL", id, service, 0));
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_bad_service_name(uint64_t id)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, zm_wire_header("ZMP1", "CALL", id, "has space", 0));
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_timeout_not_uint(uint64_t id)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, 5);
    zmesh_pack_str(pack, "ZMP1");
    zmesh_pack_str(pack, "CALL");
    zmesh_pack_uint(pack, id);
    zmesh_pack_str(pack, "echo");
    zmesh_pack_double(pack, 1.5);
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, pack);
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_call_without_body(uint64_t id)
{
    zmsg_t *msg = zm_wire_call(id, "\xc0", 1);
    zframe_t *body = zmsg_last(msg);
    zmsg_remove(msg, body);
    zframe_destroy(&body);
    return msg;
}

static zmsg_t *
s_call_extra_frame(uint64_t id)
{
    zmsg_t *msg = zm_wire_call(id, "\xc0", 1);
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static zmsg_t *
s_no_delimiter(uint64_t id)
{
    zmsg_t *msg = zm_wire_call(id, "\xc0", 1);
    zframe_t *delimiter = zmsg_first(msg);
    zmsg_remove(msg, delimiter);
    zframe_destroy(&delimiter);
    return msg;
}

static zmsg_t *
s_delimiter_only(uint64_t id)
{
    (void) id;
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    return msg;
}

static zmsg_t *
s_unknown_command(uint64_t id)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, 3);
    zmesh_pack_str(pack, "ZMP1");
    zmesh_pack_str(pack, "FROB");
    zmesh_pack_uint(pack, id);
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, pack);
    return msg;
}

static zmsg_t *
s_request_from_client(uint64_t id)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, zm_wire_header("ZMP1", "REQUEST", id, "echo", 0));
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

static const s_case_t s_cases[] = {
    {"garbage header", s_garbage_header, 400, S_ID_ZERO},
    {"wrong signature ZMQ1", s_wrong_signature, 400, S_ID_ZERO},
    {"other version ZMP2", s_bad_version, 505, S_ID_ZERO},
    {"body not msgpack", s_body_not_msgpack, 400, S_ID_EXACT},
    {"body truncated", s_body_truncated, 400, S_ID_EXACT},
    {"body with trailing bytes", s_body_trailing, 400, S_ID_EXACT},
    {"body claims 4 Gi elements", s_body_huge_count, 400, S_ID_EXACT},
    {"body nested 65 deep", s_body_too_deep, 400, S_ID_EXACT},
    {"body of max-body + 1 bytes", s_body_over_max, 413, S_ID_EXACT},
    {"header with too many fields", s_too_many_fields, 400, S_ID_ANY},
    {"header over 512 bytes", s_header_too_big, 413, S_ID_ZERO},
    {"service name with a space", s_bad_service_name, 400, S_ID_EXACT},
    {"timeout is a float", s_timeout_not_uint, 400, S_ID_EXACT},
    {"CALL without body frame", s_call_without_body, 400, S_ID_EXACT},
    {"CALL with an extra frame", s_call_extra_frame, 400, S_ID_EXACT},
    {"no empty delimiter", s_no_delimiter, 400, S_ID_ZERO},
    {"delimiter only", s_delimiter_only, 400, S_ID_ZERO},
    {"unknown command FROB", s_unknown_command, 400, S_ID_ZERO},
    {"REQUEST from a client", s_request_from_client, 400, S_ID_ANY},
};
#define S_CASES (sizeof s_cases / sizeof s_cases[0])

//  ---------------------------------------------------------------------
//  The tests

static void
s_sock_destroy(void **sock_p)
{
    zsock_destroy((zsock_t **) sock_p);
}

static void
s_actor_destroy(void **actor_p)
{
    zactor_destroy((zactor_t **) actor_p);
}

//  Sends one bad message and checks the REPLY it earns.
static void
s_run_case(zsock_t *raw, const s_case_t *test, uint64_t id)
{
    print_message("case: %s\n", test->name);
    zmsg_t *msg = test->build(id);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
    print_message("      -> %s %llu id=%llu \"%s\"\n", answer.command,
                  (unsigned long long) answer.status, (unsigned long long) answer.id,
                  answer.reason);
    zframe_destroy(&answer.body);
    assert_string_equal(answer.command, "REPLY");
    assert_int_equal(answer.frames, 3);
    assert_int_equal(answer.status, test->status);
    assert_true(strlen(answer.reason) > 0);
    if (test->id_rule == S_ID_EXACT)
        assert_int_equal(answer.id, id);
    else if (test->id_rule == S_ID_ZERO)
        assert_int_equal(answer.id, 0);
    else
        assert_true(answer.id == 0 || answer.id == id);
}

//  HEARTBEAT and REPLY from a stranger (a worker from before a broker restart)
//  are answered DISCONNECT 400 "not registered" (ZMP.md 12.1).
static void
s_run_stranger_cases(zsock_t *raw)
{
    for (int i = 0; i < 2; i++) {
        print_message("case: %s from a stranger\n", i == 0 ? "HEARTBEAT" : "REPLY");
        zmesh_pack_t *pack = zmesh_pack_new();
        zmesh_pack_array(pack, i == 0 ? 2 : 4);
        zmesh_pack_str(pack, "ZMP1");
        zmesh_pack_str(pack, i == 0 ? "HEARTBEAT" : "REPLY");
        if (i == 1) {
            zmesh_pack_uint(pack, 77);          //  a ticket the broker never issued
            zmesh_pack_uint(pack, 200);
        }
        zmsg_t *msg = zmsg_new();
        zm_wire_add(msg, "", 0);
        s_add_pack(msg, pack);
        if (i == 1)
            zm_wire_add(msg, "\xc0", 1);
        assert_int_equal(zmsg_send(&msg, raw), 0);
        zm_wire_answer_t answer;
        assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
        assert_string_equal(answer.command, "DISCONNECT");
        assert_int_equal(answer.frames, 2);
        assert_int_equal(answer.status, 400);
        assert_string_equal(answer.reason, "not registered");
    }
}

//  A stranger's DISCONNECT is ignored: the next answer on the socket is the
//  REPLY to the CALL sent after it (one connection keeps its order).
static void
s_run_stranger_disconnect_case(zsock_t *raw, uint64_t id)
{
    print_message("case: DISCONNECT from a stranger\n");
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, 4);
    zmesh_pack_str(pack, "ZMP1");
    zmesh_pack_str(pack, "DISCONNECT");
    zmesh_pack_uint(pack, 200);
    zmesh_pack_str(pack, "bye");
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    s_add_pack(msg, pack);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    msg = zm_wire_call(id, "\xc0", 1);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
    zframe_destroy(&answer.body);
    assert_string_equal(answer.command, "REPLY");
    assert_int_equal(answer.id, id);
    assert_int_equal(answer.status, 200);
}

//  A body of exactly max-body bytes is fine: the echo worker answers it.
static void
s_run_max_body_case(zsock_t *raw, uint64_t id)
{
    print_message("case: body of exactly max-body bytes\n");
    zmsg_t *msg = zm_wire_call_bin(id, ZM_WIRE_MAX_BODY);
    zframe_t *sent = zframe_dup(zmsg_last(msg));
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
    assert_string_equal(answer.command, "REPLY");
    assert_int_equal(answer.status, 200);
    assert_int_equal(answer.id, id);
    assert_non_null(answer.body);
    assert_true(zframe_eq(answer.body, sent));
    zframe_destroy(&answer.body);
    zframe_destroy(&sent);
}

static void
test_bad_input_each_answered_and_broker_keeps_serving(void **state)
{
    char endpoint[256];
    assert_true(zm_wire_start(*state, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    zsock_t *raw = zm_wire_dealer(*state, endpoint);
    assert_non_null(raw);
    assert_true(zm_wire_echo_ok(client));
    uint64_t want[3] = {0};                     //  400, 413, 505 answers expected
    for (size_t i = 0; i < S_CASES; i++) {
        s_run_case(raw, &s_cases[i], 1000 + i);
        want[s_cases[i].status == 400 ? 0 : s_cases[i].status == 413 ? 1 : 2]++;
        assert_true(zm_wire_echo_ok(client));
    }
    s_run_stranger_cases(raw);
    assert_true(zm_wire_echo_ok(client));
    s_run_stranger_disconnect_case(raw, 1999);
    assert_true(zm_wire_echo_ok(client));
    s_run_max_body_case(raw, 2000);
    assert_true(zm_wire_echo_ok(client));
    s_run_max_body_case(raw, 2001);             //  the offending socket is still served
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), want[0]);
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), want[1]);
    assert_int_equal(zm_status_counter(&status, "rejected_bad_version"), want[2]);
    assert_int_equal(zm_status_counter(&status, "dropped_late_reply"), 1);    //  stranger's REPLY
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

static void
test_bad_input_frame_over_libzmq_limit_spares_the_broker(void **state)
{
    char endpoint[256];
    assert_true(zm_wire_start(*state, endpoint, sizeof endpoint));
    //  Watch the raw socket's connection, to know when the broker has dropped it.
    zsock_t *raw = zsock_new(ZMQ_DEALER);
    assert_non_null(raw);
    zsock_set_linger(raw, 0);
    zm_harness_adopt(*state, raw, s_sock_destroy);
    zactor_t *monitor = zactor_new(zmonitor, raw);
    assert_non_null(monitor);
    zm_harness_adopt(*state, monitor, s_actor_destroy);        //  destroyed before raw
    zstr_sendx(monitor, "LISTEN", "DISCONNECTED", NULL);
    zstr_sendx(monitor, "START", NULL);
    zsock_wait(monitor);
    assert_int_equal(zsock_connect(raw, "%s", endpoint), 0);
    //  The broker sets ZMQ_MAXMSGSIZE to 2 x max-body + 4096: one byte more.
    zmsg_t *msg = zm_wire_call_bin(1, 2 * ZM_WIRE_MAX_BODY + 4096 + 1);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zpoller_t *poller = zpoller_new(monitor, NULL);
    bool dropped = zpoller_wait(poller, S_TIMEOUT_MS) == monitor;
    zpoller_destroy(&poller);
    char *event = dropped ? zstr_recv(monitor) : NULL;
    bool disconnected = event && strcmp(event, "DISCONNECTED") == 0;
    zstr_free(&event);
    assert_true(disconnected);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    assert_true(zm_wire_echo_ok(client));
    //  The broker is still healthy after the drop: status answers, the worker stayed.
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(status.workers, 1);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_input_each_answered_and_broker_keeps_serving,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_frame_over_libzmq_limit_spares_the_broker,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_bad_input", tests, NULL, NULL);
}
