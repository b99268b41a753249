//  test_hostile_kick - a peer that keeps sending garbage is disconnected,
//  and nobody else notices. With --max-garbage 5, a DEALER whose messages
//  are refused (400, 413 and 505 alike) 5 times gets all 5 answers and then
//  loses its connection (its socket monitor reports DISCONNECTED), the
//  broker logs "peer kicked" with its routing id and counts peers_kicked;
//  libzmq reconnects it and its next good call works. A good DEALER that
//  calls between every bad message meanwhile sees only 200s and no
//  disconnection. 4 refusals do not kick, and a good call in between does
//  not reset the count; a burst of 15 refusals sent before the first answer
//  is one kick of one connection, counted and logged once; the same works
//  over ipc://; with --max-garbage 0, 50 refusals kick nobody;
//  ZMESH_MAX_GARBAGE sets the same bound. (The 10-second window is not
//  waited out: tests stay fast.)
#include "harness.h"
#include "hostile.h"
#include "wire.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_MAX_BODY 4096
#define S_KICK_MS 5000                //  from the last refusal to DISCONNECTED
#define S_MONITOR_POLL_MS 5           //  a look at the monitor between good calls
#define S_BAD_ID "hostile-bad"
#define S_BAD_ID_HEX "686f7374696c652d626164"

//  A broker bound to bind with --max-body S_MAX_BODY and --max-garbage
//  max_garbage (NULL: left to the environment), and an echo worker.
static zm_proc_t *
s_start_on(zm_harness_t *harness, const char *bind, const char *max_garbage, char *endpoint,
           size_t size)
{
    char max_body[16];
    snprintf(max_body, sizeof max_body, "%d", S_MAX_BODY);
    const char *flags[] = {"--max-body", max_body, max_garbage ? "--max-garbage" : NULL,
                           max_garbage, NULL};
    return zm_hostile_start_on(harness, bind, flags, endpoint, size);
}

static zm_proc_t *
s_start(zm_harness_t *harness, const char *max_garbage, char *endpoint, size_t size)
{
    return s_start_on(harness, "tcp://127.0.0.1:*", max_garbage, endpoint, size);
}

//  A REQUEST, which only the broker may send: decodes fine, refused 400
//  (ZMP.md 12.1: "a command a client may not send").
static bool
s_send_request(zsock_t *sock, uint64_t id)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zmesh_pack_t *header = zm_wire_header("ZMP1", "REQUEST", id, "echo", 0);
    zm_wire_add_pack(msg, &header);
    zm_wire_add(msg, "\xc0", 1);
    return zm_hostile_expect(sock, &msg, 400, id, ZM_HOSTILE_ID_ANY);
}

//  Sends garbage number n (400, 413 or 505 in turn) and checks its answer.
static bool
s_send_garbage(zsock_t *sock, int n)
{
    uint64_t id = 1000 + (uint64_t) n;
    switch (n % 3) {
    case 0: {
        zmsg_t *msg = zm_wire_call(id, "\xc1", 1);          //  never-used byte
        return zm_hostile_expect(sock, &msg, 400, id, ZM_HOSTILE_ID_EXACT);
    }
    case 1: {
        zmsg_t *msg = zm_wire_call_bin(id, S_MAX_BODY + 1);
        return zm_hostile_expect(sock, &msg, 413, id, ZM_HOSTILE_ID_EXACT);
    }
    default: {
        zmsg_t *msg = zmsg_new();
        zm_wire_add(msg, "", 0);
        zmesh_pack_t *header = zm_wire_header("ZMP2", "CALL", id, "echo", 0);
        zm_wire_add_pack(msg, &header);
        zm_wire_add(msg, "\xc0", 1);
        return zm_hostile_expect(sock, &msg, 505, id, ZM_HOSTILE_ID_ANY);
    }
    }
}

//  A good call on a raw socket: the echo of [n].
static bool
s_good_call(zsock_t *sock, uint64_t n)
{
    uint8_t body[2] = {0x91, (uint8_t) (n & 0x7f)};
    zmsg_t *msg = zm_wire_call(n, body, sizeof body);
    return zm_hostile_expect(sock, &msg, 200, n, ZM_HOSTILE_ID_EXACT);
}

//  The good peers: a raw DEALER under a monitor, and a library client.
typedef struct {
    zsock_t *sock;
    zactor_t *monitor;
    zmesh_client_t *client;
    uint64_t calls;
} s_good_t;

static void
s_good_init(zm_harness_t *harness, const char *endpoint, s_good_t *good)
{
    good->sock = zm_hostile_watched_dealer(harness, endpoint, NULL, &good->monitor);
    good->client = zm_harness_client(harness, endpoint);
    good->calls = 0;
    assert_non_null(good->sock);
    assert_non_null(good->client);
}

//  One good call on each; asserts they worked.
static void
s_good_step(s_good_t *good)
{
    assert_true(s_good_call(good->sock, ++good->calls));
    assert_true(zm_wire_echo_ok(good->client));
}

//  The good peers never lost their connection.
static void
s_good_check(s_good_t *good)
{
    s_good_step(good);
    assert_false(zm_hostile_disconnected(good->monitor, 0));
}

//  count refusals on a fresh socket, with good calls in between; then the
//  socket must be disconnected, or not. *monitor_p (may be NULL) gets its monitor.
static zsock_t *
s_offend(zm_harness_t *harness, const char *endpoint, const char *routing_id, int count,
         bool kicked, s_good_t *good, zactor_t **monitor_p)
{
    zactor_t *monitor;
    zsock_t *bad = zm_hostile_watched_dealer(harness, endpoint, routing_id, &monitor);
    if (monitor_p)
        *monitor_p = monitor;
    assert_non_null(bad);
    assert_true(s_good_call(bad, 1));                       //  connected, and not garbage
    for (int n = 0; n < count; n++) {
        assert_true(s_send_garbage(bad, n));
        s_good_step(good);
    }
    if (kicked) {
        //  The good peers keep calling until the kick lands (a tick later).
        int64_t deadline = zm_harness_now() + S_KICK_MS;
        while (!zm_hostile_disconnected(monitor, S_MONITOR_POLL_MS)) {
            assert_true(zm_harness_now() < deadline);
            s_good_step(good);
        }
    }
    else {
        //  Answered on the same connection after the last refusal: it survived it.
        assert_true(s_good_call(bad, 2));
        assert_false(zm_hostile_disconnected(monitor, 0));
    }
    return bad;
}

static void
test_hostile_kick_after_max_garbage(void **state)
{
    char endpoint[256];
    zm_proc_t *broker = s_start(*state, "5", endpoint, sizeof endpoint);
    assert_non_null(broker);
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    zsock_t *bad = s_offend(*state, endpoint, S_BAD_ID, 5, true, &good, NULL);
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    assert_true(zm_hostile_log_has(broker, "broker: peer kicked id=" S_BAD_ID_HEX " garbage=5",
                                   S_KICK_MS));
    //  libzmq reconnects the kicked socket by itself; a good call goes through.
    assert_true(s_good_call(bad, 3));
    s_good_check(&good);
    for (int round = 2; round <= 3; round++) {              //  anonymous peers too
        s_offend(*state, endpoint, NULL, 5, true, &good, NULL);
        assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), (uint64_t) round);
    }
    s_good_check(&good);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), 3 * 2);
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), 3 * 2);
    assert_int_equal(zm_status_counter(&status, "rejected_bad_version"), 3 * 1);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

static void
test_hostile_kick_not_below_max_garbage(void **state)
{
    char endpoint[256];
    assert_non_null(s_start(*state, "5", endpoint, sizeof endpoint));
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    zactor_t *monitor;
    zsock_t *bad = s_offend(*state, endpoint, NULL, 4, false, &good, &monitor);
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 0);
    //  Good calls in between do not wipe the slate: the fifth refusal kicks.
    assert_true(s_send_garbage(bad, 4));
    assert_true(zm_hostile_disconnected(monitor, S_KICK_MS));
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    s_good_check(&good);
}

//  A burst of 3 x max-garbage refusals, sent before the first answer comes
//  back, closes one connection: one kick, counted and logged once.
static void
test_hostile_kick_burst_is_one_kick(void **state)
{
    char endpoint[256];
    zm_proc_t *broker = s_start(*state, "5", endpoint, sizeof endpoint);
    assert_non_null(broker);
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    zactor_t *monitor;
    zsock_t *bad = zm_hostile_watched_dealer(*state, endpoint, S_BAD_ID, &monitor);
    assert_non_null(bad);
    assert_true(s_good_call(bad, 1));
    for (int n = 0; n < 15; n++) {
        zmsg_t *msg = zm_wire_call(1000 + (uint64_t) n, "\xc1", 1);
        assert_int_equal(zmsg_send(&msg, bad), 0);
    }
    for (int n = 0; n < 15; n++) {
        zm_wire_answer_t answer;
        assert_true(zm_wire_recv(bad, &answer, ZM_HOSTILE_TIMEOUT_MS));
        zframe_destroy(&answer.body);
        assert_int_equal(answer.status, 400);
        assert_int_equal(answer.id, 1000 + (uint64_t) n);
    }
    assert_true(zm_hostile_disconnected(monitor, S_KICK_MS));
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    assert_true(zm_hostile_log_has(broker, "broker: peer kicked id=" S_BAD_ID_HEX " garbage=5",
                                   S_KICK_MS));
    s_good_check(&good);
}

static void
test_hostile_kick_never_with_zero(void **state)
{
    char endpoint[256];
    assert_non_null(s_start(*state, "0", endpoint, sizeof endpoint));
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    s_offend(*state, endpoint, NULL, 50, false, &good, NULL);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, NULL, &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "peers_kicked"), 0);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), 17);     //  n % 3 == 0
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), 17);
    assert_int_equal(zm_status_counter(&status, "rejected_bad_version"), 16);
    s_good_check(&good);
}

//  Every refusal counts, whichever part of the broker makes it: a REQUEST
//  from a client decodes fine but is answered 400 like any garbage.
static void
test_hostile_kick_counts_refused_commands(void **state)
{
    char endpoint[256];
    assert_non_null(s_start(*state, "3", endpoint, sizeof endpoint));
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    zactor_t *monitor;
    zsock_t *bad = zm_hostile_watched_dealer(*state, endpoint, NULL, &monitor);
    assert_non_null(bad);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_true(s_send_request(bad, id));
        s_good_step(&good);
    }
    assert_int_equal(zm_harness_counter(endpoint, "rejected_malformed"), 3);
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    assert_true(zm_hostile_disconnected(monitor, S_KICK_MS));
    s_good_check(&good);
}

//  Over ipc:// the broker shuts the connection down just the same.
static void
test_hostile_kick_over_ipc(void **state)
{
    char bind[256], endpoint[256];
    snprintf(bind, sizeof bind, "ipc://%s/broker.ipc", zm_harness_dir(*state));
    assert_non_null(s_start_on(*state, bind, "3", endpoint, sizeof endpoint));
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    s_offend(*state, endpoint, NULL, 3, true, &good, NULL);
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    s_good_check(&good);
}

static void
test_hostile_kick_bound_from_environment(void **state)
{
    char endpoint[256];
    setenv("ZMESH_MAX_GARBAGE", "2", 1);
    zm_proc_t *broker = s_start(*state, NULL, endpoint, sizeof endpoint);
    unsetenv("ZMESH_MAX_GARBAGE");
    assert_non_null(broker);
    s_good_t good;
    s_good_init(*state, endpoint, &good);
    s_offend(*state, endpoint, NULL, 2, true, &good, NULL);
    assert_int_equal(zm_harness_counter(endpoint, "peers_kicked"), 1);
    s_good_check(&good);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_kick_after_max_garbage, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_not_below_max_garbage,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_burst_is_one_kick, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_never_with_zero, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_counts_refused_commands,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_over_ipc, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_kick_bound_from_environment,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_hostile_kick", tests, NULL, NULL);
}
