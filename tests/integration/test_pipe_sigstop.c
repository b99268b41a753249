//  test_pipe_sigstop - two consumers of a pipeline with a backlog, one frozen
//  with SIGSTOP while it holds unacknowledged messages. The other must keep
//  receiving while the first is frozen (a stuck consumer holds up only its
//  own credit); once the frozen one's session expires (200 ms heartbeat,
//  liveness 5), the messages it held go to the other, flagged redelivered,
//  and every number arrives. Thawed with SIGCONT, the first consumer finds
//  its session gone and registers again; then everything stops cleanly.
#include "harness.h"
#include "pipe.h"
#include "zmesh.h"

#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_COUNT 3000
#define S_CREDIT 5
#define S_CREDIT_TEXT "5"
#define S_STOP_AFTER 100              //  messages the first consumer has seen when frozen
#define S_WHILE_STOPPED 50            //  messages the other must get meanwhile
//  200 ms x 5: short, yet a loaded machine does not stall a process that long
#define S_EXPIRY_MS 1000
#define S_RUN_MS 60000

static const char *const s_pipeline = "frames";

typedef struct {
    const char *endpoint;
    uint64_t redelivered;             //  last value read
} s_expired_t;

//  The frozen consumer's session has ended: one consumer left, and its
//  messages were put back.
static bool
s_expired(void *arg)
{
    s_expired_t *wanted = arg;
    zm_pipe_status_t status;
    if (zm_pipe_status(wanted->endpoint, s_pipeline, &status) != ZMESH_OK)
        return false;
    wanted->redelivered = status.redelivered;
    return status.consumers == 1;
}

//  Teardown thaws the frozen consumer first (a stopped process cannot act
//  on SIGTERM), whether or not an assert left the test early.
static void
s_thaw(void **proc_p)
{
    zm_harness_kill(*proc_p, SIGCONT);
    *proc_p = NULL;                   //  the harness owns the process
}

typedef struct {
    zm_pipe_broker_t broker;
    char frozen_out[ZM_PIPE_PATH_MAX];
    char other_out[ZM_PIPE_PATH_MAX];
    zm_proc_t *frozen;
    zm_proc_t *other;
} s_setup_t;

//  Two consumers, 2 ms a message each, so a backlog of thousands keeps
//  both credits full.
static void
s_start(zm_harness_t *harness, s_setup_t *setup)
{
    assert_true(zm_pipe_broker(harness, NULL, &setup->broker));
    zm_pipe_path(harness, "frozen.log", setup->frozen_out, sizeof setup->frozen_out);
    zm_pipe_path(harness, "other.log", setup->other_out, sizeof setup->other_out);
    const char *const flags[] = {"--credit", S_CREDIT_TEXT, "--slow-ms", "2", "--heartbeat-ms",
                                 "200", "--liveness", "5", NULL};
    setup->frozen = zm_pipe_consumer(harness, setup->broker.endpoint, s_pipeline,
                                     setup->frozen_out, flags);
    assert_non_null(setup->frozen);
    setup->other = zm_pipe_consumer(harness, setup->broker.endpoint, s_pipeline,
                                    setup->other_out, flags);
    assert_non_null(setup->other);
    assert_true(zm_pipe_wait_consumers(setup->broker.endpoint, s_pipeline, 2, 10000));
}

//  The other consumer's records of numbers the frozen one held: flagged
//  ones (attempt > 1), and how many of those the frozen one had recorded.
static size_t
s_flagged(const zm_pipe_log_t *other, const zm_pipe_log_t *frozen, size_t *seen_before_p)
{
    size_t flagged = 0, seen_before = 0;
    for (size_t i = 0; i < other->count; i++)
        if (other->records[i].attempt > 1) {
            flagged++;
            seen_before += zm_pipe_log_has(frozen, other->records[i].number);
        }
    *seen_before_p = seen_before;
    return flagged;
}

static void
test_pipe_sigstop_frozen_consumer_holds_up_only_its_credit(void **state)
{
    zm_harness_t *harness = *state;
    s_setup_t setup;
    s_start(harness, &setup);
    const char *const queued[] = {"--mode", "queued", "--async", NULL};
    zm_proc_t *producer =
        zm_pipe_producer(harness, setup.broker.endpoint, s_pipeline, S_COUNT, queued);
    assert_non_null(producer);

    zm_pipe_tail_t frozen_tail, other_tail;
    zm_pipe_tail_init(&frozen_tail, setup.frozen_out);
    zm_pipe_tail_init(&other_tail, setup.other_out);
    assert_true(zm_pipe_wait_lines(&frozen_tail, S_STOP_AFTER, 20000));
    zm_harness_adopt(harness, setup.frozen, s_thaw);
    zm_harness_kill(setup.frozen, SIGSTOP);
    int64_t stopped_at = zm_harness_now();
    size_t other_at_stop = zm_pipe_tail_lines(&other_tail);
    bool other_moved = zm_pipe_wait_lines(&other_tail, other_at_stop + S_WHILE_STOPPED, 10000);
    int64_t moved_ms = zm_harness_now() - stopped_at;
    printf("sigstop: frozen after %zu messages; the other got %zu more in %lld ms (expiry after"
           " %d ms)\n",
           zm_pipe_tail_lines(&frozen_tail), zm_pipe_tail_lines(&other_tail) - other_at_stop,
           (long long) moved_ms, S_EXPIRY_MS);
    assert_true(other_moved);

    s_expired_t expired = {setup.broker.endpoint, 0};
    bool gone = zm_harness_wait_until(s_expired, &expired, 10000);
    printf("sigstop: frozen consumer's session ended %lld ms after SIGSTOP, %" PRIu64
           " messages put back\n",
           (long long) (zm_harness_now() - stopped_at), expired.redelivered);
    uint64_t expiries = zm_harness_counter(setup.broker.endpoint, "consumers_expired");
    printf("sigstop: consumers expired: %" PRIu64 " (more than 1: a live one was taken for"
           " dead)\n",
           expiries);
    assert_true(gone);
    assert_int_equal(expiries, 1);
    assert_true(expired.redelivered >= 1);
    assert_true(expired.redelivered <= S_CREDIT);

    char result[256];
    bool produced = zm_pipe_producer_done(producer, S_RUN_MS, result, sizeof result);
    printf("sigstop: producer: %s\n", result);
    assert_true(produced);
    //  A consumer acks a message after recording it: once none is queued or
    //  in flight, every record is written.
    assert_true(zm_pipe_wait_drained(setup.broker.endpoint, s_pipeline, S_RUN_MS));

    const zm_pipe_log_t *logs[2] = {zm_pipe_log_load(harness, setup.frozen_out),
                                    zm_pipe_log_load(harness, setup.other_out)};
    zm_pipe_tally_t tally;
    zm_pipe_tally(logs, 2, S_COUNT, &tally);
    zm_pipe_tally_print(&tally, "sigstop: both, while frozen");
    size_t seen_before = 0;
    size_t flagged = s_flagged(logs[1], logs[0], &seen_before);
    printf("sigstop: the other got %zu flagged, %zu of them recorded by the frozen one\n",
           flagged, seen_before);
    assert_int_equal(tally.missing, 0);
    assert_int_equal(tally.bad_lines + tally.out_of_range + tally.flag_mismatches, 0);
    assert_int_equal(tally.unflagged_repeats, 0);
    assert_int_equal(flagged, expired.redelivered);
    assert_int_equal(tally.duplicates, seen_before);

    //  Thawed, it finds its session gone and registers again.
    zm_harness_kill(setup.frozen, SIGCONT);
    bool back = zm_pipe_wait_consumers(setup.broker.endpoint, s_pipeline, 2, 10000);
    zm_pipe_status_t status;
    assert_int_equal(zm_pipe_status(setup.broker.endpoint, s_pipeline, &status), ZMESH_OK);
    zm_pipe_status_print(&status, "sigstop: after SIGCONT");
    assert_true(back);
    assert_int_equal(status.drops, 0);
    assert_int_equal(status.queued, 0);
}

int
main(int argc, char **argv)
{
    zm_pipe_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipe_sigstop_frozen_consumer_holds_up_only_its_credit,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_pipe_sigstop", tests, NULL, NULL);
}
