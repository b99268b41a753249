//  test_fault_chaos - 10,000 calls (4 clients, 50 in flight each, 2 retries)
//  to an idempotent service of 4 count workers (4 threads each, 20 ms a
//  call, so a run lasts some 15 s and each worker holds calls when it
//  dies), while a chaos loop kills a
//  random worker with SIGKILL every 200-400 ms (fixed seed) and starts a
//  new one in its place. Every call must end exactly once, with a reply
//  around its own request or an error; none may be lost (still pending) or duplicated (two
//  completions of one request id). The figures go to the log: outcomes per
//  kind, kills, and the broker's requeued, worker_lost and duplicate_calls.
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

#define S_CLIENTS 4
#define S_CALLS 10000
#define S_WINDOW 50
#define S_RETRIES 2
#define S_TIMEOUT_MS 9000             //  three attempts of 3 s
#define S_WORKERS 4
#define S_SEED 20261124u
#define S_CHAOS_MAX_MS 40000          //  the kills stop by then, finished or not
#define S_MIN_OK (S_CALLS * 99 / 100)
#define S_LATE_MAX_MS 500             //  a completion read after its deadline

static const char *const s_flags[] = {"--idempotent", "--threads",  "4", "--delay-ms", "20",
                                      "--heartbeat-ms", "200", "--liveness", "3",  NULL};

//  xorshift32: the same kills in every run with the same seed.
static uint32_t
s_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

typedef struct {
    zm_fault_load_t *loads[S_CLIENTS];    //  owned by the harness
} s_loads_t;

static bool
s_all_done(void *arg)
{
    s_loads_t *loads = arg;
    for (int i = 0; i < S_CLIENTS; i++)
        if (atomic_load(&loads->loads[i]->done) < loads->loads[i]->total)
            return false;
    return true;
}

//  Kills a random worker and starts another, every 200-400 ms, until the
//  loads are done or S_CHAOS_MAX_MS passed. Returns the kills; *failed_p
//  counts workers that could not be reaped or started.
static int
s_chaos(const char *dir, const char *endpoint, pid_t *workers, s_loads_t *loads, int *failed_p)
{
    uint32_t seed = S_SEED;
    int kills = 0;
    int64_t until = zm_harness_now() + S_CHAOS_MAX_MS;
    while (zm_harness_now() < until) {
        int pause_ms = 200 + (int) (s_random(&seed) % 201);
        if (zm_harness_wait_until(s_all_done, loads, pause_ms))
            break;
        int victim = (int) (s_random(&seed) % S_WORKERS);
        zm_fault_kill(workers[victim], SIGKILL);
        if (!zm_fault_reap(workers[victim], 5000, NULL))
            (*failed_p)++;
        workers[victim] = zm_fault_worker(dir, endpoint, "svc", "count", s_flags);
        if (workers[victim] < 0)
            (*failed_p)++;
        kills++;
    }
    return kills;
}

static void
s_print_status(const char *endpoint, int kills, int64_t elapsed)
{
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "svc", &status), ZMESH_OK);
    printf("chaos: %d kills in %lld ms; broker: requeued=%llu worker_lost=%llu"
           " duplicate_calls=%llu expired=%llu workers_expired=%llu workers_unreachable=%llu"
           " dropped_late_reply=%llu\n",
           kills, (long long) elapsed,
           (unsigned long long) zm_status_counter(&status, "requeued"),
           (unsigned long long) zm_status_counter(&status, "worker_lost"),
           (unsigned long long) zm_status_counter(&status, "duplicate_calls"),
           (unsigned long long) zm_status_counter(&status, "expired"),
           (unsigned long long) zm_status_counter(&status, "workers_expired"),
           (unsigned long long) zm_status_counter(&status, "workers_unreachable"),
           (unsigned long long) zm_status_counter(&status, "dropped_late_reply"));
    fflush(stdout);
}

//  Checks one client's record and adds its outcomes to the totals.
static void
s_assert_load(const zm_fault_load_t *load, size_t *ok, size_t *errors)
{
    char label[32];
    snprintf(label, sizeof label, "chaos client %d", load->number);
    zm_fault_load_print(load, label);
    assert_int_equal(load->anomalies, 0);
    assert_int_equal(atomic_load(&load->done), load->total);
    assert_int_equal(load->other_errors + load->no_service + load->unreachable, 0);
    assert_true(load->worst_late_ms <= S_LATE_MAX_MS);
    *ok += load->ok;
    *errors += load->worker_lost + load->timed_out;
}

static void
test_fault_chaos_every_call_ends_exactly_once(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    assert_non_null(zm_fault_broker(harness, "broker", NULL, endpoint, 256));
    pid_t workers[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++) {
        workers[i] = zm_fault_worker(zm_harness_dir(harness), endpoint, "svc", "count",
                                     s_flags);
        assert_true(workers[i] > 0);
    }
    assert_true(zm_harness_wait_workers(endpoint, "svc", S_WORKERS, 10000));
    s_loads_t loads;
    for (int i = 0; i < S_CLIENTS; i++) {
        zmesh_client_t *client = zm_harness_client(harness, endpoint);
        assert_non_null(client);
        zmesh_client_set_retries(client, S_RETRIES);
        loads.loads[i] = zm_fault_load_new(client, i, "svc", S_CALLS / S_CLIENTS, S_WINDOW,
                                           S_TIMEOUT_MS);
        zm_harness_adopt(harness, loads.loads[i], (zm_destroy_fn *) zm_fault_load_destroy);
    }
    pthread_t threads[S_CLIENTS];
    int started = 0;                  //  no assert until every thread is joined
    int64_t started_at = zm_harness_now();
    while (started < S_CLIENTS
           && pthread_create(&threads[started], NULL, zm_fault_load_main, loads.loads[started])
                  == 0)
        started++;
    int failed = 0;
    int kills = started == S_CLIENTS
                    ? s_chaos(zm_harness_dir(harness), endpoint, workers, &loads, &failed)
                    : 0;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    int64_t elapsed = zm_harness_now() - started_at;
    assert_int_equal(started, S_CLIENTS);
    assert_int_equal(failed, 0);
    s_print_status(endpoint, kills, elapsed);
    size_t ok = 0, errors = 0;
    for (int i = 0; i < S_CLIENTS; i++)
        s_assert_load(loads.loads[i], &ok, &errors);
    printf("chaos: %d calls: ok=%zu errors=%zu (worker lost or timed out)\n", S_CALLS, ok,
           errors);
    assert_int_equal(ok + errors, S_CALLS);
    assert_true(ok >= S_MIN_OK);
    assert_true(kills > 0);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_chaos_every_call_ends_exactly_once,
                                        zm_fault_setup, zm_fault_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_chaos", tests, NULL, NULL);
}
