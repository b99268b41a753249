//  test_fault_long_handler - slow is not dead. A handler that works 5 s,
//  longer than the default heartbeat x liveness (1 s x 3), keeps its worker
//  alive (the library heartbeats meanwhile) and its call succeeds. A handler
//  that works 3 s on calls with a 1 s timeout reports progress every 200 ms:
//  the broker moves the call's deadline (no 408, `expired` stays 0) and so
//  does the client (no ETIMEDOUT, and with retries no resend: the broker
//  sees no duplicate CALL).
#include "fault.h"
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_LONG_MS 5000                //  > 1000 ms x 3, the default heartbeat x liveness
#define S_PROGRESS_MS 3000            //  the progress handler's work
#define S_SHORT_TIMEOUT_MS 1000       //  its calls' timeout, well under the work

static uint64_t
s_counter(const char *endpoint, const char *name)
{
    uint64_t value = zm_harness_counter(endpoint, name);
    assert_true(value != UINT64_MAX);
    return value;
}

static void
test_fault_long_handler_is_not_expired(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    assert_non_null(zm_fault_broker(harness, "broker", NULL, endpoint, 256));
    assert_non_null(zm_harness_worker(harness, endpoint, "svc", "slow", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "svc", 1, 10000));
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    assert_non_null(client);
    zmesh_msg_t *request = zm_fault_uint(S_LONG_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    zmesh_msg_t *reply = NULL;
    int64_t sent_at = zm_harness_now();
    int rc = zmesh_client_call(client, "svc", zmesh_msg_data(request), zmesh_msg_size(request),
                               S_LONG_MS * 3, &reply);
    int64_t elapsed = zm_harness_now() - sent_at;
    bool echoed = rc == ZMESH_OK && zmesh_msg_size(reply) == zmesh_msg_size(request)
                  && memcmp(zmesh_msg_data(reply), zmesh_msg_data(request),
                            zmesh_msg_size(request)) == 0;
    zmesh_msg_destroy(&reply);
    uint64_t expired = s_counter(endpoint, "workers_expired");
    printf("long handler: %d ms of work with a 1000 ms x 3 heartbeat: %s after %lld ms,"
           " workers_expired=%llu\n",
           S_LONG_MS, zmesh_strerror(rc), (long long) elapsed, (unsigned long long) expired);
    assert_int_equal(rc, ZMESH_OK);
    assert_true(echoed);
    assert_true(elapsed >= S_LONG_MS);
    assert_int_equal(expired, 0);
    assert_int_equal(s_counter(endpoint, "worker_lost"), 0);
    assert_int_equal(s_counter(endpoint, "expired"), 0);
}

//  Sends the progress call on a client with the given retries.
static zmesh_client_t *
s_send_progress_call(zm_harness_t *harness, const char *endpoint, const zmesh_msg_t *request,
                     int retries)
{
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    assert_non_null(client);
    zmesh_client_set_retries(client, retries);
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_SHORT_TIMEOUT_MS, NULL),
                     ZMESH_OK);
    return client;
}

//  One client's call: its result once done, and when.
typedef struct {
    zmesh_client_t *client;           //  owned by the harness
    bool done;
    int rc;
    int64_t elapsed_ms;
} s_waiting_t;

//  Reads one completion of the waiting call, if any came within wait_ms.
static void
s_poll(s_waiting_t *waiting, const zmesh_msg_t *request, int64_t sent_at, int wait_ms)
{
    if (waiting->done)
        return;
    uint64_t id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(waiting->client, wait_ms, &id, &reply);
    if (id == 0)
        return;                       //  nothing yet
    if (rc == ZMESH_OK
        && (zmesh_msg_size(reply) != zmesh_msg_size(request)
            || memcmp(zmesh_msg_data(reply), zmesh_msg_data(request), zmesh_msg_size(request))))
        rc = ZMESH_EPROTO;            //  not its echo
    zmesh_msg_destroy(&reply);
    waiting->done = true;
    waiting->rc = rc;
    waiting->elapsed_ms = zm_harness_now() - sent_at;
}

static void
test_fault_long_handler_progress_extends_deadlines(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    assert_non_null(zm_fault_broker(harness, "broker", NULL, endpoint, 256));
    const char *const flags[] = {"--threads", "2", "--extend-ms", "1000", NULL};
    assert_non_null(zm_harness_worker(harness, endpoint, "svc", "progress", flags));
    assert_true(zm_harness_wait_workers(endpoint, "svc", 1, 10000));
    zmesh_msg_t *request = zm_fault_uint(S_PROGRESS_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    //  Two calls at once: without retries, and with 2 (each attempt 333 ms).
    int64_t sent_at = zm_harness_now();
    zmesh_client_t *plain = s_send_progress_call(harness, endpoint, request, 0);
    zmesh_client_t *retrying = s_send_progress_call(harness, endpoint, request, 2);
    //  Both clients are read in turn, often: each must see its PROGRESS in time.
    s_waiting_t plain_call = {.client = plain}, retrying_call = {.client = retrying};
    int64_t give_up = sent_at + S_PROGRESS_MS * 3;
    while ((!plain_call.done || !retrying_call.done) && zm_harness_now() < give_up) {
        s_poll(&plain_call, request, sent_at, 20);
        s_poll(&retrying_call, request, sent_at, 20);
    }
    assert_true(plain_call.done && retrying_call.done);
    int plain_rc = plain_call.rc, retrying_rc = retrying_call.rc;
    int64_t plain_ms = plain_call.elapsed_ms, retrying_ms = retrying_call.elapsed_ms;
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "svc", &status), ZMESH_OK);
    printf("progress: %d ms of work, timeout %d ms: without retries %s after %lld ms, with 2"
           " retries %s after %lld ms; progress=%llu expired=%llu duplicate_calls=%llu\n",
           S_PROGRESS_MS, S_SHORT_TIMEOUT_MS, zmesh_strerror(plain_rc), (long long) plain_ms,
           zmesh_strerror(retrying_rc), (long long) retrying_ms,
           (unsigned long long) zm_status_counter(&status, "progress"),
           (unsigned long long) zm_status_counter(&status, "expired"),
           (unsigned long long) zm_status_counter(&status, "duplicate_calls"));
    assert_int_equal(plain_rc, ZMESH_OK);
    assert_int_equal(retrying_rc, ZMESH_OK);
    assert_true(plain_ms >= S_PROGRESS_MS);
    //  One report at the start and every 200 ms after, per call.
    assert_true(zm_status_counter(&status, "progress") >= 2 * (S_PROGRESS_MS / 200));
    assert_int_equal(zm_status_counter(&status, "expired"), 0);
    assert_int_equal(zm_status_counter(&status, "duplicate_calls"), 0);
    assert_int_equal(zm_status_counter(&status, "workers_expired"), 0);
}

//  The application reads the client only after the call's first deadline
//  has passed, while PROGRESS reports (and then the reply) sat in its
//  socket all along: the call is alive and must succeed.
static void
test_fault_long_handler_progress_read_late_is_not_timed_out(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    assert_non_null(zm_fault_broker(harness, "broker", NULL, endpoint, 256));
    assert_non_null(zm_harness_worker(harness, endpoint, "svc", "progress", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "svc", 1, 10000));
    zmesh_msg_t *request = zm_fault_uint(S_PROGRESS_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    int64_t sent_at = zm_harness_now();
    zmesh_client_t *client = s_send_progress_call(harness, endpoint, request, 0);
    //  Busy elsewhere until the handler has reported for 1200 ms (7 reports),
    //  past the call's first deadline (1000 ms).
    assert_true(zm_fault_wait_counter(endpoint, "progress", 7, 10000, NULL));
    s_waiting_t call = {.client = client};
    int64_t first_read_ms = zm_harness_now() - sent_at;
    while (!call.done && zm_harness_now() < sent_at + S_PROGRESS_MS * 3)
        s_poll(&call, request, sent_at, 100);
    printf("progress read late: first read %lld ms after the send, %s after %lld ms\n",
           (long long) first_read_ms, call.done ? zmesh_strerror(call.rc) : "no outcome",
           (long long) call.elapsed_ms);
    assert_true(call.done);
    assert_int_equal(call.rc, ZMESH_OK);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_long_handler_is_not_expired, zm_fault_setup,
                                        zm_fault_teardown),
        cmocka_unit_test_setup_teardown(test_fault_long_handler_progress_extends_deadlines,
                                        zm_fault_setup, zm_fault_teardown),
        cmocka_unit_test_setup_teardown(
            test_fault_long_handler_progress_read_late_is_not_timed_out, zm_fault_setup,
            zm_fault_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_long_handler", tests, NULL, NULL);
}
