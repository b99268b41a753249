//  test_worker_death - a worker that dies, leaves or merely works long while
//  it holds a call. Killed with SIGKILL, the broker finds it gone and answers
//  the call WORKER_LOST within heartbeat x liveness (plus slack), and a new
//  worker then serves new calls. Stopped with SIGTERM, it sends DISCONNECT
//  and the call is answered WORKER_LOST at once. Busy in a long handler, it
//  keeps heartbeating and is not declared dead. Workers run with a 200 ms
//  heartbeat and a liveness of 3; upper bounds are generous for ASan on CI.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_HOLD_5S "\xcd\x13\x88"              //  msgpack uint 5000: the slow worker's sleep
#define S_HOLD_2S "\xcd\x07\xd0"              //  msgpack uint 2000
#define S_CALL_TIMEOUT_MS 20000               //  far beyond every bound asserted here

static const char *const s_fast_heartbeat[] = {"--heartbeat-ms", "200", "--liveness", "3", NULL};

typedef struct {
    const char *endpoint;
    const char *service;
} s_service_t;

//  A worker of the service holds exactly one call.
static bool
s_holds_one_call(void *arg)
{
    s_service_t *service = arg;
    zm_status_t status;
    return zm_harness_status(service->endpoint, service->service, &status) == ZMESH_OK
           && status.inflight == 1 && status.queued == 0;
}

//  Starts a broker and a worker in mode for service "held", sends it a call
//  with body (msgpack without NUL bytes) and timeout, and returns once the
//  worker holds it.
static zm_proc_t *
s_start_holding(zm_harness_t *harness, char *endpoint, const char *mode, const char *body,
                int timeout_ms, zmesh_client_t **client_p, uint64_t *id_p)
{
    assert_non_null(zm_harness_broker(harness, "tcp://127.0.0.1:*", NULL, endpoint, 256));
    zm_proc_t *worker = zm_harness_worker(harness, endpoint, "held", mode, s_fast_heartbeat);
    assert_non_null(worker);
    assert_true(zm_harness_wait_workers(endpoint, "held", 1, 10000));
    *client_p = zm_harness_client(harness, endpoint);
    assert_non_null(*client_p);
    assert_int_equal(zmesh_client_send(*client_p, "held", body, strlen(body), timeout_ms, id_p),
                     ZMESH_OK);
    s_service_t held = {endpoint, "held"};
    assert_true(zm_harness_wait_until(s_holds_one_call, &held, 10000));
    return worker;
}

//  Waits for the held call to complete with want; returns the ms since `since`.
static int64_t
s_expect_outcome(zmesh_client_t *client, uint64_t id, int want, int64_t since)
{
    uint64_t done_id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(client, S_CALL_TIMEOUT_MS, &done_id, &reply);
    int64_t elapsed = zm_harness_now() - since;
    print_message("call completed after %lld ms: %s (%s)\n", (long long) elapsed,
                  zmesh_strerror(rc), zmesh_client_error(client));
    zmesh_msg_destroy(&reply);
    assert_int_equal(rc, want);
    assert_int_equal(done_id, id);
    assert_true(strlen(zmesh_client_error(client)) > 0);
    return elapsed;
}

static void
test_worker_death_sigkill_answers_worker_lost(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    zmesh_client_t *client;
    uint64_t id;
    zm_proc_t *worker = s_start_holding(harness, endpoint, "slow", S_HOLD_5S, S_CALL_TIMEOUT_MS,
                                        &client, &id);
    int64_t killed_at = zm_harness_now();
    zm_harness_kill(worker, SIGKILL);
    //  At the latest, silence is noticed after 200 ms x 3 plus a broker tick: allow 3 s.
    assert_true(s_expect_outcome(client, id, ZMESH_EWORKERLOST, killed_at) < 3000);
    assert_true(zm_harness_reap(worker, 5000, NULL));

    //  A second worker serves new calls.
    assert_non_null(zm_harness_worker(harness, endpoint, "held", "slow", s_fast_heartbeat));
    assert_true(zm_harness_wait_workers(endpoint, "held", 1, 10000));
    zmesh_msg_t *reply = NULL;
    assert_int_equal(zmesh_client_call(client, "held", "\x00", 1, 5000, &reply), ZMESH_OK);
    assert_int_equal(zmesh_msg_size(reply), 1);
    assert_memory_equal(zmesh_msg_data(reply), "\x00", 1);
    zmesh_msg_destroy(&reply);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "held", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 1);
    assert_int_equal(status.workers, 1);
}

static void
test_worker_death_sigterm_answers_worker_lost_at_once(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    zmesh_client_t *client;
    uint64_t id;
    //  2 s: the handler must still be running when the DISCONNECT goes out.
    zm_proc_t *worker = s_start_holding(harness, endpoint, "slow", S_HOLD_2S, S_CALL_TIMEOUT_MS,
                                        &client, &id);
    int64_t stopped_at = zm_harness_now();
    zm_harness_kill(worker, SIGTERM);
    assert_true(s_expect_outcome(client, id, ZMESH_EWORKERLOST, stopped_at) < 1000);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "held", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 1);
    assert_int_equal(zm_status_counter(&status, "workers_expired"), 0);
    assert_int_equal(status.workers, 0);
    //  The worker exits by itself, cleanly (ASan's leak check included), once
    //  its handler has returned.
    int exit_status;
    assert_true(zm_harness_reap(worker, ZM_HARNESS_STOP_MS, &exit_status));
    assert_true(zm_harness_exited_ok(exit_status));
}

static void
test_worker_death_busy_worker_is_not_dead(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    zmesh_client_t *client;
    uint64_t id;
    //  The handler hangs; the call gives up after 1500 ms, 2.5 x the 600 ms of silence
    //  that would make the broker declare the worker dead.
    s_start_holding(harness, endpoint, "hang", "\xc0", 1500, &client, &id);
    int64_t sent_at = zm_harness_now();
    assert_true(s_expect_outcome(client, id, ZMESH_ETIMEDOUT, sent_at) >= 1000);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "held", &status), ZMESH_OK);
    assert_int_equal(status.workers, 1);
    assert_int_equal(zm_status_counter(&status, "workers_expired"), 0);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 0);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_death_sigkill_answers_worker_lost,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_worker_death_sigterm_answers_worker_lost_at_once,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_worker_death_busy_worker_is_not_dead,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_worker_death", tests, NULL, NULL);
}
