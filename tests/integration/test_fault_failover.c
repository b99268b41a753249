//  test_fault_failover - a client given two brokers ("EP1,EP2"), each with
//  a count worker (broker 1's takes 300 ms a call). Broker 1 killed while it
//  holds 6 calls: the client resends them and broker 2's worker answers all.
//  Broker 1 killed between calls: every call still succeeds, none fails as
//  unreachable while broker 2 is up; with both gone a call fails with
//  ZMESH_EUNREACHABLE within its timeout. With no broker at all,
//  zmesh_client_recv with a zero timeout still only polls. Whether the
//  client spreads calls over both brokers or uses one at a time is its choice.
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

#define S_CALLS 10                    //  per phase
#define S_DELAY_MS "300"              //  broker 1's worker: long enough to be caught
#define S_CAUGHT 6                    //  calls at broker 1 when it dies
#define S_TIMEOUT_MS 3000
#define S_RETRIES 2                   //  attempts of 1000 ms
#define S_SLACK_MS 500                //  past a deadline: scheduling, ASan on a busy runner
#define S_POLL_MAX_MS 100             //  a zero-timeout recv

typedef struct {
    zm_proc_t *broker;
    zm_proc_t *worker;
    char endpoint[256];
    size_t served;                    //  calls its worker answered in this phase
} s_site_t;

//  A broker (on an ipc:// path: see zm_fault_broker) and its worker.
static void
s_start_site(zm_harness_t *harness, s_site_t *site, const char *name, const char *const flags[])
{
    site->broker = zm_fault_broker(harness, name, NULL, site->endpoint, sizeof site->endpoint);
    assert_non_null(site->broker);
    site->worker = zm_harness_worker(harness, site->endpoint, "svc", "count", flags);
    assert_non_null(site->worker);
    assert_true(zm_harness_wait_workers(site->endpoint, "svc", 1, 10000));
}

//  Makes S_CALLS calls one by one; counts who answered, asserts each
//  succeeds, and returns the slowest call's time.
static int64_t
s_phase(zmesh_client_t *client, s_site_t *sites, size_t site_count, const char *label)
{
    int64_t slowest = 0;
    for (size_t i = 0; i < site_count; i++)
        sites[i].served = 0;
    for (uint64_t i = 0; i < S_CALLS; i++) {
        zmesh_msg_t *request = zm_fault_uint(i), *reply = NULL;
        int64_t sent_at = zm_harness_now();
        int rc = zmesh_client_call(client, "svc", zmesh_msg_data(request),
                                   zmesh_msg_size(request), S_TIMEOUT_MS, &reply);
        int64_t elapsed = zm_harness_now() - sent_at;
        slowest = elapsed > slowest ? elapsed : slowest;
        uint64_t pid = 0;
        bool counted = rc == ZMESH_OK && zm_fault_count_reply(reply, request, &pid);
        zmesh_msg_destroy(&reply);
        zmesh_msg_destroy(&request);
        if (rc != ZMESH_OK)
            printf("failover, %s: call %llu failed after %lld ms: %s\n", label,
                   (unsigned long long) i, (long long) elapsed, zmesh_strerror(rc));
        assert_int_equal(rc, ZMESH_OK);
        assert_true(counted);
        for (size_t j = 0; j < site_count; j++)
            sites[j].served += pid == (uint64_t) zm_proc_pid(sites[j].worker);
    }
    printf("failover, %s: %d calls ok, served %zu + %zu, slowest %lld ms\n", label, S_CALLS,
           sites[0].served, sites[1].served, (long long) slowest);
    fflush(stdout);
    return slowest;
}

typedef struct {
    const char *endpoint;
} s_broker_t;

static bool
s_holds_a_call(void *arg)
{
    s_broker_t *broker = arg;
    zm_status_t status;
    return zm_harness_status(broker->endpoint, "svc", &status) == ZMESH_OK
           && status.inflight >= 1;
}

//  S_CAUGHT calls at once; broker 1 is killed while its worker holds one (it
//  takes 300 ms a call, the others wait in broker 1's queue). All must
//  succeed, answered by broker 2's worker, after their first attempt ran out.
static void
s_kill_holding_broker(zmesh_client_t *client, s_site_t *sites)
{
    zmesh_msg_t *requests[S_CAUGHT];
    uint64_t first_id = 0;
    int64_t sent_at = zm_harness_now();
    for (int i = 0; i < S_CAUGHT; i++) {
        requests[i] = zm_fault_uint(100 + (uint64_t) i);
        uint64_t id;
        assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(requests[i]),
                                           zmesh_msg_size(requests[i]), S_TIMEOUT_MS, &id),
                         ZMESH_OK);
        first_id = i == 0 ? id : first_id;
        assert_int_equal(id, first_id + (uint64_t) i);
    }
    s_broker_t first = {sites[0].endpoint};
    assert_true(zm_harness_wait_until(s_holds_a_call, &first, 5000));
    zm_harness_kill(sites[0].broker, SIGKILL);
    int ok = 0;
    int64_t slowest = 0;
    for (int done = 0; done < S_CAUGHT; done++) {
        uint64_t id = 0, pid = 0;
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_recv(client, S_TIMEOUT_MS * 2, &id, &reply);
        size_t which = (size_t) (id - first_id);
        if (rc == ZMESH_OK && which < S_CAUGHT
            && zm_fault_count_reply(reply, requests[which], &pid)
            && pid == (uint64_t) zm_proc_pid(sites[1].worker))
            ok++;                     //  only broker 2's worker can have answered
        else
            printf("failover: call %zu ended %s\n", which, zmesh_strerror(rc));
        zmesh_msg_destroy(&reply);
        int64_t elapsed = zm_harness_now() - sent_at;
        slowest = elapsed > slowest ? elapsed : slowest;
    }
    for (int i = 0; i < S_CAUGHT; i++)
        zmesh_msg_destroy(&requests[i]);
    printf("failover broker 1 killed holding %d calls: %d answered by broker 2, the last after"
           " %lld ms\n",
           S_CAUGHT, ok, (long long) slowest);
    fflush(stdout);
    assert_int_equal(ok, S_CAUGHT);
    assert_true(zm_harness_reap(sites[0].broker, 5000, NULL));
}

//  Two sites, broker 1's worker slow; a client of "EP1,EP2" with retries.
static zmesh_client_t *
s_two_sites(zm_harness_t *harness, s_site_t *sites)
{
    const char *const slow[] = {"--delay-ms", S_DELAY_MS, NULL};
    s_start_site(harness, &sites[0], "broker1", slow);
    s_start_site(harness, &sites[1], "broker2", NULL);
    char both[600];
    snprintf(both, sizeof both, "%s,%s", sites[0].endpoint, sites[1].endpoint);
    zmesh_client_t *client = zm_harness_client(harness, both);
    assert_non_null(client);
    zmesh_client_set_retries(client, S_RETRIES);
    return client;
}

static void
s_kill_broker(s_site_t *site)
{
    zm_harness_kill(site->broker, SIGKILL);
    assert_true(zm_harness_reap(site->broker, 5000, NULL));
}

static void
test_fault_failover_calls_in_flight_move_to_the_second_broker(void **state)
{
    zm_harness_t *harness = *state;
    s_site_t sites[2] = {0};
    zmesh_client_t *client = s_two_sites(harness, sites);
    s_phase(client, sites, 2, "both up");
    assert_int_equal(sites[0].served + sites[1].served, S_CALLS);
    s_kill_holding_broker(client, sites);
    int64_t slowest = s_phase(client, sites, 2, "broker 1 down");
    assert_int_equal(sites[1].served, S_CALLS);
    assert_true(slowest <= S_TIMEOUT_MS);
}

static void
test_fault_failover_unreachable_only_when_both_are_down(void **state)
{
    zm_harness_t *harness = *state;
    s_site_t sites[2] = {0};
    zmesh_client_t *client = s_two_sites(harness, sites);
    s_phase(client, sites, 2, "both up");
    s_kill_broker(&sites[0]);
    int64_t slowest = s_phase(client, sites, 2, "broker 1 down, none in flight");
    assert_int_equal(sites[1].served, S_CALLS);
    assert_true(slowest <= S_TIMEOUT_MS);

    s_kill_broker(&sites[1]);
    //  libzmq learns of the kill only when it sees the connection drop: a
    //  call sent before that is taken by the dying connection and times out.
    //  Once the loss is known, no broker takes a call: unreachable.
    zmesh_msg_t *request = zm_fault_uint(0), *reply = NULL;
    int rc = ZMESH_OK;
    for (int round = 0; round < 2; round++) {
        int64_t sent_at = zm_harness_now();
        rc = zmesh_client_call(client, "svc", zmesh_msg_data(request), zmesh_msg_size(request),
                               S_TIMEOUT_MS, &reply);
        int64_t elapsed = zm_harness_now() - sent_at;
        zmesh_msg_destroy(&reply);
        printf("failover both down, call %d: %s after %lld ms (timeout %d ms)\n", round + 1,
               zmesh_strerror(rc), (long long) elapsed, S_TIMEOUT_MS);
        assert_true(rc == ZMESH_EUNREACHABLE || (round == 0 && rc == ZMESH_ETIMEDOUT));
        assert_true(elapsed <= S_TIMEOUT_MS + S_SLACK_MS);
        if (rc == ZMESH_EUNREACHABLE)
            break;
    }
    zmesh_msg_destroy(&request);
    assert_int_equal(rc, ZMESH_EUNREACHABLE);
    assert_int_equal(zmesh_client_pending(client), 0);
}

//  No broker at all: the send blocks for one attempt (documented); then a
//  zero-timeout recv must return at once even though an attempt is due.
static void
test_fault_failover_recv_poll_stays_a_poll_without_broker(void **state)
{
    zm_harness_t *harness = *state;
    char nobody[256];
    snprintf(nobody, sizeof nobody, "ipc://%s/nobody.ipc", zm_harness_dir(harness));
    zmesh_client_t *client = zm_harness_client(harness, nobody);
    assert_non_null(client);
    zmesh_client_set_retries(client, S_RETRIES);
    zmesh_msg_t *request = zm_fault_uint(0);
    zm_harness_adopt(harness, request, (zm_destroy_fn *) zmesh_msg_destroy);
    int64_t sent_at = zm_harness_now();
    assert_int_equal(zmesh_client_send(client, "svc", zmesh_msg_data(request),
                                       zmesh_msg_size(request), S_TIMEOUT_MS, NULL),
                     ZMESH_OK);
    int64_t send_ms = zm_harness_now() - sent_at;
    int64_t slowest_poll = 0;
    int rc = ZMESH_EAGAIN;
    uint64_t id = 0;
    while (id == 0 && zm_harness_now() - sent_at < S_TIMEOUT_MS * 2) {
        int64_t polled_at = zm_harness_now();
        zmesh_msg_t *reply = NULL;
        rc = zmesh_client_recv(client, 0, &id, &reply);
        zmesh_msg_destroy(&reply);
        int64_t poll_ms = zm_harness_now() - polled_at;
        slowest_poll = poll_ms > slowest_poll ? poll_ms : slowest_poll;
        if (id == 0)
            zm_fault_hold(10);        //  an application doing other work between polls
    }
    int64_t elapsed = zm_harness_now() - sent_at;
    printf("no broker: send took %lld ms; the slowest recv(timeout 0) took %lld ms; the call"
           " ended %s after %lld ms\n",
           (long long) send_ms, (long long) slowest_poll, zmesh_strerror(rc),
           (long long) elapsed);
    assert_true(send_ms <= S_TIMEOUT_MS / (S_RETRIES + 1) + S_SLACK_MS);
    assert_int_equal(rc, ZMESH_EUNREACHABLE);
    assert_true(elapsed <= S_TIMEOUT_MS + S_SLACK_MS);
    assert_true(slowest_poll <= S_POLL_MAX_MS);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    zm_fault_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_fault_failover_calls_in_flight_move_to_the_second_broker, zm_fault_setup,
            zm_fault_teardown),
        cmocka_unit_test_setup_teardown(test_fault_failover_unreachable_only_when_both_are_down,
                                        zm_fault_setup, zm_fault_teardown),
        cmocka_unit_test_setup_teardown(test_fault_failover_recv_poll_stays_a_poll_without_broker,
                                        zm_fault_setup, zm_fault_teardown),
    };
    return cmocka_run_group_tests_name("integration_fault_failover", tests, NULL, NULL);
}
