//  test_fault_kill9 - a worker killed with SIGKILL while it holds a call.
//  If its service is idempotent, the broker gives the call to another
//  worker (requeued +1) and the client gets that worker's answer; if not,
//  the client gets ZMESH_EWORKERLOST although another worker is idle (the
//  call must not run twice); after --max-attempts dispatches an idempotent
//  call is lost too. No client wait is unbounded. Workers register one by
//  one, so the broker's least-recently-used order decides who gets a call;
//  the test checks it by the workers' ids in zmesh.status.
#include "fault.h"
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_HOLD_MS 5000                //  slow workers sleep this long: they die first
#define S_CALL_TIMEOUT_MS 15000
//  A dead worker's connection closes at once; the broker notices on its next
//  heartbeat to it (200 ms) or at expiry (600 ms) plus a 100 ms tick. 3 s
//  leaves room for ASan on a loaded CI runner.
#define S_DETECT_MAX_MS 3000
#define S_WORKERS_MAX 3

static const char *const s_idempotent[] = {"--idempotent", "--heartbeat-ms", "200", "--liveness",
                                           "3", NULL};
static const char *const s_plain[] = {"--heartbeat-ms", "200", "--liveness", "3", NULL};

//  Workers started in order, each registered before the next.
typedef struct {
    char endpoint[256];
    zm_proc_t *procs[S_WORKERS_MAX];
    char ids[S_WORKERS_MAX][64];      //  routing ids in zmesh.status
    size_t count;
} s_pool_t;

//  Starts a worker in mode and waits for it to register; records its id.
static void
s_add_worker(zm_harness_t *harness, s_pool_t *pool, const char *mode, const char *const flags[])
{
    assert_true(pool->count < S_WORKERS_MAX);
    pool->procs[pool->count] = zm_harness_worker(harness, pool->endpoint, "svc", mode, flags);
    assert_non_null(pool->procs[pool->count]);
    assert_true(zm_harness_wait_workers(pool->endpoint, "svc", pool->count + 1, 10000));
    zm_fault_worker_t workers[ZM_FAULT_WORKERS_MAX];
    size_t count;
    assert_int_equal(
        zm_fault_workers(pool->endpoint, "svc", workers, ZM_FAULT_WORKERS_MAX, &count), ZMESH_OK);
    for (size_t i = 0; i < count; i++) {
        bool known = false;
        for (size_t j = 0; j < pool->count; j++)
            known = known || strcmp(workers[i].id, pool->ids[j]) == 0;
        if (!known)
            snprintf(pool->ids[pool->count], sizeof pool->ids[0], "%.*s",
                     (int) sizeof pool->ids[0] - 1, workers[i].id);
    }
    assert_true(pool->ids[pool->count][0] != '\0');
    pool->count++;
}

typedef struct {
    const char *endpoint;
    const char *id;
} s_holder_t;

static bool
s_holds_call(void *arg)
{
    s_holder_t *holder = arg;
    zm_fault_worker_t workers[ZM_FAULT_WORKERS_MAX];
    size_t count;
    if (zm_fault_workers(holder->endpoint, "svc", workers, ZM_FAULT_WORKERS_MAX, &count)
        != ZMESH_OK)
        return false;
    for (size_t i = 0; i < count; i++)
        if (strcmp(workers[i].id, holder->id) == 0 && workers[i].inflight == 1)
            return true;
    return false;
}

//  Waits until worker number `which` of the pool holds a call.
static void
s_wait_held_by(const s_pool_t *pool, size_t which)
{
    s_holder_t holder = {pool->endpoint, pool->ids[which]};
    assert_true(zm_harness_wait_until(s_holds_call, &holder, 10000));
}

//  Kills worker `which` and waits for the call's outcome; returns it, the
//  reply in *reply_p (may be left NULL) and the time since the kill.
static int
s_kill_and_wait(s_pool_t *pool, size_t which, zmesh_client_t *client, uint64_t id,
                zmesh_msg_t **reply_p, int64_t *elapsed_p)
{
    int64_t killed_at = zm_harness_now();
    zm_harness_kill(pool->procs[which], SIGKILL);
    uint64_t done_id = 0;
    int rc = zmesh_client_recv(client, S_DETECT_MAX_MS * 2, &done_id, reply_p);
    *elapsed_p = zm_harness_now() - killed_at;
    assert_true(zm_harness_reap(pool->procs[which], 5000, NULL));
    if (rc != ZMESH_EAGAIN)
        assert_int_equal(done_id, id);
    return rc;
}

static zm_proc_t *
s_broker(zm_harness_t *harness, s_pool_t *pool, const char *const extra[])
{
    zm_proc_t *broker = zm_fault_broker(harness, "broker", extra, pool->endpoint,
                                        sizeof pool->endpoint);
    assert_non_null(broker);
    return broker;
}

static uint64_t
s_counter(const char *endpoint, const char *name)
{
    uint64_t value = zm_harness_counter(endpoint, name);
    assert_true(value != UINT64_MAX);
    return value;
}

static void
test_fault_kill9_idempotent_call_is_answered_by_another_worker(void **state)
{
    zm_harness_t *harness = *state;
    s_pool_t pool = {0};
    s_broker(harness, &pool, NULL);
    s_add_worker(harness, &pool, "slow", s_idempotent);
    s_add_worker(harness, &pool, "count", s_idempotent);
    zmesh_client_t *client = zm_harness_client(harness, pool.endpoint);
    assert_non_null(client);
    zmesh_msg_t *request = zm_fault_uint(S_HOLD_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    uint64_t id;
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_CALL_TIMEOUT_MS, &id),
                     ZMESH_OK);
    s_wait_held_by(&pool, 0);
    zmesh_msg_t *reply = NULL;
    int64_t elapsed;
    int rc = s_kill_and_wait(&pool, 0, client, id, &reply, &elapsed);
    uint64_t pid = 0;
    bool counted = rc == ZMESH_OK && zm_fault_count_reply(reply, request, &pid);
    zmesh_msg_destroy(&reply);
    printf("kill9 idempotent: answered %lld ms after SIGKILL (%s) by pid %llu (other worker %d)"
           ", bound %d ms\n",
           (long long) elapsed, zmesh_strerror(rc), (unsigned long long) pid,
           (int) zm_proc_pid(pool.procs[1]), S_DETECT_MAX_MS);
    assert_int_equal(rc, ZMESH_OK);
    assert_true(counted);
    assert_int_equal(pid, (uint64_t) zm_proc_pid(pool.procs[1]));
    assert_true(elapsed < S_DETECT_MAX_MS);
    assert_int_equal(s_counter(pool.endpoint, "requeued"), 1);
    assert_int_equal(s_counter(pool.endpoint, "worker_lost"), 0);
    assert_true(zm_harness_wait_workers(pool.endpoint, "svc", 1, 5000));
}

static void
test_fault_kill9_plain_call_is_lost_although_a_worker_is_idle(void **state)
{
    zm_harness_t *harness = *state;
    s_pool_t pool = {0};
    s_broker(harness, &pool, NULL);
    s_add_worker(harness, &pool, "slow", s_plain);
    s_add_worker(harness, &pool, "count", s_plain);
    zmesh_client_t *client = zm_harness_client(harness, pool.endpoint);
    assert_non_null(client);
    zmesh_msg_t *request = zm_fault_uint(S_HOLD_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    uint64_t id;
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_CALL_TIMEOUT_MS, &id),
                     ZMESH_OK);
    s_wait_held_by(&pool, 0);
    zmesh_msg_t *reply = NULL;
    int64_t elapsed;
    int rc = s_kill_and_wait(&pool, 0, client, id, &reply, &elapsed);
    zmesh_msg_destroy(&reply);
    printf("kill9 not idempotent: %s %lld ms after SIGKILL (%s), bound %d ms\n",
           zmesh_strerror(rc), (long long) elapsed, zmesh_client_error(client), S_DETECT_MAX_MS);
    assert_int_equal(rc, ZMESH_EWORKERLOST);
    assert_true(elapsed < S_DETECT_MAX_MS);
    assert_int_equal(s_counter(pool.endpoint, "requeued"), 0);
    assert_int_equal(s_counter(pool.endpoint, "worker_lost"), 1);
    //  The idle worker never ran it, and serves the next call.
    zm_fault_worker_t workers[ZM_FAULT_WORKERS_MAX];
    size_t count;
    assert_true(zm_harness_wait_workers(pool.endpoint, "svc", 1, 5000));
    assert_int_equal(zm_fault_workers(pool.endpoint, "svc", workers, 1, &count), ZMESH_OK);
    assert_int_equal(count, 1);
    assert_string_equal(workers[0].id, pool.ids[1]);
    assert_int_equal(workers[0].served, 0);
    assert_false(workers[0].idempotent);
    zmesh_msg_t *next = zm_fault_uint(0);
    zm_harness_adopt(harness, next, (zm_destroy_fn *) zmesh_msg_destroy);
    assert_int_equal(zmesh_client_call(client, "svc", zmesh_msg_data(next), zmesh_msg_size(next),
                                       5000, &reply),
                     ZMESH_OK);
    uint64_t pid = 0;
    bool counted = zm_fault_count_reply(reply, next, &pid);
    zmesh_msg_destroy(&reply);
    assert_true(counted);
    assert_int_equal(pid, (uint64_t) zm_proc_pid(pool.procs[1]));
}

static void
test_fault_kill9_max_attempts_bounds_the_requeues(void **state)
{
    zm_harness_t *harness = *state;
    s_pool_t pool = {0};
    const char *const attempts[] = {"--max-attempts", "2", NULL};
    s_broker(harness, &pool, attempts);
    s_add_worker(harness, &pool, "slow", s_idempotent);
    s_add_worker(harness, &pool, "slow", s_idempotent);
    s_add_worker(harness, &pool, "count", s_idempotent);
    zmesh_client_t *client = zm_harness_client(harness, pool.endpoint);
    assert_non_null(client);
    zmesh_msg_t *request = zm_fault_uint(S_HOLD_MS);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    uint64_t id;
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_CALL_TIMEOUT_MS, &id),
                     ZMESH_OK);
    //  Attempt 1 on worker 0; killed, attempt 2 on worker 1 (the next least
    //  recently used); killed too: the call has had its 2 attempts.
    s_wait_held_by(&pool, 0);
    int64_t killed_at = zm_harness_now();
    zm_harness_kill(pool.procs[0], SIGKILL);
    s_wait_held_by(&pool, 1);
    int64_t moved_ms = zm_harness_now() - killed_at;
    assert_int_equal(s_counter(pool.endpoint, "requeued"), 1);
    zmesh_msg_t *reply = NULL;
    int64_t elapsed;
    int rc = s_kill_and_wait(&pool, 1, client, id, &reply, &elapsed);
    zmesh_msg_destroy(&reply);
    printf("kill9 max-attempts 2: moved to the 2nd worker %lld ms after the 1st SIGKILL;"
           " %s %lld ms after the 2nd\n",
           (long long) moved_ms, zmesh_strerror(rc), (long long) elapsed);
    assert_int_equal(rc, ZMESH_EWORKERLOST);
    assert_true(moved_ms < S_DETECT_MAX_MS);
    assert_true(elapsed < S_DETECT_MAX_MS);
    assert_int_equal(s_counter(pool.endpoint, "requeued"), 1);
    assert_int_equal(s_counter(pool.endpoint, "worker_lost"), 1);
    zm_fault_worker_t workers[ZM_FAULT_WORKERS_MAX];
    size_t count;
    assert_true(zm_harness_wait_workers(pool.endpoint, "svc", 1, 5000));
    assert_int_equal(zm_fault_workers(pool.endpoint, "svc", workers, 1, &count), ZMESH_OK);
    assert_int_equal(workers[0].served, 0);     //  the third worker never ran it
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_fault_kill9_idempotent_call_is_answered_by_another_worker, zm_fault_setup,
            zm_fault_teardown),
        cmocka_unit_test_setup_teardown(
            test_fault_kill9_plain_call_is_lost_although_a_worker_is_idle, zm_fault_setup,
            zm_fault_teardown),
        cmocka_unit_test_setup_teardown(test_fault_kill9_max_attempts_bounds_the_requeues,
                                        zm_fault_setup, zm_fault_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_kill9", tests, NULL, NULL);
}
