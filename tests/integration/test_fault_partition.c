//  test_fault_partition - the network between a worker and its broker is
//  cut for longer than heartbeat x liveness (200 ms x 3), then healed. The
//  broker expires the worker once and gives the call it held (sent into the
//  cut) back to the queue; the worker, finding the broker silent, keeps
//  reconnecting and registers again, once, as soon as the link is back;
//  the call is answered and work goes on. The cut is a veth link going down
//  between two network namespaces the test makes (as root), or a TCP proxy
//  that stops forwarding (ZMESH_IT_PARTITION=proxy, or no namespaces): the
//  log says which ran.
#include "fault.h"
#include "harness.h"
#include "partition.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_CALL_TIMEOUT_MS 15000
//  Expiry: liveness x interval after the last message, at a broker tick
//  (100 ms): 800 ms; ASan on a loaded CI runner: 500 ms more.
#define S_EXPIRY_MAX_MS 1300
//  After the expiry the cut lasts this much longer: the worker, too, finds
//  the broker silent (600 ms) and reconnects into the cut.
#define S_MORE_CUT_MS 600
//  Back: the worker's reconnect backoff (100, 200, 400 ms) restarts with each
//  new socket (every 600 ms in the cut), plus registration; ASan: 3 s.
#define S_BACK_MAX_MS 3000
//  A second session of the worker (a socket it gave up on, connecting
//  after all) would be found gone on the broker's next heartbeat: 200 ms.
#define S_WATCH_MS 1000
#define S_CALLS_AFTER 10

static const char *const s_flags[] = {"--idempotent", "--heartbeat-ms", "200", "--liveness", "3",
                                      NULL};

typedef struct {
    zm_partition_t *partition;        //  owned
    zm_harness_t *harness;            //  owned
} s_fixture_t;

//  The partition first: the test process may have to enter a namespace
//  before its first ZeroMQ socket.
static int
s_setup(void **state)
{
    s_fixture_t *fixture = calloc(1, sizeof *fixture);
    if (!fixture)
        return -1;
    fixture->partition = zm_partition_new();
    printf("partition: mode %s\n", zm_partition_mode(fixture->partition));
    fflush(stdout);
    void *harness = NULL;
    zm_fault_setup(&harness);
    fixture->harness = harness;
    *state = fixture;
    return 0;
}

//  Children first (they live in the namespaces), then the namespaces.
static int
s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    void *harness = fixture->harness;
    int rc = zm_fault_teardown(&harness);
    zm_partition_destroy(&fixture->partition);
    free(fixture);
    *state = NULL;
    return rc;
}

//  The id of the one worker of svc; asserts there is exactly one.
static void
s_only_worker(const char *endpoint, char *id, size_t size)
{
    zm_fault_worker_t workers[ZM_FAULT_WORKERS_MAX];
    size_t count;
    assert_int_equal(zm_fault_workers(endpoint, "svc", workers, ZM_FAULT_WORKERS_MAX, &count),
                     ZMESH_OK);
    assert_int_equal(count, 1);
    snprintf(id, size, "%s", workers[0].id);
}

//  One call that the worker (pid) must answer.
static void
s_assert_served(zmesh_client_t *client, uint64_t number, pid_t pid)
{
    zmesh_msg_t *request = zm_fault_uint(number), *reply = NULL;
    int rc = zmesh_client_call(client, "svc", zmesh_msg_data(request), zmesh_msg_size(request),
                               5000, &reply);
    uint64_t answered_by = 0;
    bool counted = rc == ZMESH_OK && zm_fault_count_reply(reply, request, &answered_by);
    zmesh_msg_destroy(&reply);
    zmesh_msg_destroy(&request);
    assert_int_equal(rc, ZMESH_OK);
    assert_true(counted);
    assert_int_equal(answered_by, (uint64_t) pid);
}

//  Expired once, registered again once: a second session of the worker (a
//  socket it gave up on, whose READY still got through) shows as a worker
//  found gone on a send, and maybe as a second requeue of the held call.
static void
s_assert_counters(const char *endpoint)
{
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "svc", &status), ZMESH_OK);
    uint64_t unreachable = zm_status_counter(&status, "workers_unreachable");
    uint64_t requeued = zm_status_counter(&status, "requeued");
    printf("partition: workers_expired=%llu requeued=%llu worker_lost=%llu"
           " workers_unreachable=%llu dropped_late_reply=%llu\n",
           (unsigned long long) zm_status_counter(&status, "workers_expired"),
           (unsigned long long) requeued,
           (unsigned long long) zm_status_counter(&status, "worker_lost"),
           (unsigned long long) unreachable,
           (unsigned long long) zm_status_counter(&status, "dropped_late_reply"));
    fflush(stdout);
    assert_int_equal(zm_status_counter(&status, "workers_expired"), 1);
    if (unreachable != 0 || requeued != 1)
        fail_msg("the worker registered more than once after the heal: %llu session(s) found"
                 " gone, the held call requeued %llu times",
                 (unsigned long long) unreachable, (unsigned long long) requeued);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 0);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

static void
test_fault_partition_worker_expires_once_and_returns(void **state)
{
    s_fixture_t *fixture = *state;
    zm_harness_t *harness = fixture->harness;
    zm_partition_t *partition = fixture->partition;
    //  The call waits for the worker. The broker binds an address of the test's
    //  own network namespace pair, not loopback: without CURVE that takes --insecure.
    const char *const grace[] = {"--grace-ms", "10000", "--insecure", NULL};
    char endpoint[256], route[256], before[64], after[64];
    assert_non_null(zm_harness_broker(harness, zm_partition_bind(partition), grace, endpoint,
                                      sizeof endpoint));
    assert_true(zm_partition_route(partition, endpoint, route, sizeof route));
    zm_proc_t *worker = zm_partition_worker(partition, harness, route, "svc", "count", s_flags);
    assert_non_null(worker);
    assert_true(zm_harness_wait_workers(endpoint, "svc", 1, 10000));
    s_only_worker(endpoint, before, sizeof before);
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    assert_non_null(client);
    s_assert_served(client, 0, zm_proc_pid(worker));

    int64_t cut_at = zm_harness_now();
    assert_true(zm_partition_cut(partition));
    zmesh_msg_t *request = zm_fault_uint(1);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    uint64_t id;
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_CALL_TIMEOUT_MS, &id),
                     ZMESH_OK);
    assert_true(zm_fault_wait_counter(endpoint, "workers_expired", 1, 5000, NULL));
    int64_t expired_ms = zm_harness_now() - cut_at;
    zm_fault_hold(S_MORE_CUT_MS);
    int64_t healed_at = zm_harness_now();
    assert_true(zm_partition_heal(partition));
    bool back = zm_harness_wait_workers(endpoint, "svc", 1, 10000);
    int64_t back_ms = zm_harness_now() - healed_at;

    uint64_t done_id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(client, S_CALL_TIMEOUT_MS, &done_id, &reply);
    uint64_t pid = 0;
    bool counted = rc == ZMESH_OK && zm_fault_count_reply(reply, request, &pid);
    zmesh_msg_destroy(&reply);
    printf("partition (%s): expired %lld ms after the cut (bound %d), cut for %lld ms,"
           " registered again %lld ms after the heal (bound %d); the call held in the cut: %s"
           " %lld ms after it was sent\n",
           zm_partition_mode(partition), (long long) expired_ms, S_EXPIRY_MAX_MS,
           (long long) (healed_at - cut_at), (long long) back_ms, S_BACK_MAX_MS,
           zmesh_strerror(rc), (long long) (zm_harness_now() - cut_at));
    fflush(stdout);
    assert_true(expired_ms <= S_EXPIRY_MAX_MS);
    assert_true(back && back_ms <= S_BACK_MAX_MS);
    assert_int_equal(rc, ZMESH_OK);
    assert_int_equal(done_id, id);
    assert_true(counted);
    assert_int_equal(pid, (uint64_t) zm_proc_pid(worker));
    for (uint64_t i = 0; i < S_CALLS_AFTER; i++)
        s_assert_served(client, 2 + i, zm_proc_pid(worker));
    zm_fault_hold(S_WATCH_MS);
    s_only_worker(endpoint, after, sizeof after);
    assert_string_not_equal(before, after);       //  a new session, not the old one
    s_assert_counters(endpoint);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_partition_worker_expires_once_and_returns,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_partition", tests, NULL, NULL);
}
