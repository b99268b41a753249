//  test_fault_broker_restart_load - the broker is killed with SIGKILL in the
//  middle of 1,000 calls (20 in flight) and, after a 500 ms outage, a new
//  one started on the same ipc:// path. The three idempotent echo workers register again by
//  themselves; the client, resending unanswered calls with the same request
//  id (3 retries in an 8 s timeout), sees every call end exactly once, with
//  a reply or an error, none past its deadline, and at least 95% of them
//  succeed: only calls caught in the restart may fail. The load runs in its
//  own thread, so the kill and the restart never pause it.
#include "fault.h"
#include "harness.h"
#include "zmesh.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_CALLS 1000
#define S_WINDOW 20
#define S_TIMEOUT_MS 8000
#define S_RETRIES 3
#define S_WORKERS 3
#define S_KILL_AFTER 300              //  completed calls before the kill
#define S_OUTAGE_MS 500               //  no broker at all for this long
#define S_MIN_OK (S_CALLS * 95 / 100)
//  The client ends a call at its deadline; a completion may be read a
//  little later (the load's poll step, ASan on a busy runner).
#define S_LATE_MAX_MS 500

typedef struct {
    zm_fault_load_t *load;
    size_t count;
} s_progress_t;

static bool
s_load_reached(void *arg)
{
    s_progress_t *progress = arg;
    return atomic_load(&progress->load->done) >= progress->count;
}

//  Kills the broker with SIGKILL and, after an outage, starts a new one on
//  the same path; *down_ms_p gets the time from the kill to its endpoint
//  line. No cmocka assert: the load thread runs (false if anything failed).
static bool
s_restart(zm_harness_t *harness, zm_proc_t *broker, const char *bind, int64_t *down_ms_p)
{
    int64_t killed_at = zm_harness_now();
    zm_harness_kill(broker, SIGKILL);
    if (!zm_harness_reap(broker, 5000, NULL))
        return false;
    zm_fault_hold(S_OUTAGE_MS);
    char endpoint[256];
    bool started = zm_harness_broker(harness, bind, NULL, endpoint, sizeof endpoint) != NULL
                   && strcmp(endpoint, bind) == 0;
    *down_ms_p = zm_harness_now() - killed_at;
    return started;
}

static void
s_print_status(const char *endpoint)
{
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    printf("broker restart: new broker counters: calls=%llu duplicate_calls=%llu"
           " dropped_late_reply=%llu rejected_no_service=%llu expired=%llu\n",
           (unsigned long long) zm_status_counter(&status, "calls"),
           (unsigned long long) zm_status_counter(&status, "duplicate_calls"),
           (unsigned long long) zm_status_counter(&status, "dropped_late_reply"),
           (unsigned long long) zm_status_counter(&status, "rejected_no_service"),
           (unsigned long long) zm_status_counter(&status, "expired"));
    assert_int_equal(status.workers, S_WORKERS);
}

static void
test_fault_broker_restart_load_every_call_ends_once(void **state)
{
    zm_harness_t *harness = *state;
    char bind[256], endpoint[256];
    snprintf(bind, sizeof bind, "ipc://%s/broker.ipc", zm_harness_dir(harness));
    zm_proc_t *broker = zm_harness_broker(harness, bind, NULL, endpoint, sizeof endpoint);
    assert_non_null(broker);
    const char *const flags[] = {"--idempotent", NULL};
    for (int i = 0; i < S_WORKERS; i++)
        assert_non_null(zm_harness_worker(harness, endpoint, "echo", "echo", flags));
    assert_true(zm_harness_wait_workers(endpoint, "echo", S_WORKERS, 10000));
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    assert_non_null(client);
    zmesh_client_set_retries(client, S_RETRIES);
    zm_fault_load_t *load = zm_fault_load_new(client, 0, "echo", S_CALLS, S_WINDOW, S_TIMEOUT_MS);
    zm_harness_adopt(harness, load, (zm_destroy_fn *) zm_fault_load_destroy);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, zm_fault_load_main, load), 0);

    //  No cmocka assert until the thread is joined: a failed one would leave it running.
    s_progress_t progress = {load, S_KILL_AFTER};
    bool reached = zm_harness_wait_until(s_load_reached, &progress, 30000);
    int64_t down_ms = 0, back_ms = -1;
    bool back = false;
    if (reached && s_restart(harness, broker, bind, &down_ms)) {
        int64_t restarted_at = zm_harness_now();
        back = zm_harness_wait_workers(endpoint, "echo", S_WORKERS, 10000);
        back_ms = zm_harness_now() - restarted_at;
    }
    pthread_join(thread, NULL);     //  bounded: the load gives up after its own deadline
    printf("broker restart: killed after %d calls, down %lld ms, %d workers back %lld ms after"
           " the restart\n",
           S_KILL_AFTER, (long long) down_ms, S_WORKERS, (long long) back_ms);
    zm_fault_load_print(load, "broker restart");
    assert_true(reached);
    assert_true(back);
    assert_int_equal(load->anomalies, 0);
    assert_int_equal(atomic_load(&load->done), S_CALLS);
    assert_true(load->ok >= S_MIN_OK);
    assert_true(load->worst_late_ms <= S_LATE_MAX_MS);
    s_print_status(endpoint);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_broker_restart_load_every_call_ends_once,
                                        zm_fault_setup, zm_fault_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_broker_restart_load", tests, NULL,
                                       NULL);
}
