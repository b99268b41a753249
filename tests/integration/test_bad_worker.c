//  test_bad_worker - bad input on the worker side of the broker. READYs the
//  broker must refuse (ZMP.md 7.1) get a DISCONNECT with the documented
//  status, are counted as rejected_*, and register nothing. A registered
//  worker that breaks the protocol is disconnected (400, 413 or 505) and
//  removed, and the calls it held are answered WORKER_LOST; a REPLY for a
//  ticket it does not hold (0 included) is only dropped and counted. After
//  each case a well-behaved client is still served. The workers here are raw
//  DEALER sockets speaking ZMP/1 by hand (wire.c).
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

typedef struct {
    const char *name;
    const char *signature;
    const char *service;        //  NULL: a name long enough for a header over 512 bytes
    uint64_t slots;
    int extra_fields;           //  after liveness
    bool body;                  //  a frame READY must not have
    uint32_t status;            //  in the DISCONNECT
} s_ready_case_t;

static const s_ready_case_t s_ready_cases[] = {
    {"READY with 0 slots", "ZMP1", "svc", 0, 0, false, 400},
    {"READY for a zmesh.* name", "ZMP1", "zmesh.mine", 1, 0, false, 400},
    {"READY with a body frame", "ZMP1", "svc", 1, 0, true, 400},
    {"READY with too many fields", "ZMP1", "svc", 1, 2, false, 400},
    {"READY signed ZMP2", "ZMP2", "svc", 1, 0, false, 505},
    {"READY header over 512 bytes", "ZMP1", NULL, 1, 0, false, 413},
};
#define S_READY_CASES (sizeof s_ready_cases / sizeof s_ready_cases[0])

//  ["", [signature, "READY", service, slots, 1000, 3, 7...]] [+ a body frame]
static zmsg_t *
s_ready(const s_ready_case_t *test)
{
    char long_name[601];
    memset(long_name, 's', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, (uint32_t) (6 + test->extra_fields));
    zmesh_pack_str(pack, test->signature);
    zmesh_pack_str(pack, "READY");
    zmesh_pack_str(pack, test->service ? test->service : long_name);
    zmesh_pack_uint(pack, test->slots);
    zmesh_pack_uint(pack, 1000);
    zmesh_pack_uint(pack, 3);
    for (int i = 0; i < test->extra_fields; i++)
        zmesh_pack_uint(pack, 7);
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zm_wire_add_pack(msg, &pack);
    if (test->body)
        zm_wire_add(msg, "\xc0", 1);
    return msg;
}

//  ["", [signature, command, fields...]] (+ body if given): fields are uints
//  and a NULL-terminated list of strs after them.
static zmsg_t *
s_command(const char *signature, const char *command, int uints, const uint64_t *values,
          const void *body, size_t size)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, (uint32_t) (2 + uints));
    zmesh_pack_str(pack, signature);
    zmesh_pack_str(pack, command);
    for (int i = 0; i < uints; i++)
        zmesh_pack_uint(pack, values[i]);
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zm_wire_add_pack(msg, &pack);
    if (body)
        zm_wire_add(msg, body, size);
    return msg;
}

//  ["", ["ZMP1", "REPLY", ticket, status], body]
static zmsg_t *
s_reply(uint64_t ticket, uint64_t status, const void *body, size_t size)
{
    uint64_t values[2] = {ticket, status};
    return s_command("ZMP1", "REPLY", 2, values, body, size);
}

//  A raw DEALER registered as the only worker of service (1 slot, 1000 ms x 3).
static zsock_t *
s_raw_worker(zm_harness_t *harness, const char *endpoint, const char *service)
{
    zsock_t *raw = zm_wire_dealer(harness, endpoint);
    assert_non_null(raw);
    s_ready_case_t ready = {"READY", "ZMP1", service, 1, 0, false, 0};
    zmsg_t *msg = s_ready(&ready);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    assert_true(zm_harness_wait_workers(endpoint, service, 1, 10000));
    return raw;
}

//  ---------------------------------------------------------------------
//  Refused READY

//  Sends one READY on a fresh connection; returns NULL if the answer is the
//  documented DISCONNECT, else a description of what came instead.
static char *
s_ready_mismatch(zm_harness_t *harness, const char *endpoint, const s_ready_case_t *test)
{
    zsock_t *raw = zm_wire_dealer(harness, endpoint);
    assert_non_null(raw);
    zmsg_t *msg = s_ready(test);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zm_wire_answer_t answer;
    bool answered = zm_wire_recv(raw, &answer, S_TIMEOUT_MS);
    zframe_destroy(&answer.body);
    if (answered && strcmp(answer.command, "DISCONNECT") == 0 && answer.frames == 2
        && answer.status == test->status && answer.reason[0])
        return NULL;
    if (!answered)
        return zsys_sprintf("%s: no answer, want DISCONNECT %u", test->name, test->status);
    return zsys_sprintf("%s: got %s %llu \"%s\", want DISCONNECT %u", test->name,
                        answer.command, (unsigned long long) answer.status, answer.reason,
                        test->status);
}

static void
test_bad_worker_refused_ready_gets_disconnect(void **state)
{
    char endpoint[256];
    assert_true(zm_wire_start(*state, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    size_t mismatches = 0;
    uint64_t want[3] = {0};                     //  400, 413, 505 refusals
    for (size_t i = 0; i < S_READY_CASES; i++) {
        print_message("case: %s\n", s_ready_cases[i].name);
        char *mismatch = s_ready_mismatch(*state, endpoint, &s_ready_cases[i]);
        if (mismatch) {
            print_error("MISMATCH %s\n", mismatch);
            mismatches++;
        }
        zstr_free(&mismatch);
        uint32_t code = s_ready_cases[i].status;
        want[code == 400 ? 0 : code == 413 ? 1 : 2]++;
        assert_true(zm_wire_echo_ok(client));
    }
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "svc", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), want[0]);
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), want[1]);
    assert_int_equal(zm_status_counter(&status, "rejected_bad_version"), want[2]);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 0);        //  none of them registered
    assert_int_equal(mismatches, 0);
}

//  ---------------------------------------------------------------------
//  A registered worker that misbehaves

typedef struct {
    const char *name;
    zmsg_t *(*build)(void);
    uint32_t status;            //  of the DISCONNECT; 0: dropped and counted, worker stays
} s_violation_t;

static zmsg_t *
s_reply_ticket_zero(void)
{
    return s_reply(0, 200, "\xc0", 1);
}

static zmsg_t *
s_reply_unknown_ticket(void)
{
    return s_reply(12345, 200, "\xc0", 1);
}

static zmsg_t *
s_reply_bad_status(void)
{
    return s_reply(12345, 404, "\xa3" "bad", 4);
}

static zmsg_t *
s_reply_body_not_msgpack(void)
{
    return s_reply(12345, 200, "\xc1", 1);
}

static zmsg_t *
s_reply_body_over_max(void)
{
    zmsg_t *call = zm_wire_call_bin(12345, ZM_WIRE_MAX_BODY + 1);
    zframe_t *body = zmsg_last(call);
    zmsg_t *msg = s_reply(12345, 200, zframe_data(body), zframe_size(body));
    zmsg_destroy(&call);
    return msg;
}

static zmsg_t *
s_second_ready(void)
{
    s_ready_case_t ready = {"READY", "ZMP1", "other", 1, 0, false, 0};
    return s_ready(&ready);
}

static zmsg_t *
s_call_from_worker(void)
{
    return zm_wire_call(1, "\xc0", 1);
}

static zmsg_t *
s_heartbeat_other_version(void)
{
    return s_command("ZMP2", "HEARTBEAT", 0, NULL, NULL, 0);
}

static zmsg_t *
s_unknown_command(void)
{
    return s_command("ZMP1", "FROB", 0, NULL, NULL, 0);
}

static zmsg_t *
s_reply_without_body(void)
{
    return s_reply(12345, 200, NULL, 0);
}

static const s_violation_t s_violations[] = {
    {"REPLY for ticket 0", s_reply_ticket_zero, 0},
    {"REPLY for a ticket never issued", s_reply_unknown_ticket, 0},
    {"REPLY with status 404", s_reply_bad_status, 400},
    {"REPLY body not msgpack", s_reply_body_not_msgpack, 400},
    {"REPLY body over max-body", s_reply_body_over_max, 413},
    {"REPLY without body frame", s_reply_without_body, 400},
    {"a second READY", s_second_ready, 400},
    {"CALL from a worker", s_call_from_worker, 400},
    {"HEARTBEAT signed ZMP2", s_heartbeat_other_version, 505},
    {"unknown command FROB", s_unknown_command, 400},
};
#define S_VIOLATIONS (sizeof s_violations / sizeof s_violations[0])

typedef struct {
    const char *endpoint;
    const char *service;
    uint64_t late_replies;      //  dropped_late_reply to wait for
} s_drop_wanted_t;

static bool
s_dropped(void *arg)
{
    s_drop_wanted_t *wanted = arg;
    zm_status_t status;
    return zm_harness_status(wanted->endpoint, wanted->service, &status) == ZMESH_OK
           && zm_status_counter(&status, "dropped_late_reply") == wanted->late_replies;
}

//  Registers a raw worker, sends the violation and checks the outcome.
static void
s_run_violation(zm_harness_t *harness, const char *endpoint, const s_violation_t *test,
                const char *service, uint64_t *late_replies)
{
    print_message("case: %s\n", test->name);
    zsock_t *raw = s_raw_worker(harness, endpoint, service);
    zmsg_t *msg = test->build();
    assert_int_equal(zmsg_send(&msg, raw), 0);
    if (test->status == 0) {
        s_drop_wanted_t wanted = {endpoint, service, ++*late_replies};
        assert_true(zm_harness_wait_until(s_dropped, &wanted, S_TIMEOUT_MS));
        zm_status_t status;
        assert_int_equal(zm_harness_status(endpoint, service, &status), ZMESH_OK);
        assert_int_equal(status.workers, 1);    //  dropped, not kicked
        return;
    }
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
    zframe_destroy(&answer.body);
    print_message("      -> %s %llu \"%s\"\n", answer.command,
                  (unsigned long long) answer.status, answer.reason);
    assert_string_equal(answer.command, "DISCONNECT");
    assert_int_equal(answer.status, test->status);
    assert_true(strlen(answer.reason) > 0);
    assert_true(zm_harness_wait_workers(endpoint, service, 0, S_TIMEOUT_MS));
}

static void
test_bad_worker_violations_end_only_that_session(void **state)
{
    char endpoint[256];
    assert_true(zm_wire_start(*state, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    uint64_t late_replies = 0, kicked = 0;
    for (size_t i = 0; i < S_VIOLATIONS; i++) {
        char service[32];
        snprintf(service, sizeof service, "raw-%zu", i);
        s_run_violation(*state, endpoint, &s_violations[i], service, &late_replies);
        kicked += s_violations[i].status != 0;
        assert_true(zm_wire_echo_ok(client));
    }
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), kicked);
    assert_int_equal(zm_status_counter(&status, "dropped_late_reply"), late_replies);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 0);     //  they held nothing
    assert_int_equal(status.workers, 1);                                //  echo is untouched
}

//  Receives the REQUEST for a call on a raw worker; returns its ticket.
static uint64_t
s_expect_request(zsock_t *raw, const void *body, size_t size)
{
    zm_wire_answer_t request;
    assert_true(zm_wire_recv(raw, &request, S_TIMEOUT_MS));
    assert_string_equal(request.command, "REQUEST");
    assert_int_equal(request.frames, 3);
    assert_non_null(request.body);
    assert_int_equal(zframe_size(request.body), size);
    assert_memory_equal(zframe_data(request.body), body, size);
    zframe_destroy(&request.body);
    return request.id;
}

static void
test_bad_worker_kicked_worker_calls_get_worker_lost(void **state)
{
    char endpoint[256];
    assert_true(zm_wire_start(*state, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    zsock_t *raw = s_raw_worker(*state, endpoint, "raw");
    //  A well-formed REPLY reaches the caller...
    uint64_t id;
    assert_int_equal(zmesh_client_send(client, "raw", "\xa3one", 4, S_TIMEOUT_MS, &id), ZMESH_OK);
    uint64_t ticket = s_expect_request(raw, "\xa3one", 4);
    zmsg_t *msg = s_reply(ticket, 200, "\xa3two", 4);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    zmesh_msg_t *reply = NULL;
    assert_int_equal(zmesh_client_recv(client, S_TIMEOUT_MS, NULL, &reply), ZMESH_OK);
    assert_int_equal(zmesh_msg_size(reply), 4);
    assert_memory_equal(zmesh_msg_data(reply), "\xa3two", 4);
    zmesh_msg_destroy(&reply);
    //  ...a REPLY with a status a worker may not send ends the session, and
    //  the call it held is answered WORKER_LOST.
    assert_int_equal(zmesh_client_send(client, "raw", "\xa5three", 6, S_TIMEOUT_MS, &id),
                     ZMESH_OK);
    ticket = s_expect_request(raw, "\xa5three", 6);
    msg = s_reply(ticket, 503, "\xa4" "busy", 5);
    assert_int_equal(zmsg_send(&msg, raw), 0);
    uint64_t done_id = 0;
    assert_int_equal(zmesh_client_recv(client, S_TIMEOUT_MS, &done_id, &reply),
                     ZMESH_EWORKERLOST);
    assert_int_equal(done_id, id);
    zm_wire_answer_t answer;
    assert_true(zm_wire_recv(raw, &answer, S_TIMEOUT_MS));
    assert_string_equal(answer.command, "DISCONNECT");
    assert_int_equal(answer.status, 400);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "raw", &status), ZMESH_OK);
    assert_int_equal(status.workers, 0);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 1);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 1);
    assert_true(zm_wire_echo_ok(client));
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_worker_refused_ready_gets_disconnect,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bad_worker_violations_end_only_that_session,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bad_worker_kicked_worker_calls_get_worker_lost,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_bad_worker", tests, NULL, NULL);
}
